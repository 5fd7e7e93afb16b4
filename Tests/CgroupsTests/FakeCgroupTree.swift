import Foundation
import Glibc
import XCTest

@testable import Cgroups

/// A cgroup v2 tree in a temporary directory whose mkdir and rmdir behave like cgroupfs: a new
/// directory gets the interface files of the controllers its parent enables in
/// cgroup.subtree_control, and rmdir fails with EBUSY while cgroup.procs lists a pid.
final class FakeCgroupDirectories: CgroupDirectories {
    /// An interface file created as a directory instead, so that writing it fails with EISDIR.
    var directoryInPlaceOf: String?
    /// Interface files not created, as on a kernel without the feature behind them.
    var omittedFiles: Set<String> = []

    func makeDirectory(_ path: String) throws {
        guard mkdir(path, 0o755) == 0 else {
            throw CgroupError(operation: "mkdir", file: path, errno: errno)
        }
        let parent = (path as NSString).deletingLastPathComponent
        let enabled = (try? String(contentsOfFile: parent + "/cgroup.subtree_control", encoding: .utf8)) ?? ""
        let controllers = enabled.split(whereSeparator: { $0 == " " || $0 == "\n" }).map {
            $0.hasPrefix("+") ? String($0.dropFirst()) : String($0)
        }

        var files = [
            "cgroup.procs": "", "cgroup.events": "populated 0\nfrozen 0\n", "cgroup.subtree_control": "",
            "cgroup.kill": "", "cgroup.controllers": controllers.joined(separator: " ") + "\n",
            "cpu.stat": "usage_usec 0\nuser_usec 0\nsystem_usec 0\n",
        ]
        let perController = [
            "cpu": ["cpu.max": "max 100000\n", "cpu.weight": "100\n"],
            "memory": [
                "memory.max": "max\n", "memory.swap.max": "max\n", "memory.peak": "0\n",
                "memory.events": "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\n",
            ],
            "io": ["io.max": "", "io.stat": ""],
            "pids": ["pids.max": "max\n"],
        ]
        for controller in controllers {
            files.merge(perController[controller] ?? [:]) { current, _ in current }
        }
        for (name, contents) in files where !omittedFiles.contains(name) {
            if name == directoryInPlaceOf {
                mkdir(path + "/" + name, 0o755)
            } else {
                _ = FileManager.default.createFile(atPath: path + "/" + name, contents: Data(contents.utf8))
            }
        }
    }

    func removeDirectory(_ path: String) throws {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw CgroupError(operation: "rmdir", file: path, errno: ENOENT)
        }
        let procs = (try? String(contentsOfFile: path + "/cgroup.procs", encoding: .utf8)) ?? ""
        let children = try CgroupFiles.subdirectories(of: path).filter { $0 != directoryInPlaceOf }
        guard procs.trimmingWhitespace().isEmpty, children.isEmpty else {
            throw CgroupError(operation: "rmdir", file: path, errno: EBUSY)
        }
        try FileManager.default.removeItem(atPath: path)
    }
}

/// A temporary root with a fake v2 hierarchy, a process cgroup at `ownPath` and a fake sysfs
/// block directory holding disk 8:0 with partition 8:1.
final class FakeCgroupTree {
    let base: String
    let root: String
    let ownPath = "/system.slice/jobd.service"
    let directories = FakeCgroupDirectories()
    let processID: Int32 = 4242

    var ownDirectory: String { root + ownPath }
    var sysBlock: String { base + "/sys/dev/block" }
    var swapsFile: String { base + "/swaps" }

    init(offeredControllers: [String] = ["cpu", "memory", "io", "pids"]) throws {
        base = NSTemporaryDirectory() + "jobworker-fake-cgroup-\(getpid())-\(UUID().uuidString)"
        root = base + "/cgroup"
        let manager = FileManager.default
        try manager.createDirectory(atPath: root + "/system.slice", withIntermediateDirectories: true)
        try write(offeredControllers.joined(separator: " ") + "\n", to: root + "/cgroup.controllers")
        try write(
            offeredControllers.map { "+" + $0 }.joined(separator: " "),
            to: root + "/system.slice/cgroup.subtree_control")
        try write("", to: root + "/cgroup.procs")
        try write("Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n", to: swapsFile)
        try directories.makeDirectory(ownDirectory)
        try write("\(processID)\n", to: ownDirectory + "/cgroup.procs")

        let devices = base + "/sys/devices/virtual/block/sda"
        try manager.createDirectory(atPath: devices + "/sda1", withIntermediateDirectories: true)
        try manager.createDirectory(atPath: sysBlock, withIntermediateDirectories: true)
        try write("8:0\n", to: devices + "/dev")
        try write("8:1\n", to: devices + "/sda1/dev")
        try write("1\n", to: devices + "/sda1/partition")
        try manager.createSymbolicLink(
            atPath: sysBlock + "/8:0", withDestinationPath: "../../devices/virtual/block/sda")
        try manager.createSymbolicLink(
            atPath: sysBlock + "/8:1", withDestinationPath: "../../devices/virtual/block/sda/sda1")
    }

    func host(procSelfCgroup: String? = nil) -> CgroupHost {
        CgroupHost(
            mountinfo: "", procSelfCgroup: procSelfCgroup ?? "0::\(ownPath)\n", blockDeviceDirectory: sysBlock,
            swapsFile: swapsFile, processID: processID, directories: directories)
    }

    func detect(ioDevice: String? = "8:1", procSelfCgroup: String? = nil) throws -> CgroupManager {
        try CgroupManager.detect(
            subtreeName: "jobworker", root: root, stateDirectory: base, ioDevice: ioDevice,
            host: host(procSelfCgroup: procSelfCgroup))
    }

    func read(_ relativePath: String) throws -> String {
        try String(contentsOfFile: ownDirectory + "/" + relativePath, encoding: .utf8).trimmingWhitespace()
    }

    func write(_ text: String, to path: String) throws {
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
    }

    func remove() {
        try? FileManager.default.removeItem(atPath: base)
    }
}
