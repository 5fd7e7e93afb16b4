import Foundation
import XCTest

@testable import Cgroups

final class DetectionParsingTests: XCTestCase {
    private let hybridMountinfo = """
        31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
        32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
        33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
        35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
        37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime shared:9 - cgroup cgroup rw,freezer
        40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
        41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
        50 23 0:40 /kubepods/pod1 /sys/fs/cgroup/net\\040cls rw - cgroup cgroup rw,net_cls
        """

    func testMountinfoFindsCgroupMounts() {
        let mounts = CgroupMount.parse(mountinfo: hybridMountinfo)

        XCTAssertEqual(mounts.count, 7, "the tmpfs is not a cgroup mount")
        XCTAssertEqual(
            mounts[0], CgroupMount(mountPoint: "/sys/fs/cgroup/cpu", root: "/", isV2: false, controllers: ["cpu"]))
        XCTAssertEqual(mounts[3].controllers, ["freezer"], "optional fields before the separator are skipped")
        XCTAssertEqual(mounts[4].controllers, [], "a named hierarchy has no controllers")
        XCTAssertEqual(
            mounts[5], CgroupMount(mountPoint: "/sys/fs/cgroup/unified", root: "/", isV2: true, controllers: []))
        XCTAssertEqual(mounts[6].mountPoint, "/sys/fs/cgroup/net cls", "octal escapes are decoded")
    }

    func testMountDirectoryForPath() {
        let plain = CgroupMount(mountPoint: "/sys/fs/cgroup/memory", root: "/", isV2: false, controllers: ["memory"])
        let bound = CgroupMount(
            mountPoint: "/sys/fs/cgroup/memory", root: "/kubepods/pod1", isV2: false, controllers: ["memory"])

        XCTAssertEqual(plain.directory(for: "/"), "/sys/fs/cgroup/memory")
        XCTAssertEqual(plain.directory(for: "/process_api/x"), "/sys/fs/cgroup/memory/process_api/x")
        XCTAssertEqual(bound.directory(for: "/kubepods/pod1/c1"), "/sys/fs/cgroup/memory/c1")
        XCTAssertEqual(bound.directory(for: "/kubepods/pod1"), "/sys/fs/cgroup/memory")
        XCTAssertNil(bound.directory(for: "/elsewhere"))
    }

    func testProcSelfCgroupEntries() {
        let entries = ProcCgroupEntry.parse(
            "9:name=systemd:/\n2:cpu,cpuacct:/a/b\n4:memory:/process_api/x\n0::/user.slice\n")

        XCTAssertEqual(entries.count, 4)
        XCTAssertEqual(entries[1], ProcCgroupEntry(hierarchyID: 2, controllers: ["cpu", "cpuacct"], path: "/a/b"))
        XCTAssertEqual(entries[2].path, "/process_api/x")
        XCTAssertEqual(entries[3], ProcCgroupEntry(hierarchyID: 0, controllers: [], path: "/user.slice"))
    }

    func testBlockDeviceOfRootFilesystem() throws {
        let device = try BlockDevice.resolve(stateDirectory: "/", configured: nil, sysBlock: "/sys/dev/block")
        var info = stat()
        XCTAssertEqual(stat("/", &info), 0)

        XCTAssertEqual(device.major, BlockDevice(encoded: info.st_dev).major)
        XCTAssertTrue(CgroupFiles.exists("/sys/dev/block/\(device)"), "\(device) is a block device sysfs lists")
        XCTAssertFalse(CgroupFiles.exists("/sys/dev/block/\(device)/partition"), "\(device) is a whole disk")
    }

    func testBlockDeviceOfTmpfsFails() throws {
        guard CgroupFiles.isDirectory("/dev/shm") else {
            throw XCTSkip("no /dev/shm tmpfs on this host")
        }

        XCTAssertThrowsError(
            try BlockDevice.resolve(stateDirectory: "/dev/shm", configured: nil, sysBlock: "/sys/dev/block")
        ) {
            error in
            XCTAssertTrue(String(describing: error).contains("cannot be throttled"), "\(error)")
        }
    }

    func testBlockDeviceConfiguredAsCharacterDeviceFails() {
        XCTAssertThrowsError(
            try BlockDevice.resolve(stateDirectory: "/", configured: "/dev/null", sysBlock: "/sys/dev/block")
        ) {
            error in
            XCTAssertTrue(String(describing: error).contains("not a block device"), "\(error)")
        }
    }

    func testV1LayoutBelowOwnCgroups() throws {
        let root = try makeV1Root(["cpu,cpuacct", "memory", "freezer", "pids", "blkio", "cpuset"])
        defer { try? FileManager.default.removeItem(atPath: root) }
        try FileManager.default.createDirectory(
            atPath: root + "/memory/process_api/x", withIntermediateDirectories: true)
        let host = CgroupHost(
            mountinfo: "",
            procSelfCgroup: "5:cpu,cpuacct:/\n4:memory:/process_api/x\n3:freezer:/\n2:pids:/\n1:blkio:/\n")

        let manager = try CgroupManager.detect(
            subtreeName: "jobworker", root: root, stateDirectory: "/", ioDevice: nil, host: host)

        XCTAssertEqual(manager.version, .v1)
        XCTAssertEqual(
            manager.jobsDirectories.sorted(),
            [
                root + "/blkio/jobworker", root + "/cpu,cpuacct/jobworker", root + "/freezer/jobworker",
                root + "/memory/process_api/x/jobworker", root + "/pids/jobworker",
            ])
    }

    func testV1WithoutFreezerFails() throws {
        let root = try makeV1Root(["cpu", "memory", "pids"])
        defer { try? FileManager.default.removeItem(atPath: root) }
        let host = CgroupHost(mountinfo: "", procSelfCgroup: "3:cpu:/\n2:memory:/\n1:pids:/\n")

        XCTAssertThrowsError(
            try CgroupManager.detect(
                subtreeName: "jobworker", root: root, stateDirectory: "/", ioDevice: nil, host: host)
        ) { error in
            XCTAssertTrue(String(describing: error).contains("no cgroup v1 freezer hierarchy"), "\(error)")
        }
    }

    private func makeV1Root(_ hierarchies: [String]) throws -> String {
        let root = NSTemporaryDirectory() + "jobworker-fake-v1-\(getpid())-\(UUID().uuidString)"
        for name in hierarchies {
            try FileManager.default.createDirectory(atPath: root + "/" + name, withIntermediateDirectories: true)
        }
        return root
    }
}
