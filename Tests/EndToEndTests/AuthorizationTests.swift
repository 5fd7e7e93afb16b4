import Foundation
import XCTest

/// Roles from the certificate extension, owner filtering, and the TLS handshakes jobd rejects.
final class AuthorizationTests: EndToEndTestCase {
    func testReaderCannotStartOrStop() throws {
        let jobd = try startJobd()
        let jobID = try startJob(["sleep", "30"], on: jobd)

        let start = try jobctl(["start", "true"], on: jobd, as: reader)
        XCTAssertEqual(start.status, 77, start.stderrText)
        XCTAssertTrue(start.stderrText.contains("writer"), "message does not name the role needed: \(start.stderrText)")

        let stop = try jobctl(["stop", jobID], on: jobd, as: reader)
        XCTAssertEqual(stop.status, 77, stop.stderrText)

        let list = try jobctl(["list"], on: jobd, as: reader)
        XCTAssertEqual(list.status, 0, list.stderrText)
        XCTAssertFalse(list.stdoutText.contains(jobID), "a reader sees the admin's job: \(list.stdoutText)")
    }

    func testWriterCannotSeeAnotherWritersJob() throws {
        let jobd = try startJobd()
        // A second writer, minted with the README's openssl commands.
        let otherWriter = try pki.mintWithOpenSSL(name: "writer2", roles: "writer")
        let jobID = try startJob(["sleep", "30"], on: jobd, as: writer)

        for command in [["query", jobID], ["stream", jobID], ["stop", jobID]] {
            let result = try jobctl(command, on: jobd, as: otherWriter)
            XCTAssertEqual(result.status, 66, "\(command[0]) by another writer: \(result.stderrText)")
        }
        let list = try jobctl(["list"], on: jobd, as: otherWriter)
        XCTAssertEqual(list.status, 0, list.stderrText)
        XCTAssertFalse(list.stdoutText.contains(jobID), list.stdoutText)

        let own = try queryJSON(jobID, on: jobd, as: writer)
        XCTAssertEqual(own["state"] as? String, "JOB_STATE_RUNNING")
        XCTAssertEqual(own["owner"] as? String, "writer")

        // The admin can list and stop every job.
        let adminList = try jobctl(["list"], on: jobd, as: admin)
        XCTAssertTrue(adminList.stdoutText.contains(jobID), adminList.stdoutText)
        let stop = try jobctl(["stop", jobID], on: jobd, as: admin)
        XCTAssertEqual(stop.status, 0, stop.stderrText)
        XCTAssertEqual(try queryJSON(jobID, on: jobd, as: writer)["state"] as? String, "JOB_STATE_STOPPED")
    }

    func testWriterManagesOwnJob() throws {
        let jobd = try startJobd()
        let jobID = try startJob(["sleep", "30"], on: jobd, as: writer)
        let stop = try jobctl(["stop", jobID], on: jobd, as: writer)
        XCTAssertEqual(stop.status, 0, stop.stderrText)
    }

    func testRoleListGrantsEachRole() throws {
        let jobd = try startJobd()
        let both = try pki.mintWithOpenSSL(name: "both", roles: "reader,writer")
        let jobID = try startJob(["true"], on: jobd, as: both)
        XCTAssertEqual(try jobctl(["query", jobID], on: jobd, as: both).status, 0)
    }

    func testCertificateWithoutRoleIsDenied() throws {
        let jobd = try startJobd()
        let noRole = try pki.mintWithOpenSSL(name: "norole", roles: nil)
        for command in [["list"], ["query", "x"], ["start", "true"]] {
            let result = try jobctl(command, on: jobd, as: noRole)
            XCTAssertEqual(result.status, 77, "\(command[0]): \(result.stderrText)")
            XCTAssertTrue(result.stderrText.contains("role"), result.stderrText)
        }
        let unknown = try pki.mintWithOpenSSL(name: "unknownrole", roles: "superuser")
        XCTAssertEqual(try jobctl(["list"], on: jobd, as: unknown).status, 77)
    }

    func testCertificateFromOtherCAIsRejected() throws {
        let jobd = try startJobd()
        let otherCA = try pki.mintOtherCA(name: "other-ca")
        let stranger = try pki.mintWithOpenSSL(
            name: "stranger", roles: "admin", caFile: otherCA.certificate, caKey: otherCA.key)
        let result = try jobctl(["list"], on: jobd, as: stranger)
        XCTAssertEqual(result.status, 78, result.stderrText)
        XCTAssertTrue(jobd.log.contains("connection refused") || jobd.log.contains("handshake"), jobd.log)
    }

    func testTLS12IsRejected() throws {
        let jobd = try startJobd()
        let result = try Command.run(
            "/usr/bin/openssl",
            [
                "s_client", "-connect", jobd.address, "-tls1_2", "-CAfile", pki.caFile, "-cert",
                admin.certificate, "-key", admin.key, "-alpn", "h2",
            ], timeout: .seconds(30))
        XCTAssertNotEqual(result.status, 0, "a TLS 1.2 handshake succeeded: \(result.stdoutText)")
        XCTAssertTrue(result.stdoutText.contains("Cipher is (NONE)"), "a cipher was negotiated: \(result.stdoutText)")
        XCTAssertTrue(result.stderrText.contains("alert protocol version"), result.stderrText)
        XCTAssertTrue(jobd.log.contains("connection refused"), jobd.log)
    }

    func testClientWithoutCertificateIsRejected() throws {
        let jobd = try startJobd()
        // In TLS 1.3 the server checks the client certificate after the client's handshake ends, so the
        // rejection arrives as an alert on the first read; -ign_eof keeps s_client reading until it does.
        let result = try Command.run(
            "/usr/bin/openssl",
            ["s_client", "-connect", jobd.address, "-tls1_3", "-CAfile", pki.caFile, "-alpn", "h2", "-ign_eof"],
            timeout: .seconds(30))
        let output = result.stdoutText + result.stderrText
        XCTAssertNotEqual(result.status, 0, "a client without a certificate was not rejected: \(output)")
        XCTAssertTrue(output.contains("alert certificate required"), output)
        XCTAssertTrue(jobd.log.contains("connection refused"), jobd.log)
    }

    func testHealthCheckNeedsNoRole() throws {
        guard let python = GRPCInterop.pythonPath() else {
            throw XCTSkip("no Python venv with grpcio: run make venv")
        }
        let jobd = try startJobd()
        let noRole = try pki.mintWithOpenSSL(name: "health", roles: nil)
        let result = try GRPCInterop.runHealthCheck(
            python: python, address: jobd.address, caFile: pki.caFile, identity: noRole, scratch: scratch)
        XCTAssertEqual(result.status, 0, result.stderrText + result.stdoutText)
        XCTAssertTrue(result.stdoutText.contains("SERVING"), result.stdoutText)
    }
}
