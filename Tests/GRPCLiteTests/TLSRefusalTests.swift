import Foundation
import GRPCLite
import Glibc
import XCTest

/// Connections that must fail at the TLS handshake, on the server and on the client, while
/// the server keeps serving the clients it should.
final class TLSRefusalTests: XCTestCase {
    private var fixtures: TLSFixtures!
    private var server: TestServer!

    override func setUpWithError() throws {
        fixtures = try TLSFixtures()
        var tls = fixtures.server
        tls.handshakeTimeout = .milliseconds(300)
        server = try TestServer(tls: tls) { server, _, recorder in
            EchoService.install(on: server, recorder: recorder)
        }
    }

    override func tearDown() {
        server?.stop()
        fixtures?.remove()
    }

    private func refusals() -> [String] {
        server.events.compactMap { event in
            if case .refused(_, let reason, _) = event { return reason }
            return nil
        }
    }

    /// Waits for a refusal whose reason contains `text`.
    private func waitForRefusal(containing text: String) -> Bool {
        server.wait { self.refusals().contains { $0.contains(text) } }
    }

    private func assertServerStillServes(file: StaticString = #filePath, line: UInt = #line) throws {
        let client = try GRPCClient(host: "127.0.0.1", port: server.port, tls: fixtures.client)
        let bytes = try client.unary(
            "/interop.v1.Echo/Unary", request: EchoRequest(text: "still").serializedBytes(), timeout: .seconds(10))
        XCTAssertEqual(
            try EchoResponse(serializedBytes: bytes).text, "still|cn=alice|roles=admin", file: file, line: line)
    }

    private func sClient(_ extra: [String]) throws -> ProcessResult {
        try runProcess(
            "/usr/bin/openssl",
            ["s_client", "-connect", "127.0.0.1:\(server.port)", "-CAfile", fixtures.caFile, "-verify_return_error"]
                + extra,
            input: "", timeout: 30)
    }

    func testTLS12ClientRefused() throws {
        let result = try sClient([
            "-tls1_2", "-alpn", "h2", "-cert", fixtures.clientCertificate, "-key", fixtures.clientKey,
        ])
        XCTAssertNotEqual(result.status, 0, "openssl s_client -tls1_2 should fail: \(result.output)")
        XCTAssertTrue(waitForRefusal(containing: "unsupported protocol"), "refusals: \(refusals())")
        try assertServerStillServes()
    }

    func testClientWithoutCertificateRefused() throws {
        _ = try sClient(["-tls1_3", "-alpn", "h2"])
        XCTAssertTrue(waitForRefusal(containing: "certificate"), "refusals: \(refusals())")
        try assertServerStillServes()
    }

    func testCertificateFromAnotherCARefused() throws {
        var tls = fixtures.client
        tls.certificateFile = fixtures.foreignClientCertificate
        tls.privateKeyFile = fixtures.foreignClientKey
        let client = try GRPCClient(host: "127.0.0.1", port: server.port, tls: tls)
        XCTAssertThrowsError(try client.unary("/interop.v1.Echo/Unary", request: [], timeout: .seconds(10))) { error in
            let status = error as? Status
            XCTAssertEqual(status?.code, .unavailable, "\(error)")
            XCTAssertTrue(status?.message.contains("rejected our client certificate") == true, "\(error)")
        }
        XCTAssertTrue(waitForRefusal(containing: "client certificate verification failed"), "refusals: \(refusals())")
        let refusedPeer = server.events.compactMap { event -> PeerIdentity? in
            if case .refused(_, _, let peer) = event { return peer }
            return nil
        }.first
        XCTAssertEqual(refusedPeer?.commonName, "mallory")
        try assertServerStillServes()
    }

    func testClientWithoutALPNRefused() throws {
        _ = try sClient(["-tls1_3", "-cert", fixtures.clientCertificate, "-key", fixtures.clientKey])
        XCTAssertTrue(waitForRefusal(containing: "ALPN"), "refusals: \(refusals())")
        try assertServerStillServes()
    }

    func testIdleHandshakeTimesOut() throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = server.port.bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        XCTAssertEqual(connected, 0)
        XCTAssertTrue(waitForRefusal(containing: "timed out"), "refusals: \(refusals())")
        try assertServerStillServes()
    }

    func testClientRejectsServerFromUnknownCA() throws {
        var tls = fixtures.client
        tls.caFile = fixtures.foreignCAFile
        let client = try GRPCClient(host: "127.0.0.1", port: server.port, tls: tls)
        XCTAssertThrowsError(try client.unary("/interop.v1.Echo/Unary", request: [], timeout: .seconds(10))) { error in
            let status = error as? Status
            XCTAssertEqual(status?.code, .unavailable, "\(error)")
            XCTAssertTrue(
                status?.message.contains(
                    "server certificate verification failed: self-signed certificate in certificate chain") == true,
                "\(error)")
        }
    }

    func testClientRejectsWrongServerName() throws {
        var tls = fixtures.client
        tls.serverName = "jobd.example.com"
        let client = try GRPCClient(host: "127.0.0.1", port: server.port, tls: tls)
        XCTAssertThrowsError(try client.unary("/interop.v1.Echo/Unary", request: [], timeout: .seconds(10))) { error in
            let status = error as? Status
            XCTAssertEqual(status?.code, .unavailable, "\(error)")
            XCTAssertTrue(status?.message.contains("hostname mismatch") == true, "\(error)")
        }
    }

    func testClientAcceptsServerByLocalhostName() throws {
        let client = try GRPCClient(host: "localhost", port: server.port, tls: fixtures.client)
        let bytes = try client.unary(
            "/interop.v1.Echo/Unary", request: EchoRequest(text: "name").serializedBytes(), timeout: .seconds(10))
        XCTAssertEqual(try EchoResponse(serializedBytes: bytes).text, "name|cn=alice|roles=admin")
    }

    func testMissingFilesNamed() throws {
        let table: [(description: String, tls: TLSConfiguration, expected: String)] = [
            (
                "certificate",
                TLSConfiguration(
                    caFile: fixtures.caFile, certificateFile: "/no/cert.pem", privateKeyFile: fixtures.clientKey),
                "cannot read certificate \"/no/cert.pem\": no such file or directory"
            ),
            (
                "key",
                TLSConfiguration(
                    caFile: fixtures.caFile, certificateFile: fixtures.clientCertificate, privateKeyFile: "/no/key.pem"),
                "cannot read private key \"/no/key.pem\": no such file or directory"
            ),
            (
                "CA",
                TLSConfiguration(
                    caFile: "/no/ca.pem", certificateFile: fixtures.clientCertificate,
                    privateKeyFile: fixtures.clientKey),
                "cannot read CA bundle \"/no/ca.pem\": no such file or directory"
            ),
            (
                "mismatched key",
                TLSConfiguration(
                    caFile: fixtures.caFile, certificateFile: fixtures.clientCertificate,
                    privateKeyFile: fixtures.serverKey),
                "private key \"\(fixtures.serverKey)\" does not match certificate"
            ),
        ]
        for row in table {
            XCTAssertThrowsError(try GRPCClient(host: "127.0.0.1", port: 1, tls: row.tls), row.description) { error in
                XCTAssertTrue("\(error)".hasPrefix(row.expected), "\(row.description): \(error)")
            }
        }
    }

    func testConnectionRefusedMessage() throws {
        // A port that was just free: bind to port 0, read the port, close.
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
                bind(fd, pointer, length)
                return getsockname(fd, pointer, &length)
            }
        }
        let port = UInt16(bigEndian: address.sin_port)
        close(fd)

        let client = try GRPCClient(host: "127.0.0.1", port: port, tls: fixtures.client)
        XCTAssertThrowsError(try client.unary("/interop.v1.Echo/Unary", request: [], timeout: .seconds(10))) { error in
            XCTAssertEqual(
                error as? Status, Status(.unavailable, "connection refused by 127.0.0.1:\(port): is jobd running?"))
        }
    }
}
