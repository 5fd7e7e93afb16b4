import Foundation
import Glibc
import XCTest

@testable import Cgroups

/// The v2 driver's decisions, checked on a fake cgroupfs because this host's v2 hierarchy has
/// no controllers.
final class CgroupV2DriverTests: XCTestCase {
    private var tree: FakeCgroupTree!

    override func setUpWithError() throws {
        tree = try FakeCgroupTree()
    }

    override func tearDown() {
        tree.remove()
    }

    func testDetectMovesDaemonIntoLeaf() throws {
        let manager = try tree.detect()

        XCTAssertEqual(manager.version, .v2)
        XCTAssertEqual(try tree.read("jobworker/daemon/cgroup.procs"), String(tree.processID))
        XCTAssertEqual(manager.jobsDirectories, [tree.ownDirectory + "/jobworker/jobs"])
    }

    func testDetectEnablesControllersDownToJobs() throws {
        _ = try tree.detect()

        let expected = "+cpu +memory +io +pids"
        XCTAssertEqual(try tree.read("cgroup.subtree_control"), expected)
        XCTAssertEqual(try tree.read("jobworker/cgroup.subtree_control"), expected)
        XCTAssertEqual(try tree.read("jobworker/jobs/cgroup.subtree_control"), expected)
        XCTAssertEqual(try tree.read("jobworker/daemon/cgroup.subtree_control"), "")
    }

    func testDetectInsideDaemonLeafKeepsLayout() throws {
        _ = try tree.detect()
        try tree.write("", to: tree.ownDirectory + "/jobworker/daemon/cgroup.procs")

        let manager = try tree.detect(procSelfCgroup: "0::\(tree.ownPath)/jobworker/daemon\n")

        XCTAssertEqual(manager.jobsDirectories, [tree.ownDirectory + "/jobworker/jobs"])
        XCTAssertEqual(
            try tree.read("jobworker/daemon/cgroup.procs"), "", "a process already in the leaf is not written again")
        XCTAssertFalse(FileManager.default.fileExists(atPath: tree.ownDirectory + "/jobworker/daemon/jobworker"))
    }

    func testSecondManagerOnSameSubtreeFails() throws {
        var first: CgroupManager? = try tree.detect()
        XCTAssertNotNil(first)

        XCTAssertThrowsError(try tree.detect()) { error in
            let cgroupError = error as? CgroupError
            XCTAssertEqual(cgroupError?.isSubtreeInUse, true, "\(error)")
            XCTAssertTrue("\(error)".contains("--cgroup-root"), "the message must name the fix: \(error)")
        }

        first = nil
        XCTAssertNoThrow(try tree.detect(), "the lock must be released with the first manager")
    }

    func testCreateWritesEveryLimit() throws {
        let manager = try tree.detect()
        let limits = ResourceLimits(cpuPercent: 150, memoryBytes: 256 << 20, ioBytesPerSecond: 10 << 20, maxPids: 100)

        let cgroup = try manager.create(name: "job1", limits: limits)

        XCTAssertEqual(cgroup.path, tree.ownDirectory + "/jobworker/jobs/job1")
        XCTAssertEqual(try tree.read("jobworker/jobs/job1/cpu.max"), "150000 100000")
        XCTAssertEqual(try tree.read("jobworker/jobs/job1/memory.max"), "268435456")
        XCTAssertEqual(try tree.read("jobworker/jobs/job1/memory.swap.max"), "0")
        XCTAssertEqual(try tree.read("jobworker/jobs/job1/io.max"), "8:0 rbps=10485760 wbps=10485760")
        XCTAssertEqual(try tree.read("jobworker/jobs/job1/pids.max"), "100")
    }

    func testCreateWithoutLimitsWritesOnlyPids() throws {
        let manager = try tree.detect()

        _ = try manager.create(name: "job1", limits: ResourceLimits())

        XCTAssertEqual(try tree.read("jobworker/jobs/job1/cpu.max"), "max 100000")
        XCTAssertEqual(try tree.read("jobworker/jobs/job1/memory.max"), "max")
        XCTAssertEqual(try tree.read("jobworker/jobs/job1/io.max"), "")
        XCTAssertEqual(try tree.read("jobworker/jobs/job1/pids.max"), String(ResourceLimits.defaultMaxPids))
    }

    func testCreateRoundsMemoryDownToPages() throws {
        let manager = try tree.detect()

        _ = try manager.create(name: "job1", limits: ResourceLimits(memoryBytes: (64 << 20) + 100))

        XCTAssertEqual(try tree.read("jobworker/jobs/job1/memory.max"), String(64 << 20))
    }

    func testMemoryLimitWithoutSwapAccountingOrSwap() throws {
        let manager = try tree.detect()
        tree.directories.omittedFiles = ["memory.swap.max"]

        _ = try manager.create(name: "job1", limits: ResourceLimits(memoryBytes: 64 << 20))

        XCTAssertEqual(try tree.read("jobworker/jobs/job1/memory.max"), "67108864")
    }

    func testMemoryLimitWithoutSwapAccountingButSwapFails() throws {
        let manager = try tree.detect()
        tree.directories.omittedFiles = ["memory.swap.max"]
        try tree.write(
            "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n/swapfile file 1048572 0 -2\n", to: tree.swapsFile)

        XCTAssertThrowsError(try manager.create(name: "job1", limits: ResourceLimits(memoryBytes: 64 << 20))) { error in
            let message = String(describing: error)
            XCTAssertTrue(message.contains("swap is active on /swapfile"), message)
        }
        XCTAssertEqual(try manager.listJobCgroups(), [])
    }

    func testCreateRejectsMissingController() throws {
        tree.remove()
        tree = try FakeCgroupTree(offeredControllers: ["memory", "pids"])
        let manager = try tree.detect()

        XCTAssertThrowsError(try manager.create(name: "job1", limits: ResourceLimits(cpuPercent: 50))) { error in
            let message = String(describing: error)
            XCTAssertTrue(message.contains("the cpu controller needed for the CPU limit is not available"), message)
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: tree.ownDirectory + "/jobworker/jobs/job1"))
        XCTAssertNoThrow(try manager.create(name: "job2", limits: ResourceLimits(memoryBytes: 64 << 20)))
    }

    func testCreateRejectsMissingPidsController() throws {
        tree.remove()
        tree = try FakeCgroupTree(offeredControllers: ["cpu", "memory", "io"])
        let manager = try tree.detect()

        XCTAssertThrowsError(try manager.create(name: "job1", limits: ResourceLimits())) { error in
            XCTAssertTrue(String(describing: error).contains("the pids controller"), "\(error)")
        }
    }

    func testFailedWriteRemovesCgroup() throws {
        let manager = try tree.detect()
        tree.directories.directoryInPlaceOf = "memory.max"

        XCTAssertThrowsError(
            try manager.create(name: "job1", limits: ResourceLimits(cpuPercent: 50, memoryBytes: 64 << 20))
        ) {
            error in
            guard let error = error as? CgroupError else {
                return XCTFail("expected CgroupError, got \(error)")
            }
            XCTAssertEqual(error.file, tree.ownDirectory + "/jobworker/jobs/job1/memory.max")
            XCTAssertEqual(error.value, "67108864")
            XCTAssertEqual(error.errno, EISDIR)
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: tree.ownDirectory + "/jobworker/jobs/job1"))
        XCTAssertEqual(try manager.listJobCgroups(), [])
    }

    func testFailedWriteErrorNamesFileValueAndErrno() throws {
        let manager = try tree.detect()
        tree.directories.directoryInPlaceOf = "pids.max"

        XCTAssertThrowsError(try manager.create(name: "job1", limits: ResourceLimits(maxPids: 7))) { error in
            XCTAssertEqual(
                String(describing: error),
                "write \"7\" to \(tree.ownDirectory)/jobworker/jobs/job1/pids.max failed: Is a directory (errno 21)")
        }
    }

    func testIOLimitOnPartitionUsesDisk() throws {
        let manager = try tree.detect(ioDevice: "8:1")

        _ = try manager.create(name: "job1", limits: ResourceLimits(ioBytesPerSecond: 1 << 20))

        XCTAssertEqual(try tree.read("jobworker/jobs/job1/io.max"), "8:0 rbps=1048576 wbps=1048576")
    }

    func testIOLimitWithoutBlockDeviceFails() throws {
        // The state directory's device is not in the fake sysfs, as for tmpfs or overlay.
        let manager = try tree.detect(ioDevice: nil)

        XCTAssertThrowsError(try manager.create(name: "job1", limits: ResourceLimits(ioBytesPerSecond: 1 << 20))) {
            error in
            let message = String(describing: error)
            XCTAssertTrue(message.contains("cannot be throttled"), message)
        }
        XCTAssertEqual(try manager.listJobCgroups(), [])
        XCTAssertNoThrow(try manager.create(name: "job2", limits: ResourceLimits(memoryBytes: 64 << 20)))
    }

    func testDirectoryFDIsCgroupDirectory() throws {
        let manager = try tree.detect()
        let cgroup = try manager.create(name: "job1", limits: ResourceLimits())

        let fd = try cgroup.openDirectoryFD()
        defer { close(fd) }

        var opened = stat()
        var expected = stat()
        XCTAssertEqual(fstat(fd, &opened), 0)
        XCTAssertEqual(stat(cgroup.path, &expected), 0)
        XCTAssertEqual(opened.st_ino, expected.st_ino)
        XCTAssertEqual(fcntl(fd, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC)
        XCTAssertEqual(cgroup.procsFiles, [cgroup.path + "/cgroup.procs"])
    }

    func testKillWritesCgroupKill() throws {
        let manager = try tree.detect()
        let cgroup = try manager.create(name: "job1", limits: ResourceLimits())

        try cgroup.killAll()

        XCTAssertEqual(try tree.read("jobworker/jobs/job1/cgroup.kill"), "1")
    }

    func testPopulatedReadsCgroupEvents() throws {
        let manager = try tree.detect()
        let cgroup = try manager.create(name: "job1", limits: ResourceLimits())
        XCTAssertFalse(try cgroup.isPopulated())

        XCTAssertEqual(cgroup.eventsFile, cgroup.path + "/cgroup.events")
        try tree.write("populated 1\nfrozen 0\n", to: cgroup.path + "/cgroup.events")

        XCTAssertTrue(try cgroup.isPopulated())
    }

    func testRemoveWaitsWhileBusy() throws {
        let manager = try tree.detect()
        let cgroup = try manager.create(name: "job1", limits: ResourceLimits())
        try tree.write("77\n", to: cgroup.path + "/cgroup.procs")

        XCTAssertFalse(try cgroup.tryRemove())
        XCTAssertEqual(try cgroup.members(), [77])

        try tree.write("", to: cgroup.path + "/cgroup.procs")
        XCTAssertTrue(try cgroup.tryRemove())
        XCTAssertNil(manager.open(name: "job1"))
    }

    func testUsageReadsStatFiles() throws {
        let manager = try tree.detect()
        let cgroup = try manager.create(name: "job1", limits: ResourceLimits())
        try tree.write("usage_usec 1500\nuser_usec 1000\nsystem_usec 500\n", to: cgroup.path + "/cpu.stat")
        try tree.write("1048576\n", to: cgroup.path + "/memory.peak")
        try tree.write("low 0\nhigh 0\nmax 3\noom 2\noom_kill 2\n", to: cgroup.path + "/memory.events")
        try tree.write(
            "8:0 rbytes=100 wbytes=200 rios=1 wios=2 dbytes=0 dios=0\n8:16 rbytes=1 wbytes=2 rios=1 wios=1 dbytes=0 dios=0\n",
            to: cgroup.path + "/io.stat")

        let usage = try cgroup.usage()

        XCTAssertEqual(
            usage,
            ResourceUsage(
                cpuNanoseconds: 1_500_000, memoryPeakBytes: 1_048_576, ioReadBytes: 101, ioWriteBytes: 202, oomKills: 2)
        )
    }

    func testOpenAndListExistingJobs() throws {
        let manager = try tree.detect()
        _ = try manager.create(name: "b", limits: ResourceLimits())
        _ = try manager.create(name: "a", limits: ResourceLimits())

        XCTAssertEqual(try manager.listJobCgroups(), ["a", "b"])
        XCTAssertEqual(manager.open(name: "a")?.name, "a")
        XCTAssertNil(manager.open(name: "c"))
        XCTAssertNil(manager.open(name: "../a"))
    }

    func testCreateRejectsPathNames() throws {
        let manager = try tree.detect()

        for name in ["", "..", "a/b", ".hidden", "cpu max"] {
            XCTAssertThrowsError(try manager.create(name: name, limits: ResourceLimits()), "name \"\(name)\"")
        }
    }

    func testCreateRejectsExistingName() throws {
        let manager = try tree.detect()
        _ = try manager.create(name: "job1", limits: ResourceLimits())

        XCTAssertThrowsError(try manager.create(name: "job1", limits: ResourceLimits())) { error in
            XCTAssertEqual((error as? CgroupError)?.errno, EEXIST)
        }
    }
}
