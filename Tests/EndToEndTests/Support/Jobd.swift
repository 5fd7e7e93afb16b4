import Foundation

/// A real jobd binary started for one test: 127.0.0.1 with a free port, its own state directory and its
/// own cgroup subtree, stderr captured to a file.
final class Jobd {
    let process: Subprocess
    let logPath: String
    /// `127.0.0.1:PORT`, parsed from the "listening" line jobd logs once it is ready.
    let address: String

    private init(process: Subprocess, logPath: String, address: String) {
        self.process = process
        self.logPath = logPath
        self.address = address
    }

    /// Starts jobd and waits until it logs the address it bound; throws with the log when it does not.
    static func start(
        pki: TestPKI, stateDirectory: String, cgroupSubtree: String, logPath: String,
        extraArguments: [String] = []
    ) throws -> Jobd {
        let arguments =
            [
                "--listen", "127.0.0.1:0", "--state-dir", stateDirectory,
                "--tls-ca", pki.caFile, "--tls-cert", pki.serverCertificate, "--tls-key", pki.serverKey,
                "--cgroup-root", cgroupSubtree, "--stop-grace", "2s", "--log-level", "debug",
            ] + extraArguments
        return try start(arguments: arguments, logPath: logPath)
    }

    /// Starts jobd with exactly `arguments` and waits until it logs the address it bound.
    static func start(arguments: [String], logPath: String) throws -> Jobd {
        let process = try Subprocess.spawn(
            Binaries.jobd, arguments, environment: Binaries.childEnvironment(), stdoutPath: logPath + ".stdout",
            stderrPath: logPath)

        let deadline = MonotonicDeadline(milliseconds: 30_000)
        while !deadline.hasPassed {
            let log = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
            if let address = parseListeningAddress(log) {
                return Jobd(process: process, logPath: logPath, address: address)
            }
            if process.wait(timeout: .milliseconds(50)) {
                // Read the log again: jobd may have written its last lines after the read above.
                let finalLog = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? log
                throw SubprocessError(
                    message: "jobd exited with \(process.waitStatusDescription) before listening:\n\(finalLog)")
            }
        }
        process.signal(SIGKILL)
        process.wait(timeout: .seconds(10))
        let log = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
        throw SubprocessError(message: "jobd did not log a listening address within 30 s:\n\(log)")
    }

    /// Returns the `address=` value of the first line with the message "listening".
    static func parseListeningAddress(_ log: String) -> String? {
        for line in log.split(separator: "\n") where line.contains(" listening ") {
            for field in line.split(separator: " ") where field.hasPrefix("address=") {
                return String(field.dropFirst("address=".count))
            }
        }
        return nil
    }

    var log: String {
        (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
    }

    /// Sends SIGTERM and waits for a clean exit; SIGKILLs after `timeout`. Returns true for a clean exit 0.
    @discardableResult
    func stop(timeout: Duration = .seconds(30)) -> Bool {
        process.signal(SIGTERM)
        if process.wait(timeout: timeout) {
            return process.exitCode == 0
        }
        kill()
        return false
    }

    /// Sends SIGKILL through the pidfd and reaps jobd.
    func kill() {
        process.signal(SIGKILL)
        process.wait(timeout: .seconds(30))
    }
}

/// The package's debug binaries, located from this file's path.
enum Binaries {
    static let packageRoot: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<4 {
            url.deleteLastPathComponent()
        }
        return url.path
    }()

    static var jobd: String { packageRoot + "/.build/debug/jobd" }
    static var jobctl: String { packageRoot + "/.build/debug/jobctl" }

    /// Returns this process's environment without the JOBCTL_* variables, so only what a test passes counts.
    static func childEnvironment(_ extra: [String: String] = [:]) -> [String: String] {
        var environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("JOBCTL_") }
        environment.merge(extra) { _, new in new }
        return environment
    }
}
