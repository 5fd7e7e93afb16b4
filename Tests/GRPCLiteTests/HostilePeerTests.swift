import Foundation
import Glibc
import XCTest

@testable import GRPCLite

/// Attacks on a server from peers that hold no certificate or that speak broken HTTP/2:
/// after each one the server must have released the connection's memory, calls and file
/// descriptors, and must still serve a well-behaved client.
final class HostilePeerTests: XCTestCase {
    private var fixtures: TLSFixtures!
    private var server: TestServer!
    private var baselineDescriptors = 0

    override func setUpWithError() throws {
        fixtures = try TLSFixtures()
    }

    override func tearDown() {
        server?.stop()
        fixtures?.remove()
    }

    private func startServer(handshakeTimeout: Duration = .seconds(5), options: GRPCServer.Options = .init()) throws {
        var tls = fixtures.server
        tls.handshakeTimeout = handshakeTimeout
        server = try TestServer(tls: tls, options: options) { server, _, recorder in
            EchoService.install(on: server, recorder: recorder)
        }
        baselineDescriptors = openFileDescriptorCount()
    }

    private func authenticatedClient() throws -> RawHTTP2Client {
        let client = try RawHTTP2Client(port: server.port, tls: fixtures.client)
        try client.sendPreface()
        return client
    }

    private func refusals() -> [String] {
        server.events.compactMap { event in
            if case .refused(_, let reason, _) = event { return reason }
            return nil
        }
    }

    /// Reasons of the closed events, "orderly" for an orderly close.
    private func closeReasons() -> [String] {
        server.events.compactMap { event in
            if case .closed(_, _, let reason) = event { return reason ?? "orderly" }
            return nil
        }
    }

    /// Checks that the server keeps nothing of closed connections and still serves.
    private func assertRecovered(file: StaticString = #filePath, line: UInt = #line) throws {
        XCTAssertTrue(
            server.wait { self.server.connections == 0 }, "connections: \(server.connections)", file: file, line: line)
        XCTAssertTrue(
            server.wait { self.server.activeCalls == 0 }, "active calls: \(server.activeCalls)", file: file, line: line)
        XCTAssertTrue(
            server.wait { self.server.bufferedBytes == 0 }, "buffered: \(server.bufferedBytes)", file: file, line: line)
        XCTAssertTrue(
            server.wait { openFileDescriptorCount() <= self.baselineDescriptors },
            "open fds: \(openFileDescriptorCount()), baseline \(baselineDescriptors)", file: file, line: line)

        let client = try GRPCClient(host: "127.0.0.1", port: server.port, tls: fixtures.client)
        let bytes = try client.unary(
            "/interop.v1.Echo/Unary", request: EchoRequest(text: "still").serializedBytes(), timeout: .seconds(10))
        XCTAssertEqual(
            try EchoResponse(serializedBytes: bytes).text, "still|cn=alice|roles=admin", file: file, line: line)
    }

    private static let unaryRequest = MessageFraming.frame(EchoRequest(text: "x").serializedBytes())

    // MARK: - Before authentication

    func testIdleConnectionsTimeOut() throws {
        try startServer(handshakeTimeout: .milliseconds(300))
        do {
            let clients = try (0..<50).map { _ in try RawHTTP2Client(port: server.port, tls: nil) }
            XCTAssertTrue(server.wait { self.server.connections == 50 }, "connections: \(server.connections)")
            for client in clients {
                XCTAssertTrue(client.waitForClose(timeout: 5), "idle connection \(client.fd) still open")
            }
            XCTAssertEqual(refusals().filter { $0.contains("timed out") }.count, 50, "refusals: \(refusals())")
        }
        try assertRecovered()
    }

    /// Idle connections that never start TLS cannot lock out clients with certificates: at
    /// the limit, the one that waited longest in the handshake makes room.
    func testIdleConnectionsCannotFillServer() throws {
        var options = GRPCServer.Options()
        options.maxConnections = 10
        try startServer(handshakeTimeout: .seconds(30), options: options)
        do {
            let idle = try (0..<10).map { _ in try RawHTTP2Client(port: server.port, tls: nil) }
            XCTAssertTrue(server.wait { self.server.connections == 10 })

            let client = try GRPCClient(host: "127.0.0.1", port: server.port, tls: fixtures.client)
            let bytes = try client.unary(
                "/interop.v1.Echo/Unary", request: EchoRequest(text: "in").serializedBytes(), timeout: .seconds(10))
            XCTAssertEqual(try EchoResponse(serializedBytes: bytes).text, "in|cn=alice|roles=admin")
            XCTAssertTrue(idle[0].waitForClose(timeout: 2), "the oldest idle connection is still open")
            XCTAssertTrue(
                server.wait { self.refusals().contains { $0.contains("waited longest in the TLS handshake") } },
                "\(refusals())")
        }
        try assertRecovered()
    }

    func testMaxConnectionsClosesExtraAtOnce() throws {
        var options = GRPCServer.Options()
        options.maxConnections = 10
        try startServer(handshakeTimeout: .seconds(30), options: options)
        do {
            // Authenticated connections are never evicted, so the eleventh is refused.
            let authenticated = try (0..<10).map { _ in try authenticatedClient() }
            XCTAssertTrue(server.wait { self.server.connections == 10 })
            let extra = try RawHTTP2Client(port: server.port, tls: nil)
            XCTAssertTrue(extra.waitForClose(timeout: 2), "connection over the limit stayed open")
            XCTAssertTrue(
                server.wait { self.refusals().contains { $0.contains("too many connections (limit 10)") } },
                "\(refusals())")
            XCTAssertEqual(server.connections, 10)
            withExtendedLifetime(authenticated) {}
        }
        try assertRecovered()
    }

    func testGarbageInsteadOfClientHello() throws {
        try startServer()
        do {
            let client = try RawHTTP2Client(port: server.port, tls: nil)
            client.writeSocket(Array("GET / HTTP/1.1\r\nHost: x\r\n\r\n".utf8))
            XCTAssertTrue(client.waitForClose(timeout: 2), "server kept a connection that sent HTTP/1.1")
            XCTAssertEqual(refusals().count, 1, "\(refusals())")
        }
        try assertRecovered()
    }

    func testGarbageInsteadOfPreface() throws {
        try startServer()
        do {
            let client = try RawHTTP2Client(port: server.port, tls: fixtures.client)
            try client.send(Array("GET / HTTP/1.1\r\nHost: x\r\n\r\n".utf8))
            XCTAssertTrue(client.waitForClose(timeout: 2), "server kept a connection without the HTTP/2 preface")
        }
        try assertRecovered()
    }

    // MARK: - Broken HTTP/2

    func testHeaderListOverLimitResetsStream() throws {
        try startServer()
        let client = try authenticatedClient()
        // Two frames, because one HEADERS frame may not exceed SETTINGS_MAX_FRAME_SIZE (16,384 bytes).
        var first = RawHTTP2Client.headersFrame(
            stream: 1,
            RawHTTP2Client.requestHeaders("/interop.v1.Echo/Unary", [("x-big", String(repeating: "a", count: 12_000))]))
        first.flags = 0
        let second = RawFrame(
            type: RawFrame.continuation, flags: RawFrame.endHeaders, stream: 1,
            payload: RawHPACK.encode([("x-big-2", String(repeating: "a", count: 12_000))]))
        try client.send([first, second])
        let reset = client.readFrame {
            $0.stream == 1 && ($0.type == RawFrame.rstStream || $0.type == RawFrame.headers)
        }
        XCTAssertNotNil(reset, "no reply to an oversized header list")
        try client.send([
            RawHTTP2Client.headersFrame(stream: 3, RawHTTP2Client.requestHeaders()),
            RawHTTP2Client.dataFrame(stream: 3, HostilePeerTests.unaryRequest, endStream: true),
        ])
        XCTAssertEqual(client.readStatus(stream: 3)?.code, 0, "the next stream on the connection failed")
        XCTAssertTrue(server.wait { self.server.activeCalls == 0 }, "active calls: \(server.activeCalls)")
    }

    func testContinuationFloodClosesConnection() throws {
        try startServer()
        do {
            let client = try authenticatedClient()
            var headers = RawHTTP2Client.headersFrame(stream: 1, RawHTTP2Client.requestHeaders())
            headers.flags = 0
            try client.send([headers])
            let block = RawHPACK.encode([("x-junk", String(repeating: "b", count: 1000))])
            for _ in 0..<2000 where !client.isClosed {
                try client.send([RawFrame(type: RawFrame.continuation, flags: 0, stream: 1, payload: block)])
            }
            XCTAssertTrue(client.waitForClose(timeout: 5), "server accepted an endless header block")
            XCTAssertTrue(
                server.wait { self.closeReasons().contains { $0.contains("Too many CONTINUATION frames") } },
                "close reasons: \(closeReasons())")
        }
        try assertRecovered()
    }

    func testRapidResetLeavesNoCalls() throws {
        try startServer()
        let client = try authenticatedClient()
        var stream: UInt32 = 1
        for _ in 0..<50 where !client.isClosed {
            var frames: [RawFrame] = []
            for _ in 0..<100 {
                frames.append(
                    RawHTTP2Client.headersFrame(stream: stream, RawHTTP2Client.requestHeaders("/interop.v1.Echo/Hang")))
                frames.append(RawHTTP2Client.dataFrame(stream: stream, HostilePeerTests.unaryRequest, endStream: true))
                frames.append(RawFrame(type: RawFrame.rstStream, flags: 0, stream: stream, payload: RawFrame.uint32(8)))
                stream += 2
            }
            try client.send(frames)
        }
        XCTAssertTrue(server.wait { self.server.activeCalls == 0 }, "active calls: \(server.activeCalls)")
        _ = client.waitForClose(timeout: 1)
        // nghttp2's stream reset rate limit (1.57, and Debian's patched 1.52) sends GOAWAY INTERNAL_ERROR.
        XCTAssertTrue(
            server.wait { self.closeReasons().contains { $0.hasPrefix("sent GOAWAY") } },
            "close reasons: \(closeReasons())")
        withExtendedLifetime(client) {}
    }

    func testWindowUpdateOverflowIsConnectionError() throws {
        try startServer()
        do {
            let client = try authenticatedClient()
            try client.send([
                RawFrame(type: RawFrame.windowUpdate, flags: 0, stream: 0, payload: RawFrame.uint32(0x7FFF_FFFF))
            ])
            let goAway = client.readFrame { $0.type == RawFrame.goAway }
            XCTAssertEqual(goAway?.errorCode, 3, "expected GOAWAY FLOW_CONTROL_ERROR")
            XCTAssertTrue(
                server.wait { self.closeReasons().contains("sent GOAWAY FLOW_CONTROL_ERROR") }, "\(closeReasons())")
            XCTAssertTrue(client.waitForClose())
        }
        try assertRecovered()
    }

    func testDataOnIdleStreamIsConnectionError() throws {
        try startServer()
        do {
            let client = try authenticatedClient()
            try client.send([RawHTTP2Client.dataFrame(stream: 1, [1, 2, 3])])
            let goAway = client.readFrame { $0.type == RawFrame.goAway }
            XCTAssertEqual(goAway?.errorCode, 1, "expected GOAWAY PROTOCOL_ERROR")
            XCTAssertTrue(
                server.wait { self.closeReasons().contains("sent GOAWAY PROTOCOL_ERROR: DATA: stream in idle") },
                "\(closeReasons())")
            XCTAssertTrue(client.waitForClose())
        }
        try assertRecovered()
    }

    func testHugeLengthPrefixRejected() throws {
        try startServer()
        let client = try authenticatedClient()
        try client.send([
            RawHTTP2Client.headersFrame(stream: 1, RawHTTP2Client.requestHeaders()),
            RawHTTP2Client.dataFrame(stream: 1, [0, 0xFF, 0xFF, 0xFF, 0xFF]),
        ])
        let status = client.readStatus(stream: 1)
        XCTAssertEqual(status?.code, 8, "\(String(describing: status))")
        XCTAssertTrue(status?.message.contains("4294967295 bytes") == true, "\(String(describing: status))")
    }

    func testMessageInOneByteFrames() throws {
        try startServer()
        let client = try authenticatedClient()
        var frames = [RawHTTP2Client.headersFrame(stream: 1, RawHTTP2Client.requestHeaders())]
        for byte in HostilePeerTests.unaryRequest {
            frames.append(RawHTTP2Client.dataFrame(stream: 1, [byte]))
        }
        frames.append(RawHTTP2Client.dataFrame(stream: 1, [], endStream: true))
        try client.send(frames)
        XCTAssertEqual(client.readStatus(stream: 1)?.code, 0)
    }

    func testInvalidRequestHeaders() throws {
        try startServer()
        let client = try authenticatedClient()
        let table: [(description: String, overrides: [(String, String?)], code: Int)] = [
            ("no te", [("te", nil)], 0),
            ("wrong content-type", [("content-type", "text/plain")], 13),
            ("no content-type", [("content-type", nil)], 13),
            ("GET", [(":method", "GET")], 13),
            ("timeout without unit", [("grpc-timeout", "100")], 13),
            ("timeout of 9 digits", [("grpc-timeout", "123456789S")], 13),
            ("negative timeout", [("grpc-timeout", "-1S")], 13),
            ("unknown timeout unit", [("grpc-timeout", "1D")], 13),
            ("largest timeout", [("grpc-timeout", "99999999H")], 0),
            ("gzip", [("grpc-encoding", "gzip")], 12),
            ("unknown method", [(":path", "/nope.Service/Nope")], 12),
        ]
        var stream: UInt32 = 1
        for row in table {
            try client.send([
                RawHTTP2Client.headersFrame(
                    stream: stream, RawHTTP2Client.requestHeaders("/interop.v1.Echo/Unary", row.overrides)),
                RawHTTP2Client.dataFrame(stream: stream, HostilePeerTests.unaryRequest, endStream: true),
            ])
            let status = client.readStatus(stream: stream)
            XCTAssertEqual(status?.code, row.code, "\(row.description): \(String(describing: status))")
            stream += 2
        }
        XCTAssertTrue(server.wait { self.server.activeCalls == 0 }, "active calls: \(server.activeCalls)")
    }

    func testPingFloodWithoutReading() throws {
        try startServer()
        let client = try authenticatedClient()
        let ping = RawFrame(type: RawFrame.ping, flags: 0, stream: 0, payload: [UInt8](repeating: 7, count: 8)).bytes
        let batch = Array([[UInt8]](repeating: ping, count: 1000).joined())
        for _ in 0..<100 where !client.isClosed && !client.isStalled {
            try client.send(batch)
        }
        XCTAssertLessThan(server.maxBufferedBytes, 1024 * 1024, "server buffered \(server.maxBufferedBytes) bytes")
        withExtendedLifetime(client) {}
    }

    func testSettingsFloodWithoutReading() throws {
        try startServer()
        let client = try authenticatedClient()
        let settings = RawFrame(type: RawFrame.settings, flags: 0, stream: 0, payload: [0, 3, 0, 0, 0, 100]).bytes
        let batch = Array([[UInt8]](repeating: settings, count: 1000).joined())
        for _ in 0..<100 where !client.isClosed && !client.isStalled {
            try client.send(batch)
        }
        XCTAssertLessThan(server.maxBufferedBytes, 1024 * 1024, "server buffered \(server.maxBufferedBytes) bytes")
        withExtendedLifetime(client) {}
    }
}

extension HostilePeerTests {
    /// A stream whose deadline passes while its DATA frame waits for room in a full output
    /// buffer: the server must drop the queued bytes without breaking the frame nghttp2 holds.
    func testDeadlineWhileOutputBlocked() throws {
        try startServer()
        do {
            var options = GRPCClient.Options()
            options.initialWindowSize = 64 * 1024 * 1024
            let client = try GRPCClient(host: "127.0.0.1", port: server.port, tls: fixtures.client, options: options)
            let connection = try client.openConnection()
            defer { connection.close(reason: nil) }
            var status: Status?
            var messages = 0
            let request = EchoRequest(count: 2000, responseSize: 60_000).serializedBytes()
            connection.startCall(
                method: "/interop.v1.Echo/Stream", request: request, timeout: .milliseconds(300),
                localTimeout: .seconds(20),
                onMessage: { _ in
                    // Stop reading until the deadline has passed with the server's buffers full.
                    if messages == 0 { Thread.sleep(forTimeInterval: 1) }
                    messages += 1
                    return true
                }, onFinish: { status = $0 })
            XCTAssertTrue(try client.eventLoop.run(until: { status != nil }, timeout: .seconds(20)))
            XCTAssertEqual(status?.code, .deadlineExceeded, "\(String(describing: status)) after \(messages) messages")
            connection.close(reason: nil)
        }
        try assertRecovered()
    }
}

extension HostilePeerTests {
    /// With no descriptor left for accept(2), the server pauses accepting instead of
    /// retrying the readable listener in a busy loop, and resumes once descriptors free up.
    func testDescriptorExhaustionPausesAccepting() throws {
        try startServer()
        var saved = rlimit()
        getrlimit(Int32(RLIMIT_NOFILE.rawValue), &saved)
        var lowered = saved
        lowered.rlim_cur = rlim_t(openFileDescriptorCount() + 64)
        var fillers: [Int32] = []
        let client: RawHTTP2Client
        do {
            XCTAssertEqual(setrlimit(Int32(RLIMIT_NOFILE.rawValue), &lowered), 0)
            defer {
                setrlimit(Int32(RLIMIT_NOFILE.rawValue), &saved)
                fillers.forEach { close($0) }
            }
            // Take every descriptor number below the limit but one, which the client's socket gets.
            while case let fd = open("/dev/null", O_RDONLY | O_CLOEXEC), fd >= 0 {
                fillers.append(fd)
            }
            close(fillers.removeLast())
            client = try RawHTTP2Client(port: server.port, tls: nil)
            Thread.sleep(forTimeInterval: 0.5)
        }
        let failures = refusals().filter { $0.contains("accept") }
        XCTAssertGreaterThan(failures.count, 0, "accept did not fail: \(refusals())")
        XCTAssertLessThanOrEqual(
            failures.count, 10, "\(failures.count) accept failures in 0.5 s: \(failures.prefix(3))")
        XCTAssertTrue(
            server.wait { self.server.connections == 1 }, "connection not accepted after the limit was restored")
        withExtendedLifetime(client) {}
    }
}

extension HostilePeerTests {
    func testClientReleasesDescriptors() throws {
        try startServer()
        for _ in 0..<3 {
            let client = try GRPCClient(host: "127.0.0.1", port: server.port, tls: fixtures.client)
            _ = try client.unary("/interop.v1.Echo/Unary", request: [], timeout: .seconds(10))
        }
        XCTAssertTrue(server.wait { self.server.connections == 0 })
        // Other threads of the test process (Foundation's process monitor, left by earlier
        // suites) may hold an fd for a moment, so the count gets a short while to settle.
        let deadline = Date().addingTimeInterval(2)
        while openFileDescriptorCount() != baselineDescriptors && Date() < deadline {
            Thread.sleep(forTimeInterval: 0.02)
        }
        XCTAssertEqual(openFileDescriptorCount(), baselineDescriptors)
    }

    func testHalfCloseBeforeHandshakeClosesAtOnce() throws {
        try startServer(handshakeTimeout: .seconds(30))
        do {
            let client = try RawHTTP2Client(port: server.port, tls: nil)
            shutdown(client.fd, Int32(SHUT_WR))
            XCTAssertTrue(client.waitForClose(timeout: 2), "server kept a half-closed connection open")
            XCTAssertTrue(
                server.wait {
                    self.refusals().contains { $0.contains("peer closed the connection during the TLS handshake") }
                },
                "\(refusals())")
        }
        try assertRecovered()
    }
}

extension HostilePeerTests {
    private func waitUntil(timeout: TimeInterval = 5, _ condition: () -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline && !condition() {
            Thread.sleep(forTimeInterval: 0.01)
        }
        return condition()
    }

    func testStoppedServerReleasesDescriptors() throws {
        let before = openFileDescriptorCount()
        try startServer()
        server.stop()
        server = nil
        XCTAssertTrue(
            waitUntil { openFileDescriptorCount() <= before },
            "open fds: \(openFileDescriptorCount()), before \(before)")
    }
}

extension HostilePeerTests {
    /// A client that vanished, modelled by one that never acknowledges PINGs, loses its
    /// calls once the keepalive timeout passes.
    func testUnresponsiveClientDetectedByPing() throws {
        var options = GRPCServer.Options()
        options.keepaliveInterval = .milliseconds(200)
        options.keepaliveTimeout = .milliseconds(200)
        try startServer(options: options)
        do {
            let client = try authenticatedClient()
            try client.send([
                RawHTTP2Client.headersFrame(stream: 1, RawHTTP2Client.requestHeaders("/interop.v1.Echo/Hang")),
                RawHTTP2Client.dataFrame(stream: 1, HostilePeerTests.unaryRequest, endStream: true),
            ])
            XCTAssertNotNil(client.readFrame(timeout: 5) { $0.type == RawFrame.ping }, "no keepalive PING")
            XCTAssertTrue(client.waitForClose(timeout: 5), "server kept a connection whose PING went unanswered")
            XCTAssertTrue(
                server.wait {
                    self.closeReasons().contains { $0.contains("did not acknowledge a PING within 0.2 seconds") }
                },
                "\(closeReasons())")
            XCTAssertTrue(server.wait { self.server.counter("cancelled") == 1 }, "the call was not cancelled")
        }
        try assertRecovered()
    }

    /// A connection without calls whose client vanished is closed too, freeing its slot.
    func testUnresponsiveIdleClientClosed() throws {
        var options = GRPCServer.Options()
        options.keepaliveInterval = .milliseconds(200)
        options.keepaliveTimeout = .milliseconds(200)
        try startServer(options: options)
        do {
            let client = try authenticatedClient()
            XCTAssertNotNil(client.readFrame(timeout: 5) { $0.type == RawFrame.ping }, "no keepalive PING")
            XCTAssertTrue(client.waitForClose(timeout: 5), "server kept an idle connection whose PING went unanswered")
        }
        try assertRecovered()
    }

    /// Acknowledged PINGs keep a quiet call alive on both sides.
    func testQuietCallSurvivesKeepalive() throws {
        var options = GRPCServer.Options()
        options.keepaliveInterval = .milliseconds(50)
        options.keepaliveTimeout = .milliseconds(100)
        try startServer(options: options)
        var clientOptions = GRPCClient.Options()
        clientOptions.keepaliveInterval = .milliseconds(50)
        clientOptions.keepaliveTimeout = .milliseconds(100)
        let client = try GRPCClient(host: "127.0.0.1", port: server.port, tls: fixtures.client, options: clientOptions)
        XCTAssertThrowsError(try client.unary("/interop.v1.Echo/Hang", request: [], timeout: .seconds(1))) { error in
            XCTAssertEqual((error as? Status)?.code, .deadlineExceeded, "\(error)")
        }
    }
}
