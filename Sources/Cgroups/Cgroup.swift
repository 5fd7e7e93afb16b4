import Glibc

/// One job's cgroup: on v2 a single directory, on v1 one directory per used hierarchy.
///
/// jobd uses it on the reactor thread only. Every method reads or writes cgroupfs
/// synchronously, and cgroupfs serves those from memory without disk I/O. The exceptions are
/// ``remove(timeout:)`` and ``waitUntilEmpty(timeout:)``, which sleep between polls.
public final class Cgroup {
    /// The job cgroup's directory name below the jobs directory.
    public let name: String
    private let driver: any CgroupDriver

    init(name: String, driver: any CgroupDriver) {
        self.name = name
        self.driver = driver
    }

    public var version: CgroupVersion { driver.version }

    /// The job's cgroup directory on v2; on v1 its freezer directory.
    public var path: String { driver.directory(name: name) }

    /// Opens the job's cgroup directory with O_DIRECTORY | O_CLOEXEC, for clone3(2)
    /// CLONE_INTO_CGROUP (v2, Linux 5.7). The caller owns the fd and closes it.
    public func openDirectoryFD() throws -> Int32 {
        let path = driver.directory(name: name)
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else {
            throw CgroupError(operation: "open", file: path, errno: errno)
        }
        return fd
    }

    /// The `cgroup.procs` files a child writes its pid (or "0", meaning the writer) into before
    /// execve, one per hierarchy on v1; on v2 the single file of the job's directory.
    public var procsFiles: [String] { driver.procsFiles(name: name) }

    /// Returns the PIDs of the job's processes (v1: the union over its hierarchies).
    public func members() throws -> [Int32] {
        try driver.members(name: name)
    }

    /// The file whose `populated` field changes when the last task leaves: v2 `cgroup.events`,
    /// whose changes the kernel reports as a file modified event (inotify IN_MODIFY). Nil on v1,
    /// where only polling ``isPopulated()`` works.
    public var eventsFile: String? {
        version == .v2 ? driver.directory(name: name) + "/cgroup.events" : nil
    }

    /// Returns whether any task is left (v2 `cgroup.events` populated; v1 a non-empty member list).
    public func isPopulated() throws -> Bool {
        try driver.isPopulated(name: name)
    }

    /// Sends `signal` to each member through a pidfd, so a recycled PID outside the cgroup is
    /// never signalled. Tasks forked while this runs may miss it; use ``killAll()`` to end a job.
    public func signalAll(_ signal: Int32) throws {
        try signalMembers(signal) { try driver.members(name: name) }
    }

    /// SIGKILLs every task without racing forks: v2 writes `cgroup.kill`; v1 freezes the cgroup,
    /// kills each member and thaws it. Returns once the kills are sent; the tasks leave the
    /// cgroup shortly after (see ``waitUntilEmpty(timeout:)``).
    public func killAll() throws {
        try driver.killAll(name: name)
    }

    /// Blocks, polling every millisecond, until no task is left; false on timeout.
    public func waitUntilEmpty(timeout: Duration) throws -> Bool {
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        while try isPopulated() {
            if clock.now >= deadline {
                return false
            }
            usleep(1000)
        }
        return true
    }

    /// Returns CPU time, peak memory, block I/O bytes and the OOM kill count so far.
    public func usage() throws -> ResourceUsage {
        try driver.usage(name: name)
    }

    /// Removes the cgroup with rmdir(2); false while the kernel reports EBUSY because tasks are
    /// still leaving, so the caller retries later. Removing a cgroup that is gone returns true.
    public func tryRemove() throws -> Bool {
        try driver.tryRemove(name: name)
    }

    /// Retries ``tryRemove()`` every millisecond until it succeeds, for cleanup paths and tests.
    ///
    /// - Throws: CgroupError with EBUSY when the cgroup is still busy after `timeout`.
    public func remove(timeout: Duration) throws {
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        while !(try tryRemove()) {
            if clock.now >= deadline {
                throw CgroupError(
                    operation: "rmdir", file: path, errno: EBUSY,
                    detail: "tasks still present after \(timeout); kill them with killAll first")
            }
            usleep(1000)
        }
    }
}
