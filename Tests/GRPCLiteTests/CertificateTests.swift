import Foundation
import Glibc
import XCTest

@testable import GRPCLite

/// The X.509 minting API, checked with the openssl CLI, and certificates from the openssl
/// CLI, checked with GRPCLite.
final class CertificateTests: XCTestCase {
    private var fixtures: TLSFixtures!

    override func setUpWithError() throws {
        fixtures = try TLSFixtures(clientCommonName: "alice", roles: "reader,writer")
    }

    override func tearDown() {
        fixtures?.remove()
    }

    private func openssl(_ arguments: [String]) throws -> ProcessResult {
        try runProcess("/usr/bin/openssl", arguments, timeout: 30)
    }

    func testMintedCertificatesVerifyWithOpenSSL() throws {
        for certificate in [fixtures.serverCertificate, fixtures.clientCertificate] {
            let result = try openssl(["verify", "-CAfile", fixtures.caFile, certificate])
            XCTAssertEqual(result.status, 0, "openssl verify \(certificate): \(result.output) \(result.error)")
        }
        let foreign = try openssl(["verify", "-CAfile", fixtures.caFile, fixtures.foreignClientCertificate])
        XCTAssertNotEqual(foreign.status, 0, "a certificate from another CA must not verify")
    }

    func testServerCertificateNamesAndUsage() throws {
        let result = try openssl([
            "x509", "-in", fixtures.serverCertificate, "-noout", "-ext",
            "subjectAltName,extendedKeyUsage,basicConstraints",
        ])
        XCTAssertEqual(result.status, 0, result.error)
        XCTAssertTrue(result.output.contains("DNS:localhost"), result.output)
        XCTAssertTrue(result.output.contains("IP Address:127.0.0.1"), result.output)
        XCTAssertTrue(result.output.contains("IP Address:0:0:0:0:0:0:0:1"), result.output)
        XCTAssertTrue(result.output.contains("TLS Web Server Authentication"), result.output)
        XCTAssertTrue(result.output.contains("CA:FALSE"), result.output)
    }

    func testClientCertificateRolesExtension() throws {
        let result = try openssl(["asn1parse", "-in", fixtures.clientCertificate])
        XCTAssertEqual(result.status, 0, result.error)
        XCTAssertTrue(result.output.contains(":2.25.7848382311874025851451681593532974798"), result.output)
        // The extension value is an OCTET STRING holding the DER UTF8String; 0C 0D is its tag and length.
        XCTAssertTrue(result.output.contains("0C0D7265616465722C777269746572"), result.output)
    }

    func testKeyFileModes() throws {
        let table: [(String, mode_t)] = [
            (fixtures.clientKey, 0o600), (fixtures.serverKey, 0o600), (fixtures.clientCertificate, 0o644),
        ]
        for (path, mode) in table {
            var info = stat()
            XCTAssertEqual(stat(path, &info), 0, path)
            XCTAssertEqual(info.st_mode & 0o777, mode, path)
        }
    }

    func testPEMFileRefusesToOverwrite() throws {
        XCTAssertThrowsError(try PEMFile.write("x", to: fixtures.clientKey, mode: 0o600)) { error in
            XCTAssertTrue("\(error)".contains("file exists (errno 17)"), "\(error)")
        }
    }

    func testIssueRejectsBadIPAddress() throws {
        let ca = try CertificateAuthority.create(commonName: "ca")
        XCTAssertThrowsError(try ca.issueServerCertificate(commonName: "s", ipAddresses: ["localhost"])) { error in
            XCTAssertEqual(
                "\(error)",
                "invalid IP address \"localhost\" for a subject alternative name: expected e.g. 127.0.0.1 or ::1")
        }
    }

    func testLoadedAuthorityIssues() throws {
        let ca = try CertificateAuthority.create(commonName: "reloaded")
        let loaded = try CertificateAuthority(
            certificatePEM: ca.certificatePEM, privateKeyPEM: ca.certificate.privateKeyPEM)
        let path = fixtures.directory + "/loaded-client.pem"
        let caPath = fixtures.directory + "/reloaded-ca.pem"
        try PEMFile.write(
            try loaded.issueClientCertificate(commonName: "carol", roles: nil).certificatePEM, to: path, mode: 0o644)
        try PEMFile.write(ca.certificatePEM, to: caPath, mode: 0o644)
        let result = try openssl(["verify", "-CAfile", caPath, path])
        XCTAssertEqual(result.status, 0, result.output + result.error)
    }

    func testDERUTF8String() {
        let table: [(description: String, der: [UInt8], value: String?)] = [
            ("short form", [0x0C, 0x05] + Array("admin".utf8), "admin"),
            ("empty", [0x0C, 0x00], ""),
            ("long form", [0x0C, 0x81, 0x80] + Array(repeating: 0x61, count: 128), String(repeating: "a", count: 128)),
            ("PrintableString is not UTF8String", [0x13, 0x05] + Array("admin".utf8), nil),
            ("length past the end", [0x0C, 0x06] + Array("admin".utf8), nil),
            ("trailing bytes", [0x0C, 0x01, 0x61, 0x00], nil),
            ("invalid UTF-8", [0x0C, 0x01, 0xFF], nil),
        ]
        for row in table {
            XCTAssertEqual(DER.utf8String(row.der), row.value, row.description)
        }
        XCTAssertEqual(
            DER.utf8String(DER.utf8String(String(repeating: "b", count: 300))), String(repeating: "b", count: 300))
    }

    /// A client certificate made with the plain openssl CLI, as an operator would, is
    /// accepted and its CN and roles reach the handler.
    func testOpenSSLCLICertificateAccepted() throws {
        let directory = fixtures.directory
        let cliCA = directory + "/cli-ca.pem"
        let cliCAKey = directory + "/cli-ca-key.pem"
        var result = try openssl([
            "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", cliCAKey,
            "-out", cliCA,
            "-days", "30", "-subj", "/CN=cli-ca", "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        ])
        XCTAssertEqual(result.status, 0, result.error)
        let csr = directory + "/bob.csr"
        let bobKey = directory + "/bob-key.pem"
        let bob = directory + "/bob.pem"
        result = try openssl([
            "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", bobKey, "-out",
            csr,
            "-subj", "/CN=bob",
        ])
        XCTAssertEqual(result.status, 0, result.error)
        let extensions = directory + "/bob.ext"
        try """
        basicConstraints=CA:FALSE
        keyUsage=critical,digitalSignature
        extendedKeyUsage=clientAuth
        2.25.7848382311874025851451681593532974798=ASN1:UTF8String:writer

        """.write(toFile: extensions, atomically: true, encoding: .utf8)
        result = try openssl([
            "x509", "-req", "-in", csr, "-CA", cliCA, "-CAkey", cliCAKey, "-CAcreateserial", "-out", bob, "-days", "30",
            "-extfile", extensions,
        ])
        XCTAssertEqual(result.status, 0, result.error)

        // The server trusts both CAs; the client still verifies the server against ours.
        let bundle = directory + "/bundle.pem"
        let bundleText =
            try String(contentsOfFile: fixtures.caFile, encoding: .utf8)
            + String(contentsOfFile: cliCA, encoding: .utf8)
        try bundleText.write(toFile: bundle, atomically: true, encoding: .utf8)
        var serverTLS = fixtures.server
        serverTLS.caFile = bundle
        let server = try TestServer(tls: serverTLS) { server, _, recorder in
            EchoService.install(on: server, recorder: recorder)
        }
        defer { server.stop() }

        let client = try GRPCClient(
            host: "127.0.0.1", port: server.port,
            tls: TLSConfiguration(caFile: fixtures.caFile, certificateFile: bob, privateKeyFile: bobKey))
        let bytes = try client.unary(
            "/interop.v1.Echo/Unary", request: EchoRequest(text: "cli").serializedBytes(), timeout: .seconds(10))
        XCTAssertEqual(try EchoResponse(serializedBytes: bytes).text, "cli|cn=bob|roles=writer")
    }
}
