import Glibc

/// The procfs and sysfs inputs of detection, replaced by fake contents and a temporary
/// directory tree in tests.
struct CgroupHost {
    /// Contents of /proc/self/mountinfo, where the cgroup filesystems are mounted.
    var mountinfo: String
    /// Contents of /proc/self/cgroup, the process's own cgroup in each hierarchy.
    var procSelfCgroup: String
    /// sysfs directory with one `MAJ:MIN` link per block device.
    var blockDeviceDirectory = "/sys/dev/block"
    /// The list of active swap areas (proc(5)), read when the kernel does not account swap.
    var swapsFile = "/proc/swaps"
    /// The pid detection moves into the daemon leaf on v2.
    var processID: Int32 = getpid()
    var directories: any CgroupDirectories = KernelCgroupDirectories()

    /// Reads the running process's view from procfs.
    static func current() throws -> CgroupHost {
        CgroupHost(
            mountinfo: try CgroupFiles.read("/proc/self/mountinfo"),
            procSelfCgroup: try CgroupFiles.read("/proc/self/cgroup"))
    }
}

/// One line of /proc/self/cgroup: `hierarchy-id:controller-list:path`, with an empty controller
/// list and id 0 for the v2 hierarchy (cgroups(7)).
struct ProcCgroupEntry: Equatable {
    var hierarchyID: Int
    var controllers: [String]
    var path: String

    static func parse(_ text: String) -> [ProcCgroupEntry] {
        text.split(separator: "\n").compactMap { line in
            let fields = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
            guard fields.count == 3, let id = Int(fields[0]) else {
                return nil
            }
            let controllers = fields[1].split(separator: ",").map(String.init)
            return ProcCgroupEntry(hierarchyID: id, controllers: controllers, path: String(fields[2]))
        }
    }
}

/// A cgroup filesystem from /proc/self/mountinfo (proc(5)): where it is mounted, which part of
/// the hierarchy the mount shows, and for v1 the controllers bound to it.
struct CgroupMount: Equatable {
    var mountPoint: String
    /// The hierarchy path shown at the mount point; "/" unless a container bind-mounted a subtree.
    var root: String
    var isV2: Bool
    /// v1 controllers from the super options, e.g. ["cpu"]; empty for v2.
    var controllers: [String]

    static let v1Controllers: Set<String> = [
        "cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "net_cls", "blkio", "perf_event",
        "net_prio", "hugetlb", "pids", "rdma", "misc",
    ]

    static func parse(mountinfo: String) -> [CgroupMount] {
        mountinfo.split(separator: "\n").compactMap { line in
            let fields = line.split(separator: " ").map(String.init)
            guard let separator = fields.firstIndex(of: "-"), separator >= 6, fields.count >= separator + 4 else {
                return nil
            }
            let fsType = fields[separator + 1]
            guard fsType == "cgroup" || fsType == "cgroup2" else {
                return nil
            }
            let superOptions = fields[separator + 3].split(separator: ",").map(String.init)
            return CgroupMount(
                mountPoint: unescapeOctal(fields[4]), root: unescapeOctal(fields[3]), isV2: fsType == "cgroup2",
                controllers: superOptions.filter { v1Controllers.contains($0) })
        }
    }

    /// Returns the directory of hierarchy path `path` below this mount, or nil when the mount
    /// does not show that part of the hierarchy.
    func directory(for path: String) -> String? {
        if root == "/" {
            return path == "/" ? mountPoint : mountPoint + path
        }
        if path == root {
            return mountPoint
        }
        if path.hasPrefix(root + "/") {
            return mountPoint + path.dropFirst(root.count)
        }
        return nil
    }

    /// Decodes the `\040`-style escapes mountinfo uses for spaces, tabs, newlines and backslashes.
    private static func unescapeOctal(_ field: String) -> String {
        guard field.contains("\\") else {
            return field
        }
        var bytes: [UInt8] = []
        let source = Array(field.utf8)
        var index = 0
        while index < source.count {
            if source[index] == UInt8(ascii: "\\"), index + 3 < source.count,
                let value = UInt8(String(decoding: source[index + 1...index + 3], as: UTF8.self), radix: 8)
            {
                bytes.append(value)
                index += 4
            } else {
                bytes.append(source[index])
                index += 1
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
