import Foundation
import XCTest

@testable import GRPCLite

/// The client against a fake server that breaks the protocol: every failure must end the
/// call promptly with a status that names what the server did.
final class HostileServerTests: XCTestCase {
    private var fixtures: TLSFixtures!

    override func setUpWithError() throws {
        fixtures = try TLSFixtures()
    }

    override func tearDown() {
        fixtures?.remove()
    }

    /// Calls a unary method on a fake server running `script`; returns the status the call
    /// failed with, or nil when it succeeded.
    private func unaryStatus(
        timeout: Duration = .seconds(5), _ script: @escaping @Sendable (RawHTTP2Client, UInt32) throws -> Void
    ) throws -> Status? {
        let server = try RawHTTP2Server(tls: fixtures.server, script: script)
        defer { server.stop() }
        let client = try GRPCClient(host: "127.0.0.1", port: server.port, tls: fixtures.client)
        defer { client.close() }
        do {
            _ = try client.unary("/interop.v1.Echo/Unary", request: [], timeout: timeout)
            return nil
        } catch let status as Status {
            return status
        }
    }

    private static let message = MessageFraming.frame(EchoResponse(text: "hi").serializedBytes())

    func testHugeLengthPrefix() throws {
        let status = try unaryStatus { peer, stream in
            try peer.send([
                RawHTTP2Server.responseHeaders(stream: stream),
                RawHTTP2Client.dataFrame(stream: stream, [0, 0xFF, 0xFF, 0xFF, 0xFF]),
            ])
            _ = peer.readFrame(timeout: 5) { $0.type == RawFrame.rstStream }
        }
        XCTAssertEqual(status?.code, .resourceExhausted, "\(String(describing: status))")
        XCTAssertTrue(status?.message.contains("4294967295 bytes") == true, "\(String(describing: status))")
    }

    func testServerClosesMidMessage() throws {
        let status = try unaryStatus { peer, stream in
            try peer.send([
                RawHTTP2Server.responseHeaders(stream: stream),
                RawHTTP2Client.dataFrame(stream: stream, Array(HostileServerTests.message.prefix(4))),
            ])
            shutdown(peer.fd, Int32(SHUT_RDWR))
        }
        XCTAssertEqual(status?.code, .unavailable, "\(String(describing: status))")
        XCTAssertTrue(status?.message.contains("closed") == true, "\(String(describing: status))")
    }

    func testInvalidGrpcStatus() throws {
        let table: [(description: String, trailers: [(String, String)], code: Status.Code, text: String)] = [
            ("missing", [], .unknown, "invalid grpc-status none"),
            ("not a number", [("grpc-status", "abc")], .unknown, "invalid grpc-status \"abc\""),
            ("unknown code", [("grpc-status", "17")], .unknown, "invalid grpc-status \"17\""),
            ("signed zero", [("grpc-status", "-0")], .unknown, "invalid grpc-status \"-0\""),
            ("plus sign", [("grpc-status", "+0")], .unknown, "invalid grpc-status \"+0\""),
            ("valid error", [("grpc-status", "5"), ("grpc-message", "gone%21")], .notFound, "gone!"),
        ]
        for row in table {
            let trailers = row.trailers
            let status = try unaryStatus { peer, stream in
                try peer.send([
                    RawHTTP2Server.responseHeaders(stream: stream),
                    RawHTTP2Client.dataFrame(stream: stream, HostileServerTests.message),
                    RawHTTP2Server.trailers(stream: stream, trailers),
                ])
                _ = peer.readFrame(timeout: 2) { $0.type == RawFrame.goAway }
            }
            XCTAssertEqual(status?.code, row.code, "\(row.description): \(String(describing: status))")
            XCTAssertTrue(
                status?.message.contains(row.text) == true, "\(row.description): \(String(describing: status))")
        }
    }

    func testHTTPErrorWithoutGrpcStatus() throws {
        let status = try unaryStatus { peer, stream in
            try peer.send([RawHTTP2Client.headersFrame(stream: stream, [(":status", "503")], endStream: true)])
            _ = peer.readFrame(timeout: 2) { $0.type == RawFrame.goAway }
        }
        XCTAssertEqual(status, Status(.unavailable, "server returned HTTP status 503 without a grpc-status"))
    }

    func testResponseHeadersOverLimit() throws {
        let status = try unaryStatus { peer, stream in
            // 72 fields of 1,000 bytes, over the client's 64 KiB limit, in 6 frames under 16 KiB
            // (nghttp2 rejects header blocks of more CONTINUATION frames as a flood).
            var frames: [RawFrame] = []
            for frameIndex in 0..<6 {
                let fields = (0..<12).map { ("x-h\(frameIndex)-\($0)", String(repeating: "v", count: 1000)) }
                frames.append(
                    RawFrame(type: RawFrame.continuation, flags: 0, stream: stream, payload: RawHPACK.encode(fields)))
            }
            frames[frames.count - 1].flags = RawFrame.endHeaders
            var first = RawHTTP2Server.responseHeaders(stream: stream)
            first.flags = 0
            try peer.send([first] + frames)
            _ = peer.readFrame(timeout: 5) { $0.type == RawFrame.rstStream }
        }
        XCTAssertEqual(status?.code, .resourceExhausted, "\(String(describing: status))")
        XCTAssertTrue(
            status?.message.hasSuffix("has more than 65536 bytes of headers") == true, "\(String(describing: status))")
    }

    func testSilentServerHitsDeadline() throws {
        let status = try unaryStatus(timeout: .milliseconds(300)) { peer, _ in
            _ = peer.readFrame(timeout: 5) { $0.type == RawFrame.rstStream }
        }
        XCTAssertEqual(status?.code, .deadlineExceeded, "\(String(describing: status))")
    }

    /// A server that stops responding and never acknowledges PINGs fails a call without a deadline.
    func testUnresponsiveServerDetectedByPing() throws {
        let server = try RawHTTP2Server(tls: fixtures.server) { peer, _ in
            _ = peer.readFrame(timeout: 10) { _ in false }
        }
        defer { server.stop() }
        var options = GRPCClient.Options()
        options.keepaliveInterval = .milliseconds(200)
        options.keepaliveTimeout = .milliseconds(200)
        let client = try GRPCClient(host: "127.0.0.1", port: server.port, tls: fixtures.client, options: options)
        let connection = try client.openConnection()
        defer { connection.close(reason: nil) }
        var status: Status?
        connection.startCall(
            method: "/interop.v1.Echo/Unary", request: [], timeout: nil, onMessage: { _ in true },
            onFinish: { status = $0 })
        XCTAssertTrue(try client.eventLoop.run(until: { status != nil }, timeout: .seconds(5)), "call still waiting")
        XCTAssertEqual(status?.code, .unavailable, "\(String(describing: status))")
        XCTAssertTrue(
            status?.message.contains("did not acknowledge a PING within 0.2 seconds") == true,
            "\(String(describing: status))")
    }

    /// A call that ends while nghttp2 holds one of its request DATA frames, here a large
    /// request whose deadline passes while the server does not read, must not take the
    /// connection and its other calls down.
    func testDeadlineWhileRequestBlockedKeepsConnection() throws {
        let server = try RawHTTP2Server(tls: fixtures.server, waitForRequestEnd: false) { peer, stream in
            // Open the flow-control windows so the client fills the socket, then stop reading.
            try peer.send([
                RawFrame(type: RawFrame.settings, flags: 0, stream: 0, payload: [0, 4] + RawFrame.uint32(0x7FFF_FFFF)),
                RawFrame(type: RawFrame.windowUpdate, flags: 0, stream: 0, payload: RawFrame.uint32(0x7FFF_0000)),
            ])
            Thread.sleep(forTimeInterval: 1)

            // Read again: the second call must arrive on the same connection.
            guard
                let next = peer.readFrame(timeout: 20, until: { $0.type == RawFrame.headers && $0.stream != stream }),
                peer.readFrame(timeout: 10, until: { $0.stream == next.stream && $0.flags & RawFrame.endStream != 0 })
                    != nil
            else { return }
            try peer.send([
                RawHTTP2Server.responseHeaders(stream: next.stream),
                RawHTTP2Client.dataFrame(stream: next.stream, HostileServerTests.message),
                RawHTTP2Server.trailers(stream: next.stream, [("grpc-status", "0")]),
            ])
            _ = peer.readFrame(timeout: 5) { $0.type == RawFrame.goAway }
        }
        defer { server.stop() }
        let client = try GRPCClient(host: "127.0.0.1", port: server.port, tls: fixtures.client)
        let connection = try client.openConnection()
        defer { connection.close(reason: nil) }

        var first: Status?
        connection.startCall(
            method: "/interop.v1.Echo/Unary", request: [UInt8](repeating: 1, count: 32 * 1024 * 1024),
            timeout: .milliseconds(300), onMessage: { _ in true }, onFinish: { first = $0 })
        XCTAssertTrue(try client.eventLoop.run(until: { first != nil }, timeout: .seconds(10)))
        XCTAssertEqual(first?.code, .deadlineExceeded, "\(String(describing: first))")

        var second: Status?
        var messages = 0
        connection.startCall(
            method: "/interop.v1.Echo/Unary", request: [], timeout: nil,
            onMessage: { _ in
                messages += 1
                return true
            }, onFinish: { second = $0 })
        XCTAssertTrue(try client.eventLoop.run(until: { second != nil }, timeout: .seconds(20)))
        XCTAssertEqual(second, .ok)
        XCTAssertEqual(messages, 1)
    }
}
