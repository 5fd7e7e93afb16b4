import Foundation
import Glibc
import XCTest

@testable import Cgroups

/// Limits and operations against the running kernel (cgroup v1 on the development host).
final class KernelCgroupTests: KernelCgroupTestCase {
    func testDetectPlacesJobsBelowOwnCgroups() throws {
        let entries = ProcCgroupEntry.parse(try CgroupFiles.read("/proc/self/cgroup"))

        for directory in manager.jobsDirectories {
            XCTAssertTrue(directory.hasSuffix("/" + subtreeName), directory)
            XCTAssertTrue(CgroupFiles.isDirectory(directory), directory)
        }
        guard manager.version == .v1 else {
            return
        }
        for controller in ["memory", "freezer", "pids"] {
            let own = try XCTUnwrap(entries.first { $0.controllers.contains(controller) }).path
            let expected = "/sys/fs/cgroup/\(controller)\(own == "/" ? "" : own)/\(subtreeName)"
            XCTAssertTrue(manager.jobsDirectories.contains(expected), "\(expected) in \(manager.jobsDirectories)")
        }
    }

    func testCreateWritesLimitsToKernel() throws {
        let limits = ResourceLimits(cpuPercent: 150, memoryBytes: 64 << 20, ioBytesPerSecond: 5 << 20, maxPids: 50)

        let cgroup = try manager.create(name: "limits", limits: limits)

        let device = try BlockDevice.resolve(
            stateDirectory: stateDirectory, configured: nil, sysBlock: "/sys/dev/block")
        if cgroup.version == .v1 {
            let job = "\(subtreeName)/limits"
            XCTAssertEqual(try read(controller: "cpu", job, "cpu.cfs_quota_us"), "150000")
            XCTAssertEqual(try read(controller: "cpu", job, "cpu.cfs_period_us"), "100000")
            XCTAssertEqual(try read(controller: "memory", job, "memory.limit_in_bytes"), "67108864")
            XCTAssertEqual(try read(controller: "memory", job, "memory.memsw.limit_in_bytes"), "67108864")
            XCTAssertEqual(try read(controller: "blkio", job, "blkio.throttle.read_bps_device"), "\(device) 5242880")
            XCTAssertEqual(try read(controller: "blkio", job, "blkio.throttle.write_bps_device"), "\(device) 5242880")
            XCTAssertEqual(try read(controller: "pids", job, "pids.max"), "50")
        } else {
            XCTAssertEqual(try CgroupFiles.readTrimmed(cgroup.path + "/cpu.max"), "150000 100000")
            XCTAssertEqual(try CgroupFiles.readTrimmed(cgroup.path + "/memory.max"), "67108864")
            XCTAssertEqual(try CgroupFiles.readTrimmed(cgroup.path + "/pids.max"), "50")
        }
    }

    func testRejectedWriteRemovesEveryHierarchy() throws {
        guard manager.version == .v1 else {
            throw XCTSkip("cgroup v1 only: v2 accepts a child cpu.max above its parent's")
        }
        // cgroup v1 rejects a child CFS quota above its parent's with EINVAL.
        let cpuJobs = try XCTUnwrap(manager.jobsDirectories.first { $0.hasPrefix("/sys/fs/cgroup/cpu/") })
        try CgroupFiles.write("50000", to: cpuJobs + "/cpu.cfs_quota_us")
        defer { try? CgroupFiles.write("-1", to: cpuJobs + "/cpu.cfs_quota_us") }

        XCTAssertThrowsError(try manager.create(name: "over-quota", limits: ResourceLimits(cpuPercent: 150))) { error in
            let error = error as? CgroupError
            XCTAssertEqual(error?.file, cpuJobs + "/over-quota/cpu.cfs_quota_us")
            XCTAssertEqual(error?.value, "150000")
            XCTAssertEqual(error?.errno, EINVAL)
        }
        for directory in manager.jobsDirectories {
            XCTAssertFalse(CgroupFiles.exists(directory + "/over-quota"), directory)
        }
    }

    func testProcessSeesOwnCgroup() throws {
        let cgroup = try manager.create(name: "membership", limits: ResourceLimits())
        let process = try startInside(cgroup, "exec cat /proc/self/cgroup", captureOutput: true)
        let text = process.readOutput()
        try waitForExit(process, in: cgroup)

        let entries = ProcCgroupEntry.parse(text)
        let suffix = "/\(subtreeName)/membership"
        let controllers = cgroup.version == .v1 ? ["memory", "freezer", "pids", "cpu", "cpuacct", "blkio"] : []
        for controller in controllers {
            let entry = entries.first { $0.controllers.contains(controller) }
            XCTAssertEqual(entry.map { $0.path.hasSuffix(suffix) }, true, "\(controller) in \(text)")
        }
        if cgroup.version == .v2 {
            XCTAssertEqual(entries.first { $0.hierarchyID == 0 }.map { $0.path.hasSuffix(suffix) }, true, text)
        }
    }

    func testMemoryLimitKillsTail() throws {
        let cgroup = try manager.create(name: "oom-tail", limits: ResourceLimits(memoryBytes: 64 << 20))

        let process = try startInside(cgroup, "exec tail /dev/zero")
        try waitForExit(process, in: cgroup)

        XCTAssertEqual(process.terminatingSignal, SIGKILL)
        XCTAssertGreaterThanOrEqual(try cgroup.usage().oomKills, 1)
        XCTAssertGreaterThan(try cgroup.usage().memoryPeakBytes, 32 << 20)
    }

    func testMemoryLimitLeaderOutlivesOOMKill() throws {
        let cgroup = try manager.create(name: "oom-child", limits: ResourceLimits(memoryBytes: 64 << 20))
        let process = try startInside(cgroup, "tail /dev/zero; echo after; exit 3", captureOutput: true)
        let text = process.readOutput()
        try waitForExit(process, in: cgroup)

        XCTAssertEqual(process.exitCode, 3)
        XCTAssertEqual(text, "after\n")
        XCTAssertGreaterThanOrEqual(try cgroup.usage().oomKills, 1)
    }

    func testCPULimitOfTwentyPercent() throws {
        let cgroup = try manager.create(name: "cpu-20", limits: ResourceLimits(cpuPercent: 20))

        let cpuSeconds = try busyLoops(1, in: cgroup, for: 3)

        // 20% of one CPU for 3 s is 0.6 s of CPU time; CFS enforces it per 100 ms period.
        XCTAssertGreaterThan(cpuSeconds, 0.6 * 0.75)
        XCTAssertLessThan(cpuSeconds, 0.6 * 1.25)
    }

    func testCPULimitAboveOneCPU() throws {
        guard ResourceLimits.onlineCPUCount() >= 2 else {
            throw XCTSkip("a 150% limit needs at least 2 CPUs")
        }
        let cgroup = try manager.create(name: "cpu-150", limits: ResourceLimits(cpuPercent: 150))

        let cpuSeconds = try busyLoops(4, in: cgroup, for: 3)

        // 1.5 CPUs for 3 s is 4.5 s. The lower bound, 1.1 CPUs, shows that the quota lets the
        // job use more than one CPU even while other work on a shared host runs.
        XCTAssertLessThan(cpuSeconds, 4.5 * 1.15)
        XCTAssertGreaterThan(cpuSeconds, 3.3)
    }

    func testDiskIOLimitSlowsDirectReads() throws {
        // Reading the disk node itself is not permitted in every sandbox, so the job reads a file
        // in the state directory, which lives on the throttled disk, bypassing the page cache.
        let file = stateDirectory + "/\(subtreeName)-read.bin"
        defer { unlink(file) }
        let writer = try ShellProcess(script: "dd if=/dev/zero of='\(file)' bs=1M count=20 conv=fsync 2>/dev/null")
        XCTAssertTrue(writer.wait(timeout: .seconds(60)))
        XCTAssertEqual(writer.exitCode, 0)
        let cgroup = try manager.create(name: "io-read", limits: ResourceLimits(ioBytesPerSecond: 5 << 20))

        let elapsed = try timeJob(
            in: cgroup, "exec dd if='\(file)' of=/dev/null bs=1M count=20 iflag=direct 2>/dev/null")

        // 20 MiB at 5 MiB/s is 4 s; the throttle lets a first slice through early.
        XCTAssertGreaterThanOrEqual(elapsed, .seconds(3))
        XCTAssertGreaterThanOrEqual(try cgroup.usage().ioReadBytes, 20 << 20)
    }

    func testDiskIOLimitSlowsDirectWrites() throws {
        let file = stateDirectory + "/\(subtreeName)-write.bin"
        defer { unlink(file) }
        let cgroup = try manager.create(name: "io-write", limits: ResourceLimits(ioBytesPerSecond: 5 << 20))

        let elapsed = try timeJob(
            in: cgroup, "exec dd if=/dev/zero of='\(file)' bs=1M count=20 oflag=direct 2>/dev/null")

        XCTAssertGreaterThanOrEqual(elapsed, .seconds(3))
        XCTAssertGreaterThanOrEqual(try cgroup.usage().ioWriteBytes, 20 << 20)
    }

    func testPidsLimitCapsTasks() throws {
        let cgroup = try manager.create(name: "pids", limits: ResourceLimits(maxPids: 8))

        let process = try startInside(cgroup, "for i in 1 2 3 4 5 6 7 8 9 10 11 12; do sleep 30 & done; sleep 30")
        usleep(500_000)
        let members = try cgroup.members()
        try cgroup.killAll()
        try waitForExit(process, in: cgroup)

        XCTAssertLessThanOrEqual(members.count, 8)
        XCTAssertGreaterThanOrEqual(members.count, 2)
    }

    func testKillAllEndsForkingTree() throws {
        let cgroup = try manager.create(name: "kill", limits: ResourceLimits(maxPids: 64))

        let process = try startInside(cgroup, "while :; do sleep 30 & sleep 0.01; done")
        usleep(300_000)
        XCTAssertTrue(try cgroup.isPopulated())
        try cgroup.killAll()

        XCTAssertTrue(try cgroup.waitUntilEmpty(timeout: .seconds(10)))
        try waitForExit(process, in: cgroup)
        XCTAssertEqual(process.terminatingSignal, SIGKILL)
        XCTAssertTrue(try cgroup.tryRemove())
    }

    func testSignalAllSendsTermToEachMember() throws {
        let cgroup = try manager.create(name: "term", limits: ResourceLimits())

        let process = try startInside(cgroup, "sleep 30 & sleep 30 & wait")
        try waitForMembers(3, in: cgroup)
        try cgroup.signalAll(SIGTERM)

        XCTAssertTrue(try cgroup.waitUntilEmpty(timeout: .seconds(10)))
        try waitForExit(process, in: cgroup)
        XCTAssertEqual(process.terminatingSignal, SIGTERM)
    }

    func testRemoveIsBusyWhileTasksRemain() throws {
        let cgroup = try manager.create(name: "busy", limits: ResourceLimits())
        let process = try startInside(cgroup, "exec sleep 30")
        try waitUntilJoined(process, cgroup)

        XCTAssertFalse(try cgroup.tryRemove())
        XCTAssertEqual(try cgroup.members(), [process.pid])

        try cgroup.killAll()
        try waitForExit(process, in: cgroup)
        try cgroup.remove(timeout: .seconds(10))
        XCTAssertNil(manager.open(name: "busy"))
    }

    func testManyCgroupsLeaveNothingBehind() throws {
        let count = 2000
        let clock = ContinuousClock()
        let start = clock.now

        for index in 0..<count {
            let cgroup = try manager.create(name: "many-\(index)", limits: ResourceLimits(memoryBytes: 64 << 20))
            let process = try startInside(cgroup, "exit 0")
            try waitForExit(process, in: cgroup)
            XCTAssertEqual(process.exitCode, 0)
            try cgroup.remove(timeout: .seconds(10))
        }
        let elapsed = clock.now - start
        print("created, used and removed \(count) cgroups in \(elapsed)")

        XCTAssertEqual(try manager.listJobCgroups(), [])
        for directory in manager.jobsDirectories {
            XCTAssertEqual(try CgroupFiles.subdirectories(of: directory), [], directory)
        }
    }

    // MARK: - Helpers

    /// Runs `command` inside `cgroup`, expects exit status 0 and returns the wall time it took.
    private func timeJob(in cgroup: Cgroup, _ command: String) throws -> Duration {
        let clock = ContinuousClock()
        let start = clock.now
        let process = try startInside(cgroup, command)
        try waitForExit(process, in: cgroup)
        let elapsed = clock.now - start
        XCTAssertEqual(process.exitCode, 0, command)
        print("\(command) took \(elapsed)")
        return elapsed
    }

    private func read(controller: String, _ job: String, _ file: String) throws -> String {
        let directory = try XCTUnwrap(manager.jobsDirectories.first { $0.hasPrefix("/sys/fs/cgroup/\(controller)/") })
        return try CgroupFiles.read((directory as NSString).deletingLastPathComponent + "/\(job)/\(file)")
            .trimmingWhitespace()
    }

    /// Runs `count` busy loops inside `cgroup` for `seconds` of wall time, kills them and
    /// returns the CPU seconds the cgroup used.
    private func busyLoops(_ count: Int, in cgroup: Cgroup, for seconds: Double) throws -> Double {
        let loops = (0..<count).map { _ in "(while :; do :; done) &" }.joined(separator: " ")
        try raiseCPUWeight(of: cgroup)
        let clock = ContinuousClock()
        let start = clock.now
        let process = try startInside(cgroup, "\(loops) wait")
        usleep(UInt32(seconds * 1_000_000))
        let usage = try cgroup.usage()
        let elapsed = clock.now - start
        try cgroup.killAll()
        try waitForExit(process, in: cgroup)

        let cpuSeconds = Double(usage.cpuNanoseconds) / 1e9
        print("\(count) busy loops used \(cpuSeconds) s of CPU in \(elapsed)")
        return cpuSeconds
    }

    /// Gives the job and the test's subtree ten times the default CPU weight, so that other work
    /// on a shared host cannot starve the job and its CPU time reflects the quota rather than
    /// contention. CFS divides CPU time by weight among siblings at each level, so each level
    /// this test owns gets the weight.
    private func raiseCPUWeight(of cgroup: Cgroup) throws {
        if cgroup.version == .v2 {
            let jobs = (cgroup.path as NSString).deletingLastPathComponent
            for directory in [cgroup.path, jobs, (jobs as NSString).deletingLastPathComponent] {
                try CgroupFiles.write("1000", to: directory + "/cpu.weight")
            }
            return
        }
        let cpuJobs = try XCTUnwrap(manager.jobsDirectories.first { $0.hasPrefix("/sys/fs/cgroup/cpu/") })
        try CgroupFiles.write("10240", to: cpuJobs + "/cpu.shares")
        try CgroupFiles.write("10240", to: "\(cpuJobs)/\(cgroup.name)/cpu.shares")
    }

    private func waitForMembers(_ count: Int, in cgroup: Cgroup) throws {
        let clock = ContinuousClock()
        let deadline = clock.now + .seconds(10)
        while try cgroup.members().count < count {
            guard clock.now < deadline else {
                return XCTFail("fewer than \(count) members after 10 s: \(try cgroup.members())")
            }
            usleep(10_000)
        }
    }
}
