import Foundation
import GRPCLite

/// `jobctl certs init DIR`: a development PKI for one host.
enum CertificatesCommand {
    /// The client certificates created next to the CA: file name (and CN) with its roles.
    static let clients: [(name: String, roles: String)] = [
        ("admin", "admin"), ("writer", "writer"), ("reader", "reader"),
    ]

    /// Returns every file `init` writes, relative to the directory.
    static var fileNames: [String] {
        ["ca.pem", "ca-key.pem", "server.pem", "server-key.pem"]
            + clients.flatMap { ["\($0.name).pem", "\($0.name)-key.pem"] }
    }

    /// Creates `directory` (mode 0700) if needed, then a CA, a server certificate for localhost, 127.0.0.1
    /// and ::1, and the admin, writer and reader client certificates. Keys are written with mode 0600.
    /// Without `force`, an existing file is an error and nothing is written.
    static func initialize(directory: String, force: Bool) throws -> [String] {
        let paths = fileNames.map { directory + "/" + $0 }
        let existing = paths.filter { FileManager.default.fileExists(atPath: $0) }
        if !existing.isEmpty && !force {
            throw Failure(
                exitCode: .localIO,
                message: "\(existing[0]) already exists: remove the old certificates or pass --force to replace them")
        }

        do {
            try FileManager.default.createDirectory(
                atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        } catch {
            throw Failure(
                exitCode: .localIO, message: "cannot create directory \"\(directory)\": \(error.localizedDescription)")
        }

        // Everything is minted in memory first, so a failure leaves no half-written PKI behind.
        var issued: [(name: String, certificate: IssuedCertificate)] = []
        do {
            let authority = try CertificateAuthority.create(commonName: "jobworker development CA")
            issued.append(("ca", authority.certificate))
            issued.append(("server", try authority.issueServerCertificate(commonName: "localhost")))
            for client in clients {
                issued.append(
                    (client.name, try authority.issueClientCertificate(commonName: client.name, roles: client.roles)))
            }
        } catch {
            throw Failure(exitCode: .internalError, message: "cannot create certificates: \(error)")
        }

        for path in existing {
            unlink(path)
        }
        var written: [String] = []
        for (name, certificate) in issued {
            let certificateFile = "\(directory)/\(name).pem"
            let keyFile = "\(directory)/\(name)-key.pem"
            do {
                try certificate.write(certificateFile: certificateFile, privateKeyFile: keyFile)
            } catch {
                throw Failure(exitCode: .localIO, message: "cannot write \(certificateFile): \(error)")
            }
            written += [certificateFile, keyFile]
        }
        return written
    }
}
