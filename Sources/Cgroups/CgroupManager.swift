import Glibc

/// Finds jobd's own cgroup, creates the jobs subtree below it and creates job cgroups there.
///
/// Every directory it creates is below the process's own cgroup as /proc/self/cgroup reports
/// it, inside a subtree named `subtreeName`; it never creates cgroups elsewhere.
public final class CgroupManager {
    private let driver: any CgroupDriver
    private let lockFD: Int32

    init(driver: any CgroupDriver) throws {
        self.driver = driver
        lockFD = try Self.lockSubtree(driver.jobsDirectories[0])
    }

    deinit {
        Glibc.close(lockFD)
    }

    /// Takes an exclusive flock(2) on the jobs directory for the manager's lifetime. Two
    /// daemons sharing a subtree would each take the other's job cgroups for leftovers of a
    /// crash and kill them, so the second one fails instead.
    private static func lockSubtree(_ directory: String) throws -> Int32 {
        let fd = Glibc.open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else {
            throw CgroupError(operation: "open", file: directory, errno: errno)
        }
        guard flock(fd, LOCK_EX | LOCK_NB) != 0 else { return fd }

        let code = errno
        Glibc.close(fd)
        if code == EWOULDBLOCK {
            throw CgroupError(
                operation: CgroupError.lockOperation, file: directory,
                detail: "another process, usually another jobd, uses this cgroup subtree; give each jobd its own "
                    + "--cgroup-root")
        }
        throw CgroupError(operation: CgroupError.lockOperation, file: directory, errno: code)
    }

    public var version: CgroupVersion { driver.version }

    /// Removes the jobs subtree's directories that no longer hold a job cgroup (rmdir(2)), so a
    /// daemon that stops cleanly leaves nothing in the cgroup hierarchy. A directory that still
    /// holds jobs (EBUSY, ENOTEMPTY) stays for the next start's recovery. Returns the failures
    /// of any other kind, for the caller to log. On v2 the daemon's own leaf stays, since the
    /// daemon is still in it.
    public func removeEmptySubtree() -> [String] {
        var failures: [String] = []
        for directory in jobsDirectories where rmdir(directory) != 0 {
            let code = errno
            if code == ENOENT || code == EBUSY || code == ENOTEMPTY { continue }
            failures.append("\(CgroupError(operation: "rmdir", file: directory, errno: code))")
        }
        return failures
    }

    /// Directories that hold the job cgroups: one on v2, one per used hierarchy on v1.
    public var jobsDirectories: [String] { driver.jobsDirectories }

    /// Detects cgroup v2 or v1 and prepares the jobs subtree below the process's own cgroup.
    ///
    /// - Parameters:
    ///   - root: where the cgroup filesystems are; nil reads the mounts from
    ///     /proc/self/mountinfo. A directory with `cgroup.controllers` is taken as a v2 mount,
    ///     any other as the parent of v1 hierarchies named after their controllers
    ///     (`cpu`, `cpu,cpuacct`, ...), as under /sys/fs/cgroup.
    ///   - stateDirectory: I/O limits apply to the disk holding it unless `ioDevice` is set.
    ///   - ioDevice: the disk to throttle, as "MAJ:MIN" or a /dev path.
    /// - Throws: CgroupError when no usable hierarchy is found or the subtree cannot be set up.
    ///   A disk that cannot be throttled is reported later, by ``create(name:limits:)`` for a
    ///   job with a disk I/O limit.
    public static func detect(
        subtreeName: String = "jobworker", root: String? = nil, stateDirectory: String, ioDevice: String?
    ) throws -> CgroupManager {
        try detect(
            subtreeName: subtreeName, root: root, stateDirectory: stateDirectory, ioDevice: ioDevice,
            host: try CgroupHost.current())
    }

    static func detect(
        subtreeName: String, root: String?, stateDirectory: String, ioDevice: String?, host: CgroupHost
    ) throws -> CgroupManager {
        try validate(name: subtreeName, in: root ?? "/sys/fs/cgroup")
        let device = Result {
            try BlockDevice.resolve(
                stateDirectory: stateDirectory, configured: ioDevice, sysBlock: host.blockDeviceDirectory)
        }.mapError { error in
            (error as? CgroupError)
                ?? CgroupError(operation: "resolve I/O device", file: stateDirectory, detail: "\(error)")
        }

        let entries = ProcCgroupEntry.parse(host.procSelfCgroup)
        let mounts = root.map { mountsBelow(root: $0) } ?? CgroupMount.parse(mountinfo: host.mountinfo)

        let v1 = mounts.filter { !$0.isV2 && $0.controllers.contains { CgroupV1Driver.usedControllers.contains($0) } }
        if !v1.isEmpty {
            var own: [(controllers: [String], directory: String)] = []
            // A hierarchy mounted twice (a bind mount) is used once.
            for mount in v1 where !own.contains(where: { $0.controllers == mount.controllers }) {
                guard let entry = entries.first(where: { $0.controllers.contains(mount.controllers[0]) }),
                    let directory = mount.directory(for: entry.path)
                else {
                    continue
                }
                own.append((mount.controllers, directory))
            }
            return try CgroupManager(
                driver: try CgroupV1Driver(own: own, subtreeName: subtreeName, host: host, ioDevice: device))
        }

        guard let mount = mounts.first(where: \.isV2) else {
            throw CgroupError(
                operation: "detect", file: root ?? "/proc/self/mountinfo", detail: "no cgroup filesystem is mounted")
        }
        guard let entry = entries.first(where: { $0.hierarchyID == 0 }),
            let directory = mount.directory(for: entry.path)
        else {
            throw CgroupError(
                operation: "detect", file: "/proc/self/cgroup",
                detail: "the process's v2 cgroup is not visible below \(mount.mountPoint)")
        }
        return try CgroupManager(
            driver: try CgroupV2Driver(
                currentDirectory: directory, subtreeName: subtreeName, host: host, ioDevice: device))
    }

    /// Creates the job cgroup `name`, writes each limit and reads it back.
    ///
    /// - Throws: CgroupError naming the file, the value written and errno; nothing created is
    ///   left behind.
    public func create(name: String, limits: ResourceLimits) throws -> Cgroup {
        try Self.validate(name: name, in: jobsDirectories[0])
        try driver.create(name: name, limits: limits)
        return Cgroup(name: name, driver: driver)
    }

    /// Returns an existing job cgroup, e.g. one left by a previous run, or nil.
    public func open(name: String) -> Cgroup? {
        guard (try? Self.validate(name: name, in: "")) != nil, driver.exists(name: name) else {
            return nil
        }
        return Cgroup(name: name, driver: driver)
    }

    /// Returns the names of the job cgroups that exist now, sorted.
    public func listJobCgroups() throws -> [String] {
        try driver.jobNames()
    }

    /// Accepts names that are one path component of letters, digits, `-`, `_` and `.`, so a
    /// name can never point outside the jobs directory or at a cgroup interface file.
    private static func validate(name: String, in directory: String) throws {
        let allowed = name.utf8.allSatisfy { byte in
            (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z"))
                || (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z"))
                || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9"))
                || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "_") || byte == UInt8(ascii: ".")
        }
        guard allowed, !name.isEmpty, name.utf8.count <= 200, !name.hasPrefix(".") else {
            throw CgroupError(
                operation: "create", file: directory + "/" + name,
                detail:
                    "invalid cgroup name \"\(name)\": expected letters, digits, '-', '_' or '.', not starting with '.'")
        }
    }

    /// Treats `root` as a cgroupfs layout: a v2 mount when it has `cgroup.controllers`, else a
    /// directory of v1 hierarchies named after their comma-separated controllers.
    private static func mountsBelow(root: String) -> [CgroupMount] {
        if CgroupFiles.exists(root + "/cgroup.controllers") {
            return [CgroupMount(mountPoint: root, root: "/", isV2: true, controllers: [])]
        }
        let names = (try? CgroupFiles.subdirectories(of: root)) ?? []
        return names.map { name in
            let controllers = name.split(separator: ",").map(String.init).filter {
                CgroupMount.v1Controllers.contains($0)
            }
            return CgroupMount(mountPoint: root + "/" + name, root: "/", isV2: false, controllers: controllers)
        }
    }
}
