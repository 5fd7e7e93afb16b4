import CSystem
import Cgroups
import Foundation
import Glibc
import Reactor
import XCTest

@testable import Jobs

final class JobLifecycleTests: XCTestCase {
    func testExitStatusTable() throws {
        let harness = try JobHarness.withCgroups()
        defer { harness.close() }
        let cases: [(description: String, script: String, exitCode: Int32?, signal: Int32?)] = [
            ("exit 0", "exit 0", 0, nil),
            ("exit 137 is an exit code, not a signal", "exit 137", 137, nil),
            ("killed by SIGTERM", "kill -TERM $$", nil, SIGTERM),
            ("killed by SIGKILL", "kill -KILL $$", nil, SIGKILL),
        ]
        for testCase in cases {
            let job = try harness.sh(testCase.script)
            let status = try harness.waitUntilFinished(job)
            XCTAssertEqual(status.state, .exited, testCase.description)
            XCTAssertEqual(status.exitCode, testCase.exitCode, testCase.description)
            XCTAssertEqual(status.signal, testCase.signal, testCase.description)
            XCTAssertNotNil(status.endedAtNanoseconds, testCase.description)
            XCTAssertNotNil(status.usage, testCase.description)
            XCTAssertEqual(job.cleanupErrors, [], testCase.description)
        }
    }

    func testBackgroundProcessIsKilledWhenLeaderExits() throws {
        let harness = try JobHarness.withCgroups()
        defer { harness.close() }
        let job = try harness.sh("sleep 600 & echo $! > \(harness.stateDirectory)/sleep.pid; echo started")
        let collected = try harness.collect(job, timeout: .seconds(5))

        XCTAssertEqual(text(collected.stdout), "started\n")
        XCTAssertEqual(collected.status?.exitCode, 0)
        let ended = try XCTUnwrap(collected.status?.endedAtNanoseconds)
        let sleepPid = Int32(
            try String(contentsOfFile: harness.stateDirectory + "/sleep.pid", encoding: .utf8)
                .trimmingCharacters(in: .whitespacesAndNewlines))
        XCTAssertFalse(processExists(try XCTUnwrap(sleepPid)), "the background sleep outlived the job")
        // The stream ended promptly, not after the sleep's 600 s.
        XCTAssertLessThan(ended - job.status.startedAtNanoseconds, 1_000_000_000)
        XCTAssertFalse(try harness.cgroups!.listJobCgroups().contains(job.id), "the job's cgroup was not removed")
        XCTAssertEqual(job.cleanupErrors, [])
    }

    func testStartFailures() throws {
        let harness = try JobHarness.withCgroups()
        defer { harness.close() }
        let emptyFile = harness.stateDirectory + "/empty"
        XCTAssertTrue(
            FileManager.default.createFile(
                atPath: emptyFile, contents: Data(),
                attributes: [.posixPermissions: 0o755]))
        let cases: [(description: String, command: String, message: String)] = [
            ("missing", "/no/such/bin", "cannot execute \"/no/such/bin\": no such file or directory"),
            ("not executable", "/etc/passwd", "cannot execute \"/etc/passwd\": permission denied"),
            ("directory", "/tmp", "cannot execute \"/tmp\": is a directory"),
            ("empty file", emptyFile, "cannot execute \"\(emptyFile)\": exec format error"),
        ]
        let fdsBefore = openFDCount()
        for testCase in cases {
            XCTAssertThrowsError(try harness.start(testCase.command, id: "failing"), testCase.description) { error in
                XCTAssertEqual("\(error)", testCase.message, testCase.description)
            }
            XCTAssertNil(harness.manager.job(id: "failing"), testCase.description)
        }
        XCTAssertEqual(openFDCount(), fdsBefore, "a failed start leaked an fd")
        XCTAssertEqual(zombieChildren(), [], "a failed start left a zombie")
        XCTAssertFalse(try harness.cgroups!.listJobCgroups().contains("failing"), "a failed start left its cgroup")
        let files = try FileManager.default.contentsOfDirectory(atPath: harness.stateDirectory + "/jobs")
        XCTAssertEqual(files, [], "a failed start left files")
    }

    func testLimitsWithoutCgroupsFailStart() throws {
        let harness = try JobHarness.withoutCgroups()
        defer { harness.close() }
        let spec = JobSpec(owner: "test", command: "/bin/true", limits: ResourceLimits(memoryBytes: 64 << 20))
        XCTAssertThrowsError(try harness.manager.start(spec)) { error in
            XCTAssertEqual((error as? JobError)?.kind, .cgroupsUnavailable)
        }
    }

    func testJobWithoutCgroupsRunsAndStops() throws {
        let harness = try JobHarness.withoutCgroups()
        defer { harness.close() }
        let job = try harness.sh("echo hi; exec sleep 30")
        let collector = JobHarness.Collector(harness.manager.subscribe(job))
        // Stop only once the shell has written, so SIGTERM cannot beat the echo.
        XCTAssertTrue(
            try harness.loop.run(until: { collector.collected.stdout == Array("hi\n".utf8) }, timeout: .seconds(5)))

        let status = try harness.stop(job, grace: .seconds(2))
        XCTAssertEqual(status?.state, .stopped)
        XCTAssertEqual(status?.signal, SIGTERM)
        XCTAssertNil(status?.usage)
        XCTAssertTrue(try harness.loop.run(until: { collector.isDone }, timeout: .seconds(5)))
        XCTAssertEqual(collector.collected.status, status)
    }

    func testJobWithoutCgroupsIgnoresBackgroundWriter() throws {
        let harness = try JobHarness.withoutCgroups()
        defer { harness.close() }
        // The background head keeps the pipe open and writing after the leader exits; it dies
        // of SIGPIPE once the job closes the pipe, long before its 100 MB are out.
        let job = try harness.sh("head -c 100000000 /dev/zero & exit 0")

        let collected = try harness.collect(job, timeout: .seconds(10))

        XCTAssertEqual(collected.status?.exitCode, 0)
        XCTAssertLessThan(collected.stdoutData.count, 10_000_000, "the job waited for the background writer")
    }

    func testChildJoinsCgroupBeforeItsFirstInstruction() throws {
        let harness = try JobHarness.withCgroups()
        defer { harness.close() }
        for round in 0..<200 {
            let id = "cgroup-probe-\(round)"
            let job = try harness.sh("cat /proc/self/cgroup; echo; (cat /proc/self/cgroup)", id: id)
            let cgroup = try XCTUnwrap(harness.cgroups?.open(name: id))
            let expected = Self.expectedCgroupLines(cgroup)
            let output = text(try harness.collect(job).stdout)
            XCTAssertEqual(job.cleanupErrors, [], "round \(round)")
            XCTAssertNil(harness.cgroups?.open(name: id), "round \(round): the job's cgroup survived the job")
            let parts = output.components(separatedBy: "\n\n")
            XCTAssertEqual(parts.count, 2, output)
            for part in parts {
                let lines = Set(part.split(separator: "\n").map(String.init))
                for (controllers, suffix) in expected {
                    let line = lines.first {
                        $0.split(separator: ":", maxSplits: 2).dropFirst().first.map(String.init) == controllers
                    }
                    XCTAssertTrue(
                        line?.hasSuffix(suffix) == true,
                        "round \(round): \(controllers) not in the job's cgroup: \(part)")
                }
            }
            if testRun?.failureCount ?? 0 > 0 { break }
        }
    }

    /// Returns, per hierarchy the job's cgroup uses, the controllers field of
    /// /proc/self/cgroup ("" on v2) and the path suffix naming the job's cgroup.
    private static func expectedCgroupLines(_ cgroup: Cgroup) -> [(String, String)] {
        switch cgroup.version {
        case .v2:
            return [("", "/\(cgroup.name)")]
        case .v1:
            // /sys/fs/cgroup/<controllers>/.../<name>/cgroup.procs
            return cgroup.procsFiles.map { file in
                let components = file.split(separator: "/").map(String.init)
                let controllers = components.count > 3 ? components[3] : ""
                let mountName = controllers == "systemd" ? "name=systemd" : controllers
                return (mountName, "/\(cgroup.name)")
            }
        }
    }
}
