import CSystem
import Cgroups
import Foundation
import Glibc
import Reactor
import XCTest

@testable import Jobs

final class JobRestartTests: XCTestCase {
    func testRestartListsFinishedJobsAndStreamsTheirOutput() throws {
        let harness = try JobHarness.withCgroups()
        defer { harness.close() }
        let first = try harness.sh("echo one; echo two >&2; exit 4", id: "first")
        let second = try harness.sh("head -c 300000 /dev/zero | tr '\\\\0' x; kill -KILL $$", id: "second")
        let before = [try harness.collect(first), try harness.collect(second)]

        let manager = try harness.restartManager()
        let problems = try manager.recover()

        XCTAssertEqual(problems, [])
        XCTAssertEqual(manager.allJobs.map(\.id), ["first", "second"])
        XCTAssertEqual(manager.job(id: "first")?.status, first.status)
        XCTAssertEqual(manager.job(id: "second")?.status, second.status)
        for (index, job) in manager.allJobs.enumerated() {
            let after = try harness.collect(job)
            XCTAssertEqual(after.stdoutData, before[index].stdoutData, job.id)
            XCTAssertEqual(after.stderrData, before[index].stderrData, job.id)
            XCTAssertEqual(after.status, job.status, job.id)
        }
        XCTAssertEqual(before[1].stdoutData.count, 300_000)
        XCTAssertEqual(manager.job(id: "second")?.status.signal, SIGKILL)
    }

    func testRecoverStopsJobLeftRunning() throws {
        let harness = try JobHarness.withCgroups()
        defer { harness.close() }
        let cgroups = try XCTUnwrap(harness.cgroups)

        // What a crashed jobd leaves: metadata saying running, a log, and a cgroup with a
        // process in it.
        let id = "left-running"
        let store = try JobStore(stateDirectory: harness.stateDirectory)
        try store.save(
            JobStatus(
                id: id, owner: "test", command: "/bin/sleep", arguments: ["1000"], state: .running,
                startedAtNanoseconds: wallClockNanoseconds(), limits: ResourceLimits()))
        let log =
            Array("JOBLOG1\n".utf8) + OutputLogFormat.header(stream: .stdout, length: 3) + Array("abc".utf8)
            + OutputLogFormat.header(stream: .stderr, length: 10) + Array("torn".utf8)
        try Data(log).write(to: URL(fileURLWithPath: store.logPath(id: id)))
        let cgroup = try cgroups.create(name: id, limits: ResourceLimits())
        let process = try spawnSleep(into: cgroup)
        defer { Syscall.close(process.pidfd) }

        let manager = try harness.restartManager()
        let problems = try manager.recover()

        XCTAssertEqual(problems, ["killed 1 processes left in the cgroup of job \(id) from before the restart"])
        let status = try XCTUnwrap(manager.job(id: id)?.status)
        XCTAssertEqual(status.state, .stopped)
        XCTAssertEqual(status.signal, SIGKILL)
        XCTAssertNotNil(status.endedAtNanoseconds)
        XCTAssertNil(cgroups.open(name: id), "the leftover cgroup was not removed")
        var info = siginfo_t()
        XCTAssertEqual(cs_waitid_pidfd(process.pidfd, &info, WEXITED), 0, "reap the killed sleep")
        XCTAssertEqual(cs_siginfo_status(&info), SIGKILL)

        // The torn last record is ignored.
        let output = try harness.collect(try XCTUnwrap(manager.job(id: id)))
        XCTAssertEqual(text(output.stdout), "abc")
        XCTAssertEqual(output.stderr, [])

        // The saved metadata records the job as stopped now.
        let again = try harness.restartManager()
        try again.recover()
        XCTAssertEqual(again.job(id: id)?.status.state, .stopped)
    }

    private func spawnSleep(into cgroup: Cgroup) throws -> SpawnedProcess {
        let devNull = open("/dev/null", O_RDWR | O_CLOEXEC)
        defer { Syscall.close(devNull) }
        var request = SpawnRequest(
            command: "/bin/sleep", arguments: ["1000"], environment: [], workingDirectory: nil, stdinFD: devNull,
            stdoutFD: devNull, stderrFD: devNull)
        var fds: [Int32] = []
        defer { fds.forEach { Syscall.close($0) } }
        switch cgroup.version {
        case .v2:
            fds.append(try cgroup.openDirectoryFD())
            request.cgroupDirectoryFD = fds[0]
        case .v1:
            for file in cgroup.procsFiles {
                fds.append(open(file, O_WRONLY | O_CLOEXEC))
            }
            request.cgroupProcsFDs = fds
        }
        return try Spawner.spawn(request)
    }
}
