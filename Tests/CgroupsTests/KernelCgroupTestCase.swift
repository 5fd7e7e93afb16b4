import Foundation
import Glibc
import XCTest

@testable import Cgroups

/// Base for tests against the running kernel's cgroups. They need root and a writable cgroup
/// tree: under CI=true they always run, elsewhere they skip with the reason.
///
/// Each test process uses its own subtree, `jobworker-test-<pid>`, below its own cgroups, and
/// removes it in tearDown.
class KernelCgroupTestCase: XCTestCase {
    var manager: CgroupManager!
    let subtreeName = "jobworker-test-\(getpid())"
    let stateDirectory = NSTemporaryDirectory()
    private var started: [ShellProcess] = []

    override func setUpWithError() throws {
        let underCI = ProcessInfo.processInfo.environment["CI"] == "true"
        if !underCI && getuid() != 0 {
            throw XCTSkip("creating cgroups needs root; these tests run as root under CI=true")
        }
        do {
            manager = try CgroupManager.detect(
                subtreeName: subtreeName, stateDirectory: stateDirectory, ioDevice: nil)
        } catch {
            if underCI {
                throw error
            }
            throw XCTSkip("cgroups are not writable here (\(error)); these tests run under CI=true")
        }
    }

    override func tearDownWithError() throws {
        guard let manager else {
            return
        }
        // Every cgroup gets its cleanup even when an earlier one fails; the first error is
        // reported at the end.
        var firstError: (any Error)?
        for name in try manager.listJobCgroups() {
            do {
                let cgroup = try XCTUnwrap(manager.open(name: name))
                try cgroup.killAll()
                try cgroup.remove(timeout: .seconds(10))
            } catch {
                firstError = firstError ?? error
            }
        }
        for process in started {
            _ = process.wait(timeout: .seconds(10))
        }
        for directory in manager.jobsDirectories {
            rmdir(directory)
        }
        if let firstError {
            throw firstError
        }
    }

    /// Starts `command` with /bin/sh after the shell wrote its own pid into every procs file of
    /// `cgroup`, so the command and all it forks run inside the job cgroup.
    func startInside(_ cgroup: Cgroup, _ command: String, captureOutput: Bool = false) throws -> ShellProcess {
        // The joins end with a newline so that a trailing `&` in `command` cannot put them into
        // a background subshell, whose $$ would still name this shell.
        let joins = cgroup.procsFiles.map { "echo $$ > '\($0)'" }.joined(separator: " && ")
        let process = try ShellProcess(script: "\(joins) || exit 126\n\(command)", captureOutput: captureOutput)
        started.append(process)
        return process
    }

    /// Waits until `process` is listed in every procs file of `cgroup`, because the shell
    /// joins the hierarchies one after the other.
    func waitUntilJoined(_ process: ShellProcess, _ cgroup: Cgroup) throws {
        let clock = ContinuousClock()
        let deadline = clock.now + .seconds(10)
        while try !cgroup.procsFiles.allSatisfy({ try CgroupFiles.readPids($0).contains(process.pid) }) {
            guard clock.now < deadline else {
                return XCTFail("process \(process.pid) did not join every hierarchy of \(cgroup.name) in 10 s")
            }
            usleep(5_000)
        }
    }

    /// Waits for `process` to exit; on timeout kills the job cgroup and fails.
    func waitForExit(_ process: ShellProcess, in cgroup: Cgroup, timeout: Duration = .seconds(60)) throws {
        if !process.wait(timeout: timeout) {
            try cgroup.killAll()
            _ = process.wait(timeout: .seconds(10))
            XCTFail("process \(process.pid) still running after \(timeout)")
        }
    }
}
