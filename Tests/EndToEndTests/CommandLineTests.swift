import Foundation
import XCTest

/// The binaries' command-line behaviour that needs no running jobd: help, flag errors, certs init.
final class CommandLineTests: XCTestCase {
    private var scratch = ""

    override func setUpWithError() throws {
        for binary in [Binaries.jobd, Binaries.jobctl] where access(binary, X_OK) != 0 {
            XCTFail("\(binary) is missing: run `swift build --build-tests` (make test does) before the tests")
        }
        scratch = try TemporaryDirectory.make(prefix: "jobworker-e2e-cli")
    }

    override func tearDown() {
        TemporaryDirectory.remove(scratch)
    }

    func testJobdRejectsBadFlagValues() throws {
        let cases: [(description: String, arguments: [String], expected: String)] = [
            ("listen without port", ["--listen", "127.0.0.1"], "\"127.0.0.1\""),
            ("listen with a name", ["--listen", "localhost:50051"], "\"localhost:50051\""),
            ("duration without unit", ["--stop-grace", "10"], "\"10\""),
            ("unknown log level", ["--log-level", "loud"], "\"loud\""),
            ("cgroup subtree with a slash", ["--cgroup-root", "a/b"], "\"a/b\""),
            ("unknown flag", ["--colour", "red"], "--colour"),
            ("missing value", ["--listen"], "--listen"),
        ]
        for testCase in cases {
            let result = try Command.run(Binaries.jobd, testCase.arguments)
            XCTAssertEqual(result.status, 2, "\(testCase.description): \(result.stderrText)")
            XCTAssertTrue(
                result.stderrText.contains(testCase.expected), "\(testCase.description): \(result.stderrText)")
        }
    }

    func testJobdConfigFileErrorNamesLine() throws {
        let config = scratch + "/jobd.conf"
        try "# comment\nlisten = 127.0.0.1:0\nstop-grace = soon\n".write(
            toFile: config, atomically: true, encoding: .utf8)
        let result = try Command.run(Binaries.jobd, ["--config", config])
        XCTAssertEqual(result.status, 2, result.stderrText)
        XCTAssertTrue(result.stderrText.contains("\(config):3"), result.stderrText)
    }

    func testJobdHelpListsEveryFlag() throws {
        let result = try Command.run(Binaries.jobd, ["--help"])
        XCTAssertEqual(result.status, 0, result.stderrText)
        for flag in [
            "--listen", "--state-dir", "--tls-ca", "--tls-cert", "--tls-key", "--cgroup-root", "--io-device",
            "--stop-grace", "--log-level", "--config",
        ] {
            XCTAssertTrue(result.stdoutText.contains(flag), "jobd --help does not explain \(flag)")
        }
    }

    func testJobctlHelpListsExitStatuses() throws {
        let result = try Command.run(Binaries.jobctl, ["--help"])
        XCTAssertEqual(result.status, 0, result.stderrText)
        for status in ["65", "66", "69", "77", "78"] {
            XCTAssertTrue(
                result.stdoutText.contains("  \(status) "), "jobctl --help does not list exit status \(status)")
        }
    }

    func testJobctlCommandHelpPrintsUsage() throws {
        for arguments in [["start", "--help"], ["stop", "-h"], ["list", "--help"]] {
            let result = try Command.run(Binaries.jobctl, arguments)
            XCTAssertEqual(result.status, 0, "\(arguments): \(result.stderrText)")
            XCTAssertTrue(result.stdoutText.hasPrefix("usage: jobctl"), "\(arguments): \(result.stdoutText)")
        }
    }

    func testJobctlUsageErrorsExitTwo() throws {
        let cases: [(description: String, arguments: [String])] = [
            ("no command", []),
            ("unknown command", ["frobnicate"]),
            ("start without a command", ["start", "--cpu", "50%"]),
            ("query without an id", ["query"]),
            ("bad pids", ["start", "--pids", "many", "true"]),
            ("bad server", ["--server", "nowhere", "list"]),
        ]
        for testCase in cases {
            let result = try Command.run(Binaries.jobctl, testCase.arguments)
            XCTAssertEqual(result.status, 2, "\(testCase.description): \(result.stderrText)")
            XCTAssertTrue(result.stderrText.hasPrefix("jobctl: "), "\(testCase.description): \(result.stderrText)")
        }
    }

    func testJobctlReportsMissingCertificate() throws {
        let result = try Command.run(
            Binaries.jobctl,
            ["--tls-ca", scratch + "/missing-ca.pem", "--tls-cert", "x.pem", "--tls-key", "y.pem", "list"])
        XCTAssertEqual(result.status, 78, result.stderrText)
        XCTAssertTrue(result.stderrText.contains("missing-ca.pem"), result.stderrText)
    }

    func testJobctlReportsUnreadableKey() throws {
        // Root reads any file, so as root jobctl runs as the unprivileged uid 65534 through util-linux's setpriv.
        let pki = try TestPKI(directory: scratch + "/certs")
        let admin = pki.identity("admin")
        let directory = scratch + "/shared"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        chmod(scratch, 0o755)
        chmod(directory, 0o755)
        for (source, name, mode) in [
            (pki.caFile, "ca.pem", 0o644), (admin.certificate, "admin.pem", 0o644), (admin.key, "admin-key.pem", 0o000),
        ] {
            try FileManager.default.copyItem(atPath: source, toPath: directory + "/" + name)
            chmod(directory + "/" + name, mode_t(mode))
        }

        let arguments = [
            "--server", "127.0.0.1:1", "--tls-ca", directory + "/ca.pem", "--tls-cert", directory + "/admin.pem",
            "--tls-key", directory + "/admin-key.pem", "list",
        ]
        let result =
            getuid() == 0
            ? try Command.run(
                "/usr/bin/setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups", Binaries.jobctl] + arguments)
            : try Command.run(Binaries.jobctl, arguments)

        XCTAssertEqual(result.status, 78, result.stderrText)
        XCTAssertTrue(result.stderrText.contains("admin-key.pem\": permission denied"), result.stderrText)
        XCTAssertTrue(result.stderrText.contains("chmod"), result.stderrText)
        XCTAssertFalse(
            result.stderrText.contains("make run"), "advises a new PKI for an existing key: \(result.stderrText)")
    }

    func testCertsInitCreatesPKI() throws {
        let directory = scratch + "/certs"
        let result = try Command.run(Binaries.jobctl, ["certs", "init", directory])
        XCTAssertEqual(result.status, 0, result.stderrText)

        for name in ["ca", "server", "admin", "writer", "reader"] {
            var info = stat()
            XCTAssertEqual(stat(directory + "/\(name).pem", &info), 0, "\(name).pem missing")
            XCTAssertEqual(stat(directory + "/\(name)-key.pem", &info), 0, "\(name)-key.pem missing")
            XCTAssertEqual(info.st_mode & 0o777, 0o600, "\(name)-key.pem is not private")

            if name != "ca" {
                let verify = try Command.run(
                    "/usr/bin/openssl", ["verify", "-CAfile", directory + "/ca.pem", directory + "/\(name).pem"])
                XCTAssertEqual(verify.status, 0, "\(name).pem does not chain to ca.pem: \(verify.stdoutText)")
            }
        }

        let server = try Command.run("/usr/bin/openssl", ["x509", "-in", directory + "/server.pem", "-noout", "-text"])
        for name in ["DNS:localhost", "IP Address:127.0.0.1", "IP Address:0:0:0:0:0:0:0:1"] {
            XCTAssertTrue(server.stdoutText.contains(name), "server.pem lacks \(name): \(server.stdoutText)")
        }
        let writer = try Command.run("/usr/bin/openssl", ["x509", "-in", directory + "/writer.pem", "-noout", "-text"])
        XCTAssertTrue(writer.stdoutText.contains("2.25.7848382311874025851451681593532974798"), writer.stdoutText)

        let again = try Command.run(Binaries.jobctl, ["certs", "init", directory])
        XCTAssertEqual(again.status, 74, "certs init overwrote an existing PKI: \(again.stderrText)")
        let forced = try Command.run(Binaries.jobctl, ["certs", "init", "--force", directory])
        XCTAssertEqual(forced.status, 0, forced.stderrText)
    }
}
