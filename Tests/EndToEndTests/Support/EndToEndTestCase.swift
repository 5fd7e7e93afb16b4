import Foundation
import XCTest

/// The base of every end-to-end test: a scratch directory, a development PKI, and helpers that start
/// real jobd binaries and run real jobctl binaries against them.
///
/// These tests need root and writable cgroups. With CI=true they run (and fail when the machine lacks
/// either); elsewhere they are skipped with the reason.
class EndToEndTestCase: XCTestCase {
    private(set) var scratch = ""
    private(set) var pki: TestPKI!
    /// The cgroup subtree this test's jobd instances use; kept across restarts of the same test.
    private(set) var cgroupSubtree = ""
    private var daemons: [Jobd] = []

    var admin: Identity { pki.identity("admin") }
    var writer: Identity { pki.identity("writer") }
    var reader: Identity { pki.identity("reader") }

    override func setUpWithError() throws {
        try super.setUpWithError()
        try Self.checkRequirements()
        scratch = try TemporaryDirectory.make(prefix: "jobworker-e2e")
        pki = try TestPKI(directory: scratch + "/certs")
        cgroupSubtree = "jobworker-e2e-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
    }

    override func tearDown() {
        for daemon in daemons {
            if !daemon.stop() {
                print("jobd did not exit cleanly on SIGTERM; its log:\n\(daemon.log)")
            }
        }
        if let run = testRun, run.failureCount > 0 {
            for daemon in daemons {
                print("jobd log (\(daemon.logPath)):\n\(daemon.log)")
            }
        }
        daemons.removeAll()
        CgroupCleanup.removeSubtree(named: cgroupSubtree)
        TemporaryDirectory.remove(scratch)
        super.tearDown()
    }

    /// Skips outside CI when this process is not root or the cgroup hierarchy is not writable. In CI the
    /// test runs, and fails if either is missing. Missing binaries always fail.
    static func checkRequirements() throws {
        for binary in [Binaries.jobd, Binaries.jobctl] where access(binary, X_OK) != 0 {
            XCTFail("\(binary) is missing: run `swift build --build-tests` (make test does) before the tests")
            throw XCTSkip("binaries missing")
        }
        let isCI = ProcessInfo.processInfo.environment["CI"] == "true"
        if !isCI && getuid() != 0 {
            throw XCTSkip("end-to-end tests create cgroups and need root; they run in CI (CI=true) as root")
        }
        if !isCI && access("/sys/fs/cgroup", W_OK) != 0 && access("/sys/fs/cgroup/memory", W_OK) != 0 {
            throw XCTSkip("end-to-end tests need a writable cgroup hierarchy under /sys/fs/cgroup; they run in CI")
        }
    }

    /// Starts a jobd on 127.0.0.1 with a free port; `stateDirectory` defaults to one per test.
    @discardableResult
    func startJobd(stateDirectory: String? = nil, extraArguments: [String] = []) throws -> Jobd {
        let state = stateDirectory ?? scratch + "/state"
        let logPath = scratch + "/jobd-\(daemons.count).log"
        let daemon = try Jobd.start(
            pki: pki, stateDirectory: state, cgroupSubtree: cgroupSubtree, logPath: logPath,
            extraArguments: extraArguments)
        daemons.append(daemon)
        return daemon
    }

    /// Starts a jobd with exactly `arguments`, for tests of its own settings.
    @discardableResult
    func startJobd(arguments: [String]) throws -> Jobd {
        let daemon = try Jobd.start(arguments: arguments, logPath: scratch + "/jobd-\(daemons.count).log")
        daemons.append(daemon)
        return daemon
    }

    /// Runs jobctl against `jobd` as `identity` (admin by default) through the --server and --tls-* flags.
    func jobctl(
        _ arguments: [String], on jobd: Jobd, as identity: Identity? = nil, timeout: Duration = .seconds(60)
    ) throws -> CommandResult {
        let identity = identity ?? admin
        let global = [
            "--server", jobd.address, "--tls-ca", pki.caFile, "--tls-cert", identity.certificate,
            "--tls-key", identity.key,
        ]
        return try Command.run(Binaries.jobctl, global + arguments, timeout: timeout)
    }

    /// Starts `jobctl` without waiting, with output in files under the scratch directory.
    func spawnJobctl(
        _ arguments: [String], on jobd: Jobd, as identity: Identity? = nil, name: String
    ) throws
        -> (process: Subprocess, stdout: String, stderr: String)
    {
        let identity = identity ?? admin
        let global = [
            "--server", jobd.address, "--tls-ca", pki.caFile, "--tls-cert", identity.certificate,
            "--tls-key", identity.key,
        ]
        let stdout = scratch + "/\(name).stdout"
        let stderr = scratch + "/\(name).stderr"
        let process = try Subprocess.spawn(
            Binaries.jobctl, global + arguments, environment: Binaries.childEnvironment(), stdoutPath: stdout,
            stderrPath: stderr)
        return (process, stdout, stderr)
    }

    /// Starts a job and returns its id; fails the test with jobctl's stderr when start fails.
    func startJob(
        _ command: [String], on jobd: Jobd, as identity: Identity? = nil, file: StaticString = #filePath,
        line: UInt = #line
    ) throws -> String {
        let result = try jobctl(["start", "--"] + command, on: jobd, as: identity)
        XCTAssertEqual(result.status, 0, "jobctl start failed: \(result.stderrText)", file: file, line: line)
        let id = result.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines)
        XCTAssertFalse(id.isEmpty, "jobctl start printed no job id", file: file, line: line)
        return id
    }

    /// Returns `jobctl query --json` as a dictionary.
    func queryJSON(_ jobID: String, on jobd: Jobd, as identity: Identity? = nil) throws -> [String: Any] {
        let result = try jobctl(["query", "--json", jobID], on: jobd, as: identity)
        guard result.status == 0 else {
            throw SubprocessError(message: "jobctl query failed with \(result.status): \(result.stderrText)")
        }
        guard let object = try JSONSerialization.jsonObject(with: Data(result.stdout)) as? [String: Any] else {
            throw SubprocessError(message: "jobctl query --json printed no object: \(result.stdoutText)")
        }
        return object
    }

    /// Polls `jobctl query --json` until the job's state is `state`; returns the last status.
    @discardableResult
    func waitForState(
        _ state: String, jobID: String, on jobd: Jobd, timeout: Duration = .seconds(30)
    ) throws
        -> [String: Any]
    {
        let deadline = MonotonicDeadline(milliseconds: Int32(timeout.components.seconds * 1000))
        var status = try queryJSON(jobID, on: jobd)
        while status["state"] as? String != state && !deadline.hasPassed {
            usleep(100_000)
            status = try queryJSON(jobID, on: jobd)
        }
        return status
    }
}
