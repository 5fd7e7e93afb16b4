import Foundation

/// A client certificate and its key.
struct Identity {
    let certificate: String
    let key: String
}

/// Certificates for one test run: the development PKI from `jobctl certs init`, plus client certificates
/// minted with the plain openssl commands the README shows.
final class TestPKI {
    let directory: String

    var caFile: String { directory + "/ca.pem" }
    var caKey: String { directory + "/ca-key.pem" }
    var serverCertificate: String { directory + "/server.pem" }
    var serverKey: String { directory + "/server-key.pem" }

    /// Runs `jobctl certs init DIR`; throws with jobctl's stderr when it fails.
    init(directory: String) throws {
        self.directory = directory
        let result = try Command.run(Binaries.jobctl, ["certs", "init", directory])
        guard result.status == 0 else {
            throw SubprocessError(message: "jobctl certs init failed with \(result.status): \(result.stderrText)")
        }
    }

    /// Returns one of the identities `certs init` created: admin, writer or reader.
    func identity(_ name: String) -> Identity {
        Identity(certificate: directory + "/\(name).pem", key: directory + "/\(name)-key.pem")
    }

    /// Mints a client certificate for CN `name` with the README's openssl commands; `roles` nil leaves the
    /// role extension out. `caFile`/`caKey` default to this PKI's CA.
    func mintWithOpenSSL(name: String, roles: String?, caFile: String? = nil, caKey: String? = nil) throws -> Identity {
        let key = directory + "/\(name)-key.pem"
        let request = directory + "/\(name).csr"
        let extensions = directory + "/\(name).ext"
        let certificate = directory + "/\(name).pem"

        try Self.openssl([
            "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", key, "-subj", "/CN=\(name)", "-out", request,
        ])
        var lines = ["extendedKeyUsage = clientAuth"]
        if let roles {
            lines.append("2.25.7848382311874025851451681593532974798=ASN1:UTF8String:\(roles)")
        }
        try (lines.joined(separator: "\n") + "\n").write(toFile: extensions, atomically: true, encoding: .utf8)
        try Self.openssl([
            "x509", "-req", "-in", request, "-CA", caFile ?? self.caFile, "-CAkey", caKey ?? self.caKey,
            "-days", "30", "-extfile", extensions, "-out", certificate,
        ])
        chmod(key, 0o600)
        return Identity(certificate: certificate, key: key)
    }

    /// Creates a second, unrelated CA with openssl and returns its certificate and key files.
    func mintOtherCA(name: String) throws -> (certificate: String, key: String) {
        let certificate = directory + "/\(name).pem"
        let key = directory + "/\(name)-key.pem"
        try Self.openssl([
            "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", key, "-subj", "/CN=\(name)", "-days", "30", "-out", certificate,
        ])
        return (certificate, key)
    }

    static func openssl(_ arguments: [String]) throws {
        let result = try Command.run("/usr/bin/openssl", arguments)
        guard result.status == 0 else {
            throw SubprocessError(message: "openssl \(arguments.joined(separator: " ")) failed: \(result.stderrText)")
        }
    }
}

/// The outcome of a finished command: status (exit code, or 128 + signal), stdout bytes, stderr text.
struct CommandResult {
    let status: Int32
    let stdout: [UInt8]
    let stderr: [UInt8]

    var stdoutText: String { String(decoding: stdout, as: UTF8.self) }
    var stderrText: String { String(decoding: stderr, as: UTF8.self) }
}

enum Command {
    /// Runs a program to completion with output captured in temporary files; kills it after `timeout`.
    static func run(
        _ executable: String, _ arguments: [String], environment: [String: String] = Binaries.childEnvironment(),
        timeout: Duration = .seconds(60)
    ) throws -> CommandResult {
        let scratch = try TemporaryDirectory.make(prefix: "jobworker-e2e-cmd")
        defer { TemporaryDirectory.remove(scratch) }
        let stdoutPath = scratch + "/stdout"
        let stderrPath = scratch + "/stderr"

        let process = try Subprocess.spawn(
            executable, arguments, environment: environment, stdoutPath: stdoutPath, stderrPath: stderrPath)
        if !process.wait(timeout: timeout) {
            process.signal(SIGKILL)
            process.wait(timeout: .seconds(10))
            let stderr = (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? ""
            throw SubprocessError(message: "\(executable) \(arguments) did not finish within \(timeout): \(stderr)")
        }

        let status = process.exitCode ?? (128 + (process.terminationSignal ?? 0))
        let stdout = FileManager.default.contents(atPath: stdoutPath).map { [UInt8]($0) } ?? []
        let stderr = FileManager.default.contents(atPath: stderrPath).map { [UInt8]($0) } ?? []
        return CommandResult(status: status, stdout: stdout, stderr: stderr)
    }
}

enum RandomBytes {
    /// Returns `count` bytes from /dev/urandom.
    static func make(count: Int) throws -> [UInt8] {
        guard let file = FileHandle(forReadingAtPath: "/dev/urandom") else {
            throw SubprocessError(message: "cannot open /dev/urandom")
        }
        defer { try? file.close() }
        var bytes: [UInt8] = []
        while bytes.count < count {
            guard let chunk = try file.read(upToCount: count - bytes.count), !chunk.isEmpty else {
                throw SubprocessError(message: "short read from /dev/urandom")
            }
            bytes += chunk
        }
        return bytes
    }
}

enum TemporaryDirectory {
    /// Creates a fresh directory under /tmp with mkdtemp(3).
    static func make(prefix: String) throws -> String {
        var template = Array("/tmp/\(prefix)-XXXXXX".utf8CString)
        guard let result = mkdtemp(&template) else {
            throw SubprocessError(message: "mkdtemp failed: \(String(cString: strerror(errno)))")
        }
        return String(cString: result)
    }

    static func remove(_ path: String) {
        try? FileManager.default.removeItem(atPath: path)
    }
}
