import Foundation
import Reactor
import XCTest

@testable import GRPCLite

/// The non-blocking client: many calls on one connection, streams, cancel, deadlines and
/// connect failures, against the GRPCLite test server on its own thread.
final class GRPCChannelTests: XCTestCase {
    private var fixtures: TLSFixtures!
    private var server: TestServer!
    private var loop: EventLoop!

    override func setUpWithError() throws {
        fixtures = try TLSFixtures()
        var options = GRPCServer.Options()
        options.maxConcurrentStreams = 64
        server = try TestServer(tls: fixtures.server, options: options) { server, _, recorder in
            EchoService.install(on: server, recorder: recorder)
        }
        loop = try EventLoop()
    }

    override func tearDown() {
        server?.stop()
        fixtures?.remove()
    }

    private func makeChannel(port: UInt16? = nil, options: GRPCClient.Options = .init()) throws -> GRPCChannel {
        try GRPCChannel(
            loop: loop, host: "127.0.0.1", port: port ?? server.port, tls: fixtures.client, options: options)
    }

    /// 500 unary calls started at once on one channel, more than the server's 64 streams, so
    /// the channel's queue feeds them in as earlier calls finish.
    func testUnaryManyConcurrentCalls() throws {
        let channel = try makeChannel()
        defer { channel.close() }
        let total = 500
        var texts: [Int: String] = [:]
        var failures: [Status] = []
        for index in 0..<total {
            let request = EchoRequest(text: "call \(index)").serializedBytes()
            channel.startUnary(EchoProto.service + "Unary", request: request, timeout: .seconds(30)) { result in
                switch result {
                case .success(let bytes):
                    texts[index] = (try? EchoResponse(serializedBytes: bytes))?.text
                case .failure(let status):
                    failures.append(status)
                }
            }
        }
        let finished = try loop.run(until: { texts.count + failures.count == total }, timeout: .seconds(60))

        XCTAssertTrue(finished, "\(texts.count + failures.count) of \(total) calls finished")
        XCTAssertEqual(failures.count, 0, "first failure: \(failures.first.map(\.description) ?? "none")")
        XCTAssertEqual(texts.count, total)
        XCTAssertEqual(texts[499]?.hasPrefix("call 499|cn="), true)
    }

    /// More calls than the queue holds: the extra ones fail with RESOURCE_EXHAUSTED.
    func testUnaryQueueBoundExhausted() throws {
        var options = GRPCClient.Options()
        options.maxQueuedCalls = 10
        let channel = try makeChannel(options: options)
        defer { channel.close() }
        var statuses: [Status.Code] = []
        for _ in 0..<15 {
            channel.startUnary(EchoProto.service + "Unary", request: [], timeout: .seconds(30)) { result in
                if case .failure(let status) = result {
                    statuses.append(status.code)
                } else {
                    statuses.append(.ok)
                }
            }
        }
        let finished = try loop.run(until: { statuses.count == 15 }, timeout: .seconds(30))

        XCTAssertTrue(finished)
        XCTAssertEqual(statuses.filter { $0 == .ok }.count, 10)
        XCTAssertEqual(statuses.filter { $0 == .resourceExhausted }.count, 5)
    }

    /// A server stream of 5,000 messages arrives whole and in order.
    func testServerStreamingManyMessages() throws {
        let channel = try makeChannel()
        defer { channel.close() }
        var indexes: [Int32] = []
        var status: Status?
        let request = EchoRequest(count: 5000, responseSize: 512).serializedBytes()
        channel.startServerStreaming(
            EchoProto.service + "Stream", request: request, timeout: .seconds(60),
            onMessage: { bytes in
                if let response = try? EchoResponse(serializedBytes: bytes) {
                    indexes.append(response.index)
                }
            },
            onFinish: { status = $0 })
        let finished = try loop.run(until: { status != nil }, timeout: .seconds(60))

        XCTAssertTrue(finished)
        XCTAssertEqual(status?.code, .ok, status?.description ?? "")
        XCTAssertEqual(indexes.count, 5000)
        XCTAssertEqual(indexes, (0..<5000).map { Int32($0) })
    }

    /// Cancelling a stream after its first messages resets it, and the server sees the cancel.
    func testServerStreamingCancelReachesServer() throws {
        let channel = try makeChannel()
        defer { channel.close() }
        var messages = 0
        var status: Status?
        var handle: ClientCallHandle?
        let request = EchoRequest(count: 1_000_000, responseSize: 1024).serializedBytes()
        handle = channel.startServerStreaming(
            EchoProto.service + "Stream", request: request, timeout: .seconds(60),
            onMessage: { _ in
                messages += 1
                if messages == 10 { handle?.cancel() }
            },
            onFinish: { status = $0 })
        let finished = try loop.run(until: { status != nil }, timeout: .seconds(30))

        XCTAssertTrue(finished)
        XCTAssertEqual(status?.code, .cancelled)
        XCTAssertEqual(messages, 10, "messages arrived after the cancel")
        XCTAssertTrue(server.wait { server.counter("cancelled") == 1 }, "the server saw no cancel")
    }

    /// A call the server never answers fails with DEADLINE_EXCEEDED after its timeout.
    func testUnaryDeadlineExceeded() throws {
        let channel = try makeChannel()
        defer { channel.close() }
        var result: Result<[UInt8], Status>?
        let started = MonotonicClock.nanoseconds()
        channel.startUnary(EchoProto.service + "Hang", request: [], timeout: .milliseconds(300)) { result = $0 }
        let finished = try loop.run(until: { result != nil }, timeout: .seconds(10))
        let elapsed = Double(MonotonicClock.nanoseconds() - started) / 1e9

        XCTAssertTrue(finished)
        guard case .failure(let status) = result else {
            return XCTFail("expected DEADLINE_EXCEEDED, got \(String(describing: result))")
        }
        XCTAssertEqual(status.code, .deadlineExceeded)
        XCTAssertGreaterThanOrEqual(elapsed, 0.29)
    }

    /// A port with no listener: the call and `onClose` report UNAVAILABLE, nothing throws.
    func testConnectRefusedUnavailable() throws {
        let fd = try Socket.makeSocket(family: AF_INET)
        defer { Syscall.close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        // Bound but not listening, so the port is free of listeners and stays ours.
        _ = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) }
        }
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        let port = UInt16(bigEndian: address.sin_port)

        let channel = try makeChannel(port: port)
        var result: Result<[UInt8], Status>?
        var closeStatus: Status??
        channel.onClose = { closeStatus = $0 }
        channel.startUnary(EchoProto.service + "Unary", request: [], timeout: .seconds(5)) { result = $0 }
        let finished = try loop.run(until: { result != nil && closeStatus != nil }, timeout: .seconds(10))

        XCTAssertTrue(finished)
        guard case .failure(let status) = result else {
            return XCTFail("expected UNAVAILABLE, got \(String(describing: result))")
        }
        XCTAssertEqual(status.code, .unavailable)
        XCTAssertTrue(status.message.contains("connection refused"), status.message)
        XCTAssertEqual(closeStatus??.code, .unavailable)
    }

    /// After `close()` calls fail with UNAVAILABLE and the loop holds no registration.
    func testCloseFailsLaterCalls() throws {
        let registeredBefore = loop.registeredCount
        let channel = try makeChannel()
        var first: Result<[UInt8], Status>?
        channel.startUnary(EchoProto.service + "Unary", request: [], timeout: .seconds(10)) { first = $0 }
        XCTAssertTrue(try loop.run(until: { first != nil }, timeout: .seconds(10)))
        channel.close()

        var second: Result<[UInt8], Status>?
        channel.startUnary(EchoProto.service + "Unary", request: [], timeout: .seconds(10)) { second = $0 }
        XCTAssertTrue(try loop.run(until: { second != nil }, timeout: .seconds(10)))

        guard case .success = first else { return XCTFail("first call failed: \(String(describing: first))") }
        guard case .failure(let status) = second else { return XCTFail("second call succeeded after close") }
        XCTAssertEqual(status.code, .unavailable)
        XCTAssertEqual(loop.registeredCount, registeredBefore)
    }

    /// Cancelling inside `onMessage` stops delivery at once, also for the rest of a DATA frame
    /// that carries five messages.
    func testServerStreamingCancelInsideFrame() throws {
        let server = try RawHTTP2Server(tls: fixtures.server) { peer, stream in
            let messages = (0..<5).flatMap { MessageFraming.frame(EchoResponse(index: Int32($0)).serializedBytes()) }
            try peer.send([
                RawHTTP2Server.responseHeaders(stream: stream),
                RawFrame(type: RawFrame.data, flags: 0, stream: stream, payload: messages),
            ])
            _ = peer.readFrame(timeout: 5) { $0.type == RawFrame.rstStream }
        }
        defer { server.stop() }
        let channel = try makeChannel(port: server.port)
        defer { channel.close() }
        var messages = 0
        var status: Status?
        var handle: ClientCallHandle?
        handle = channel.startServerStreaming(
            EchoProto.service + "Stream", request: [], timeout: .seconds(10),
            onMessage: { _ in
                messages += 1
                if messages == 2 { handle?.cancel() }
            },
            onFinish: { status = $0 })
        let finished = try loop.run(until: { status != nil }, timeout: .seconds(10))

        XCTAssertTrue(finished)
        XCTAssertEqual(status?.code, .cancelled)
        XCTAssertEqual(messages, 2, "messages arrived after the cancel")
    }

    /// A 200 response without grpc-status, as nghttpd sends for a file, is OK only with
    /// `acceptsPlainHTTPResponses`; by default its content-type makes it UNKNOWN.
    func testUnaryPlainHTTPResponse() throws {
        let body = MessageFraming.frame(EchoResponse(text: "file").serializedBytes())
        for accepts in [true, false] {
            let server = try RawHTTP2Server(tls: fixtures.server) { peer, stream in
                try peer.send([
                    RawHTTP2Client.headersFrame(
                        stream: stream, [(":status", "200"), ("content-type", "application/octet-stream")]),
                    RawFrame(type: RawFrame.data, flags: RawFrame.endStream, stream: stream, payload: body),
                ])
                _ = peer.readFrame(timeout: 2) { _ in false }
            }
            defer { server.stop() }
            let channel = try makeChannel(port: server.port)
            defer { channel.close() }
            var result: Result<[UInt8], Status>?
            channel.startUnary(
                EchoProto.service + "Unary", request: [], timeout: .seconds(10), acceptsPlainHTTPResponses: accepts
            ) { result = $0 }
            XCTAssertTrue(try loop.run(until: { result != nil }, timeout: .seconds(10)))

            switch result {
            case .success(let bytes):
                XCTAssertTrue(accepts, "plain HTTP response accepted without the flag")
                XCTAssertEqual(try EchoResponse(serializedBytes: bytes).text, "file")
            case .failure(let status):
                XCTAssertFalse(accepts, "plain HTTP response rejected with the flag: \(status)")
                XCTAssertEqual(status.code, .unknown)
            case nil:
                XCTFail("no result")
            }
        }
    }
}
