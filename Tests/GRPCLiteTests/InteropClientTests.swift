import Foundation
import GRPCLite
import Reactor
import XCTest

/// GRPCLite's client calls a grpcio server (C core) over mutual TLS.
final class InteropClientTests: XCTestCase {
    private var fixtures: TLSFixtures!
    private var workspace: PythonWorkspace!
    private var serverProcess: Process?
    private var serverInput: Pipe?
    private var port: UInt16 = 0

    override func setUpWithError() throws {
        let python = try PythonEnvironment.python()
        fixtures = try TLSFixtures()
        workspace = try PythonWorkspace(python: python)
        let script = try workspace.write(script: PythonServerScript.source, named: "server.py")

        let process = Process()
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments = [
            script, workspace.directory, fixtures.caFile, fixtures.serverCertificate, fixtures.serverKey,
        ]
        let output = Pipe()
        let input = Pipe()
        process.standardOutput = output
        process.standardInput = input
        try process.run()
        serverProcess = process
        serverInput = input

        // The first line is "port N" once the server listens.
        var line = Data()
        while !line.contains(UInt8(ascii: "\n")) {
            let chunk = output.fileHandleForReading.availableData
            guard !chunk.isEmpty else { break }
            line.append(chunk)
        }
        let text = String(decoding: line, as: UTF8.self)
        guard text.hasPrefix("port "),
            let value = UInt16(text.dropFirst(5).trimmingCharacters(in: .whitespacesAndNewlines))
        else {
            XCTFail("grpcio server did not report its port: \(text)")
            return
        }
        port = value
    }

    override func tearDown() {
        try? serverInput?.fileHandleForWriting.close()
        serverProcess?.waitUntilExit()
        workspace?.remove()
        fixtures?.remove()
    }

    private func makeClient() throws -> GRPCClient {
        try GRPCClient(host: "127.0.0.1", port: port, tls: fixtures.client)
    }

    private func cancelledCount(_ client: GRPCClient) throws -> Int {
        let bytes = try client.unary("/interop.v1.Echo/Stats", request: [], timeout: .seconds(10))
        let text = try EchoResponse(serializedBytes: bytes).text
        return Int(text.split(separator: "=").last ?? "") ?? -1
    }

    func testUnary() throws {
        let client = try makeClient()
        let bytes = try client.unary(
            "/interop.v1.Echo/Unary", request: EchoRequest(text: "hi").serializedBytes(), timeout: .seconds(10))
        XCTAssertEqual(try EchoResponse(serializedBytes: bytes).text, "hi|python")
    }

    func testServerStreamingTenThousandMessages() throws {
        let client = try makeClient()
        var indexes: [Int32] = []
        try client.serverStreaming(
            "/interop.v1.Echo/Stream", request: EchoRequest(count: 10_000, responseSize: 100).serializedBytes(),
            timeout: .seconds(60)
        ) { bytes in
            indexes.append((try? EchoResponse(serializedBytes: bytes).index) ?? -1)
            return true
        }
        XCTAssertEqual(indexes.count, 10_000)
        XCTAssertEqual(indexes, Array(0..<10_000))
    }

    func testFourMebibyteMessage() throws {
        let client = try makeClient()
        let payload = (0..<(4 * 1024 * 1024 - 64)).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        let bytes = try client.unary(
            "/interop.v1.Echo/Unary", request: EchoRequest(text: "big", payload: payload).serializedBytes(),
            timeout: .seconds(30))
        XCTAssertEqual(try EchoResponse(serializedBytes: bytes).payload, payload)
    }

    func testResponseOverLimitIsResourceExhausted() throws {
        let client = try makeClient()
        let request = EchoRequest(responseSize: 4 * 1024 * 1024 + 1).serializedBytes()
        XCTAssertThrowsError(try client.unary("/interop.v1.Echo/Unary", request: request, timeout: .seconds(30))) {
            error in
            XCTAssertEqual((error as? Status)?.code, .resourceExhausted, "\(error)")
        }
    }

    func testDeadlineExpires() throws {
        let client = try makeClient()
        let before = try cancelledCount(client)
        XCTAssertThrowsError(try client.unary("/interop.v1.Echo/Hang", request: [], timeout: .milliseconds(300))) {
            error in
            XCTAssertEqual((error as? Status)?.code, .deadlineExceeded, "\(error)")
        }
        XCTAssertTrue(
            try waitForCancelCount(client, above: before), "grpcio handler saw no cancellation after the deadline")
    }

    func testCancelMidStream() throws {
        let client = try makeClient()
        let before = try cancelledCount(client)
        var received = 0
        try client.serverStreaming(
            "/interop.v1.Echo/Stream", request: EchoRequest(count: 100_000_000, responseSize: 1000).serializedBytes(),
            timeout: .seconds(60)
        ) { _ in
            received += 1
            return received < 10
        }
        XCTAssertEqual(received, 10)
        XCTAssertTrue(try waitForCancelCount(client, above: before), "grpcio handler saw no cancellation")
    }

    func testErrorStatusAndMessage() throws {
        let client = try makeClient()
        let message = "bad value \"50%\": café ☃"
        XCTAssertThrowsError(
            try client.unary(
                "/interop.v1.Echo/Unary", request: EchoRequest(text: "fail:" + message).serializedBytes(),
                timeout: .seconds(10))
        ) { error in
            XCTAssertEqual(error as? Status, Status(.invalidArgument, message))
        }
    }

    func testUnknownMethodIsUnimplemented() throws {
        let client = try makeClient()
        XCTAssertThrowsError(try client.unary("/interop.v1.Echo/Nope", request: [], timeout: .seconds(10))) { error in
            XCTAssertEqual((error as? Status)?.code, .unimplemented, "\(error)")
        }
    }

    private func waitForCancelCount(_ client: GRPCClient, above before: Int) throws -> Bool {
        for _ in 0..<100 {
            if try cancelledCount(client) > before { return true }
            Thread.sleep(forTimeInterval: 0.05)
        }
        return false
    }

    /// 200 unary calls and a 10,000-message stream at once on one `GRPCChannel`.
    func testChannelConcurrentCallsOnOneConnection() throws {
        let loop = try EventLoop()
        let channel = try GRPCChannel(loop: loop, host: "127.0.0.1", port: port, tls: fixtures.client)
        defer { channel.close() }
        var unaryResults: [Result<[UInt8], Status>] = []
        var streamMessages = 0
        var streamStatus: Status?
        for index in 0..<200 {
            let request = EchoRequest(text: "call \(index)").serializedBytes()
            channel.startUnary("/interop.v1.Echo/Unary", request: request, timeout: .seconds(30)) {
                unaryResults.append($0)
            }
        }
        channel.startServerStreaming(
            "/interop.v1.Echo/Stream", request: EchoRequest(count: 10_000, responseSize: 100).serializedBytes(),
            timeout: .seconds(60), onMessage: { _ in streamMessages += 1 }, onFinish: { streamStatus = $0 })
        let finished = try loop.run(
            until: { unaryResults.count == 200 && streamStatus != nil }, timeout: .seconds(60))

        XCTAssertTrue(
            finished, "\(unaryResults.count) unary calls finished, stream status \(String(describing: streamStatus))")
        let failures = unaryResults.compactMap { result -> Status? in
            if case .failure(let status) = result { return status }
            return nil
        }
        XCTAssertEqual(failures.count, 0, "first failure: \(failures.first.map(\.description) ?? "none")")
        XCTAssertEqual(streamStatus?.code, .ok, streamStatus?.description ?? "")
        XCTAssertEqual(streamMessages, 10_000)
    }

    /// Cancelling from inside `onMessage` stops delivery at once, even within a DATA frame
    /// that carries more messages, as grpcio's frames do.
    func testChannelCancelInsideOnMessage() throws {
        let loop = try EventLoop()
        let channel = try GRPCChannel(loop: loop, host: "127.0.0.1", port: port, tls: fixtures.client)
        defer { channel.close() }
        var messages = 0
        var status: Status?
        var handle: ClientCallHandle?
        handle = channel.startServerStreaming(
            "/interop.v1.Echo/Stream", request: EchoRequest(count: 100_000, responseSize: 10).serializedBytes(),
            timeout: .seconds(60),
            onMessage: { _ in
                messages += 1
                if messages == 10 { handle?.cancel() }
            },
            onFinish: { status = $0 })
        let finished = try loop.run(until: { status != nil }, timeout: .seconds(30))

        XCTAssertTrue(finished)
        XCTAssertEqual(status?.code, .cancelled)
        XCTAssertEqual(messages, 10, "messages arrived after the cancel")
    }
}
