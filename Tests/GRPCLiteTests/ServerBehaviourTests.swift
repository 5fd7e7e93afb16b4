import Foundation
import Glibc
import Reactor
import XCTest

@testable import GRPCLite

/// Server features beyond the wire protocol: interceptors, late replies, deadlines,
/// graceful shutdown, certificate reload and connection events.
final class ServerBehaviourTests: XCTestCase {
    private var fixtures: TLSFixtures!

    override func setUpWithError() throws {
        fixtures = try TLSFixtures(clientCommonName: "alice", roles: "reader")
    }

    override func tearDown() {
        fixtures?.remove()
    }

    private func client(_ server: TestServer, tls: TLSConfiguration? = nil) throws -> GRPCClient {
        try GRPCClient(host: "127.0.0.1", port: server.port, tls: tls ?? fixtures.client)
    }

    func testInterceptorSeesPeerAndRejects() throws {
        let server = try TestServer(tls: fixtures.server) { server, _, recorder in
            EchoService.install(on: server, recorder: recorder)
            server.addInterceptor { context in
                let roles = context.peer.utf8StringExtension(oid: CertificateAuthority.rolesOID) ?? ""
                context.userInfo["roles"] = roles
                if context.method.hasSuffix("/Unary") && !roles.split(separator: ",").contains("writer") {
                    return Status(
                        .permissionDenied,
                        "\(context.peer.commonName ?? "?") with roles \"\(roles)\" may not call \(context.method)")
                }
                return nil
            }
        }
        defer { server.stop() }

        let client = try client(server)
        XCTAssertThrowsError(try client.unary("/interop.v1.Echo/Unary", request: [], timeout: .seconds(10))) { error in
            XCTAssertEqual(
                error as? Status,
                Status(.permissionDenied, "alice with roles \"reader\" may not call /interop.v1.Echo/Unary"))
        }
        // Other methods pass the interceptor on the same connection.
        let stats = try client.unary("/interop.v1.Echo/Stats", request: [], timeout: .seconds(10))
        XCTAssertEqual(try EchoResponse(serializedBytes: stats).text, "cancelled=0")
    }

    func testServerEnforcesDeadline() throws {
        let server = try TestServer(tls: fixtures.server) { server, _, recorder in
            EchoService.install(on: server, recorder: recorder)
        }
        defer { server.stop() }

        let client = try client(server)
        let connection = try client.openConnection()
        defer { connection.close(reason: nil) }
        var status: Status?
        connection.startCall(
            method: "/interop.v1.Echo/Hang", request: [], timeout: .milliseconds(200), localTimeout: .seconds(10),
            onMessage: { _ in true }, onFinish: { status = $0 })
        XCTAssertTrue(try client.eventLoop.run(until: { status != nil }, timeout: .seconds(10)))
        XCTAssertEqual(status, Status(.deadlineExceeded, "deadline exceeded"))
        XCTAssertTrue(server.wait { server.counter("cancelled") == 1 }, "handler's onCancel did not run")
    }

    func testMaxReceiveSizeIsConfigurable() throws {
        var options = GRPCServer.Options()
        options.maxReceiveMessageSize = 1000
        let server = try TestServer(tls: fixtures.server, options: options) { server, _, recorder in
            EchoService.install(on: server, recorder: recorder)
        }
        defer { server.stop() }

        let client = try client(server)
        let small = EchoRequest(payload: [UInt8](repeating: 1, count: 900)).serializedBytes()
        XCTAssertNoThrow(try client.unary("/interop.v1.Echo/Unary", request: small, timeout: .seconds(10)))
        let large = EchoRequest(payload: [UInt8](repeating: 1, count: 1001)).serializedBytes()
        XCTAssertThrowsError(try client.unary("/interop.v1.Echo/Unary", request: large, timeout: .seconds(10))) {
            error in
            XCTAssertEqual(
                error as? Status,
                Status(
                    .resourceExhausted, "message of \(large.count) bytes exceeds the maximum receive size of 1000 bytes"
                ))
        }
    }

    func testConnectionReceiveLimit() throws {
        var options = GRPCServer.Options()
        options.connectionReceiveLimit = 100 * 1024
        let server = try TestServer(tls: fixtures.server, options: options) { server, _, recorder in
            EchoService.install(on: server, recorder: recorder)
        }
        defer { server.stop() }

        let client = try client(server)
        let request = EchoRequest(payload: [UInt8](repeating: 1, count: 200 * 1024)).serializedBytes()
        XCTAssertThrowsError(try client.unary("/interop.v1.Echo/Unary", request: request, timeout: .seconds(10))) {
            error in
            XCTAssertEqual(
                error as? Status,
                Status(.resourceExhausted, "connection holds more than 102400 bytes of unfinished requests"))
        }
        // The limit counts only what is held: the next call on the connection succeeds.
        let small = EchoRequest(payload: [UInt8](repeating: 1, count: 60 * 1024)).serializedBytes()
        XCTAssertNoThrow(try client.unary("/interop.v1.Echo/Unary", request: small, timeout: .seconds(10)))
    }

    func testReleasedServerClosesConnections() throws {
        let loop = try EventLoop()
        var server: GRPCServer? = try GRPCServer(loop: loop, tls: fixtures.server)
        let port = try server!.listen(host: "127.0.0.1", port: 0).port
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        _ = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        XCTAssertTrue(try loop.run(until: { server!.connectionCount == 1 }, timeout: .seconds(5)))
        server = nil
        // The server closed our connection: a read returns end of file.
        var byte: UInt8 = 0
        XCTAssertEqual(read(fd, &byte, 1), 0)
    }

    /// Handlers' closures capture their writer, which refers to its call; the call must
    /// still be freed once its stream closes.
    func testFinishedCallIsReleased() throws {
        let tracker = WeakTracker()
        let server = try TestServer(tls: fixtures.server) { server, _, _ in
            server.registerServerStreaming("/interop.v1.Echo/Stream") { context, _, writer in
                tracker.track(writer)
                context.onCancel = { _ = writer }
                writer.onWritable = { writer.write([]) }
                writer.write(EchoResponse(index: 1).serializedBytes())
                writer.finish(.ok)
            }
        }
        defer { server.stop() }

        let client = try client(server)
        var count = 0
        try client.serverStreaming("/interop.v1.Echo/Stream", request: [], timeout: .seconds(10)) { _ in
            count += 1
            return true
        }
        XCTAssertEqual(count, 1)
        XCTAssertTrue(server.wait { tracker.isReleased }, "the writer of a finished call is still alive")
    }

    func testIPv6Loopback() throws {
        let server: TestServer
        do {
            server = try TestServer(tls: fixtures.server, host: "::1") { server, _, recorder in
                EchoService.install(on: server, recorder: recorder)
            }
        } catch let error as SystemError where error.errno == EADDRNOTAVAIL || error.errno == EAFNOSUPPORT {
            throw XCTSkip("no IPv6 loopback on this machine: \(error)")
        }
        defer { server.stop() }

        let client = try GRPCClient(host: "::1", port: server.port, tls: fixtures.client)
        let bytes = try client.unary(
            "/interop.v1.Echo/Unary", request: EchoRequest(text: "v6").serializedBytes(), timeout: .seconds(10))
        XCTAssertEqual(try EchoResponse(serializedBytes: bytes).text, "v6|cn=alice|roles=reader")
        guard case .accepted(let address, _) = server.events.first else {
            return XCTFail("no accepted event: \(server.events)")
        }
        XCTAssertTrue(address.hasPrefix("[::1]:"), address)
    }

    func testPingAcknowledged() throws {
        let server = try TestServer(tls: fixtures.server) { _, _, _ in }
        defer { server.stop() }

        let client = try client(server)
        let connection = try client.openConnection()
        defer { connection.close(reason: nil) }
        connection.http2?.submitPing()
        connection.scheduleFlush()
        XCTAssertTrue(
            try client.eventLoop.run(until: { connection.http2?.pingAcknowledgements == 1 }, timeout: .seconds(10)))
    }

    func testHealthCheck() throws {
        let server = try TestServer(tls: fixtures.server) { server, _, recorder in
            EchoService.install(on: server, recorder: recorder)
        }
        defer { server.stop() }

        let client = try client(server)
        let serving = try client.unary(
            HealthService.check, request: HealthCheckRequest(service: "interop.v1.Echo").serializedBytes(),
            timeout: .seconds(10))
        XCTAssertEqual(try HealthCheckResponse(serializedBytes: serving).status, .serving)
        XCTAssertThrowsError(
            try client.unary(
                HealthService.check, request: HealthCheckRequest(service: "nope.Service").serializedBytes(),
                timeout: .seconds(10))
        ) { error in
            XCTAssertEqual((error as? Status)?.code, .notFound)
        }
    }

    /// Shutdown during a call whose handler replies later: the call completes, the server
    /// stops accepting, and the completion runs once the connection has closed.
    func testGracefulShutdownFinishesCallInFlight() throws {
        let server = try TestServer(tls: fixtures.server) { server, loop, recorder in
            server.registerUnary("/interop.v1.Echo/Unary") { _, _, responder in
                server.shutdown(gracePeriod: .seconds(10)) {
                    recorder.increment("shutdown complete")
                }
                loop.scheduleTimer(after: .milliseconds(300)) {
                    responder.succeed(EchoResponse(text: "late").serializedBytes())
                }
            }
        }
        defer { server.stop() }

        let client = try client(server)
        let bytes = try client.unary("/interop.v1.Echo/Unary", request: [], timeout: .seconds(10))
        XCTAssertEqual(try EchoResponse(serializedBytes: bytes).text, "late")
        XCTAssertTrue(server.wait { server.counter("shutdown complete") == 1 }, "shutdown did not complete")

        XCTAssertThrowsError(
            try self.client(server).unary("/interop.v1.Echo/Unary", request: [], timeout: .seconds(10))
        ) { error in
            XCTAssertEqual((error as? Status)?.code, .unavailable, "\(error)")
        }
    }

    /// A call that outlives the grace period is cancelled and its connection closed.
    func testShutdownGracePeriodCancelsCalls() throws {
        let server = try TestServer(tls: fixtures.server) { server, _, recorder in
            server.registerUnary("/interop.v1.Echo/Hang") { context, _, _ in
                context.onCancel = { recorder.increment("cancelled") }
                server.shutdown(gracePeriod: .milliseconds(200)) {
                    recorder.increment("shutdown complete")
                }
            }
        }
        defer { server.stop() }

        let client = try client(server)
        XCTAssertThrowsError(try client.unary("/interop.v1.Echo/Hang", request: [], timeout: .seconds(10))) { error in
            XCTAssertEqual((error as? Status)?.code, .unavailable, "\(error)")
        }
        XCTAssertTrue(server.wait { server.counter("cancelled") == 1 })
        XCTAssertTrue(server.wait { server.counter("shutdown complete") == 1 })
    }

    /// Reloading switches new connections to the new certificate while an open connection
    /// keeps working.
    func testReloadCertificatesKeepsOpenConnections() throws {
        let directory = fixtures.directory
        let serverCertificate = directory + "/live-server.pem"
        let serverKey = directory + "/live-server-key.pem"
        try FileManager.default.copyItem(atPath: fixtures.serverCertificate, toPath: serverCertificate)
        try FileManager.default.copyItem(atPath: fixtures.serverKey, toPath: serverKey)
        var tls = fixtures.server
        tls.certificateFile = serverCertificate
        tls.privateKeyFile = serverKey

        let server = try TestServer(tls: tls) { server, _, recorder in
            EchoService.install(on: server, recorder: recorder)
        }
        defer { server.stop() }
        let request = EchoRequest(text: "r").serializedBytes()
        let before = try client(server)
        XCTAssertNoThrow(try before.unary("/interop.v1.Echo/Unary", request: request, timeout: .seconds(10)))

        // A broken key leaves the old context in place.
        try "not a key".write(toFile: serverKey, atomically: true, encoding: .utf8)
        server.perform { server in
            do {
                try server.reloadCertificates()
            } catch {
                TestServerLog.shared.append("\(error)")
            }
        }
        XCTAssertTrue(server.wait { TestServerLog.shared.lines.count == 1 })
        XCTAssertTrue(
            TestServerLog.shared.lines.first?.contains("cannot load private key") == true,
            "\(TestServerLog.shared.lines)")
        XCTAssertNoThrow(try client(server).unary("/interop.v1.Echo/Unary", request: request, timeout: .seconds(10)))

        // A server certificate from a new CA: new clients must trust that CA.
        let newCA = try CertificateAuthority.create(commonName: "rotated CA")
        let newCAFile = directory + "/rotated-ca.pem"
        try PEMFile.write(newCA.certificatePEM, to: newCAFile, mode: 0o644)
        try FileManager.default.removeItem(atPath: serverCertificate)
        try FileManager.default.removeItem(atPath: serverKey)
        try newCA.issueServerCertificate(commonName: "localhost").write(
            certificateFile: serverCertificate, privateKeyFile: serverKey)
        server.perform { server in
            do {
                try server.reloadCertificates()
                TestServerLog.shared.append("reloaded")
            } catch {
                TestServerLog.shared.append("\(error)")
            }
        }
        XCTAssertTrue(server.wait { TestServerLog.shared.lines.count == 2 })
        XCTAssertEqual(TestServerLog.shared.lines.last, "reloaded")

        XCTAssertNoThrow(
            try before.unary("/interop.v1.Echo/Unary", request: request, timeout: .seconds(10)), "open connection broke"
        )
        XCTAssertThrowsError(
            try client(server).unary("/interop.v1.Echo/Unary", request: request, timeout: .seconds(10))
        ) { error in
            XCTAssertTrue(
                (error as? Status)?.message.contains("server certificate verification failed") == true, "\(error)")
        }
        var rotated = fixtures.client
        rotated.caFile = newCAFile
        XCTAssertNoThrow(
            try client(server, tls: rotated).unary("/interop.v1.Echo/Unary", request: request, timeout: .seconds(10)))
    }

    func testConnectionEventsNamePeer() throws {
        let server = try TestServer(tls: fixtures.server) { server, _, recorder in
            EchoService.install(on: server, recorder: recorder)
        }
        defer { server.stop() }

        let client = try client(server)
        _ = try client.unary("/interop.v1.Echo/Stats", request: [], timeout: .seconds(10))
        client.close()

        XCTAssertTrue(server.wait { server.events.count >= 2 }, "events: \(server.events)")
        guard case .accepted(_, let acceptedPeer) = server.events.first else {
            return XCTFail("first event is not accepted: \(server.events)")
        }
        XCTAssertEqual(acceptedPeer.commonName, "alice")
        guard case .closed(_, let closedPeer, let reason) = server.events.last else {
            return XCTFail("last event is not closed: \(server.events)")
        }
        XCTAssertEqual(closedPeer.commonName, "alice")
        XCTAssertNil(reason, "an orderly close has no reason")
    }
}

/// Lines recorded on the server thread for the test thread to read.
final class TestServerLog: @unchecked Sendable {
    static let shared = TestServerLog()
    private let lock = NSLock()
    private var stored: [String] = []

    var lines: [String] { lock.withLock { stored } }

    func append(_ line: String) {
        lock.withLock { stored.append(line) }
    }
}

/// Holds a weak reference to an object created on the server thread.
final class WeakTracker: @unchecked Sendable {
    private let lock = NSLock()
    private weak var object: AnyObject?
    private var tracked = false

    func track(_ object: AnyObject) {
        lock.withLock {
            self.object = object
            tracked = true
        }
    }

    var isReleased: Bool { lock.withLock { tracked && object == nil } }
}
