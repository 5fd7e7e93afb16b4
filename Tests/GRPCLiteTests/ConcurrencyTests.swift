import Foundation
import Reactor
import XCTest

@testable import GRPCLite

/// Many streams at once, and a client that stops reading.
final class ConcurrencyTests: XCTestCase {
    private var fixtures: TLSFixtures!

    override func setUpWithError() throws {
        fixtures = try TLSFixtures()
    }

    override func tearDown() {
        fixtures?.remove()
    }

    /// 1,000 streams over 50 connections, all open at the same time: the server holds every
    /// call until the 1,000th arrives, so the test finishes only if they are concurrent.
    func testThousandConcurrentStreamsOverFiftyConnections() throws {
        let total = 1000
        let server = try TestServer(tls: fixtures.server) { server, _, recorder in
            var waiting: [ServerStreamWriter] = []
            server.registerServerStreaming("/interop.v1.Echo/Gate") { _, _, writer in
                waiting.append(writer)
                recorder.increment("arrived")
                guard waiting.count == total else { return }
                for (index, held) in waiting.enumerated() {
                    held.write(EchoResponse(index: Int32(index)).serializedBytes())
                    held.write(EchoResponse(index: Int32(index + 1)).serializedBytes())
                    held.finish(.ok)
                }
                waiting.removeAll()
            }
        }
        defer { server.stop() }

        let client = try GRPCClient(host: "127.0.0.1", port: server.port, tls: fixtures.client)
        let connections = try (0..<50).map { _ in try client.openConnection() }
        var statuses: [Status] = []
        var messages = 0
        for index in 0..<total {
            connections[index % connections.count].startCall(
                method: "/interop.v1.Echo/Gate", request: [], timeout: .seconds(60),
                onMessage: { _ in
                    messages += 1
                    return true
                },
                onFinish: { statuses.append($0) })
        }
        let finished = try client.eventLoop.run(until: { statuses.count == total }, timeout: .seconds(60))

        XCTAssertTrue(
            finished, "\(statuses.count) of \(total) calls finished; \(server.counter("arrived")) reached the server")
        XCTAssertEqual(server.counter("arrived"), total)
        XCTAssertEqual(
            statuses.filter(\.isOK).count, total,
            "first failure: \(statuses.first { !$0.isOK }.map(\.description) ?? "none")")
        XCTAssertEqual(messages, 2 * total)
        for connection in connections {
            connection.close(reason: nil)
        }
    }

    /// One shared chunk written by reference to many streams arrives intact on each, though
    /// every copy is split across DATA frames at different offsets.
    func testSharedPayloadFansOut() throws {
        let chunk = (0..<100_000).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
        let server = try TestServer(tls: fixtures.server) { server, _, _ in
            let shared = SharedBytes(chunk)
            server.registerServerStreaming("/interop.v1.Echo/Fanout") { _, _, writer in
                for index in 0..<5 {
                    var prefix = ProtobufWriter()
                    prefix.writeInt32(Int32(index), field: 2)
                    prefix.writeLengthDelimitedHeader(field: 3, length: shared.count)
                    writer.write(prefix: prefix.bytes, payload: shared)
                }
                writer.finish(.ok)
            }
        }
        defer { server.stop() }

        let client = try GRPCClient(host: "127.0.0.1", port: server.port, tls: fixtures.client)
        let connection = try client.openConnection()
        defer { connection.close(reason: nil) }
        var responses: [[EchoResponse]] = Array(repeating: [], count: 10)
        var statuses: [Status] = []
        for stream in 0..<10 {
            connection.startCall(
                method: "/interop.v1.Echo/Fanout", request: [], timeout: .seconds(30),
                onMessage: { bytes in
                    responses[stream].append((try? EchoResponse(serializedBytes: bytes)) ?? EchoResponse(index: -1))
                    return true
                },
                onFinish: { statuses.append($0) })
        }
        XCTAssertTrue(try client.eventLoop.run(until: { statuses.count == 10 }, timeout: .seconds(30)))

        XCTAssertEqual(statuses, Array(repeating: .ok, count: 10))
        for (stream, messages) in responses.enumerated() {
            XCTAssertEqual(messages.map(\.index), [0, 1, 2, 3, 4], "stream \(stream)")
            XCTAssertTrue(messages.allSatisfy { $0.payload == chunk }, "stream \(stream) payload differs")
        }
    }

    /// A client that stops reading mid-stream, with flow-control windows smaller than the
    /// kernel's socket buffers: HTTP/2 flow control stops the server.
    func testStalledReaderWithSmallWindow() throws {
        try checkStalledReader(window: 256 * 1024, expectSocketFull: false)
    }

    /// The same with windows far larger than the socket buffers: the server's output buffer
    /// fills and it stops taking frames from the stream.
    func testStalledReaderWithLargeWindow() throws {
        try checkStalledReader(window: 256 * 1024 * 1024, expectSocketFull: true)
    }

    /// Checks that the server's handler stops at `isWritable` and the bytes the server
    /// buffers stay within its connection and stream limits.
    private func checkStalledReader(window: Int32, expectSocketFull: Bool) throws {
        var options = GRPCServer.Options()
        options.connectionOutputLimit = 128 * 1024
        options.streamWriteLimit = 64 * 1024
        let messageSize = 16 * 1024
        let server = try TestServer(tls: fixtures.server, options: options) { server, _, recorder in
            let payload = SharedBytes([UInt8](repeating: 0x63, count: messageSize))
            server.registerServerStreaming("/interop.v1.Echo/Flood") { _, _, writer in
                func pump() {
                    while writer.isWritable {
                        var prefix = ProtobufWriter()
                        prefix.writeLengthDelimitedHeader(field: 3, length: payload.count)
                        writer.write(prefix: prefix.bytes, payload: payload)
                        recorder.increment("sent")
                    }
                }
                writer.onWritable = pump
                pump()
            }
        }
        defer { server.stop() }

        var clientOptions = GRPCClient.Options()
        clientOptions.initialWindowSize = window
        let client = try GRPCClient(host: "127.0.0.1", port: server.port, tls: fixtures.client, options: clientOptions)
        let connection = try client.openConnection()
        var received = 0
        var finalStatus: Status?
        connection.startCall(
            method: "/interop.v1.Echo/Flood", request: [], timeout: nil,
            onMessage: { _ in
                received += 1
                return true
            },
            onFinish: { finalStatus = $0 })
        XCTAssertTrue(
            try client.eventLoop.run(until: { received >= 10 }, timeout: .seconds(10)), "received \(received) messages")

        // Stop reading: the client's loop does not run until the end of the test. Wait until
        // the server has stopped sending, which proves it is blocked on the stalled reader.
        var lastSent = -1
        let blocked = server.wait(timeout: 20) {
            let sent = server.counter("sent")
            defer { lastSent = sent }
            if sent == lastSent {
                Thread.sleep(forTimeInterval: 0.5)
                return server.counter("sent") == sent
            }
            return false
        }
        XCTAssertTrue(blocked, "server kept writing to a stalled reader: \(server.counter("sent")) messages")
        Thread.sleep(forTimeInterval: 0.3)

        // Connection output limit, plus one DATA frame taken past it, plus the stream's queue
        // (its limit and one message written while under it), plus TLS record overhead.
        let bound = options.connectionOutputLimit + 16 * 1024 + options.streamWriteLimit + messageSize + 16 * 1024
        XCTAssertLessThanOrEqual(
            server.maxBufferedBytes, bound, "sent \(server.counter("sent")) messages of \(messageSize) bytes")
        XCTAssertGreaterThan(server.bufferedBytes, 0, "the stalled reader should leave bytes buffered on the server")
        if expectSocketFull {
            XCTAssertGreaterThanOrEqual(
                server.maxBufferedBytes, options.connectionOutputLimit, "the server's output buffer never filled")
        } else {
            XCTAssertLessThanOrEqual(server.counter("sent") * messageSize, Int(window) + 16 * messageSize + bound)
        }
        XCTAssertNil(finalStatus)

        connection.close(reason: nil)
    }
}
