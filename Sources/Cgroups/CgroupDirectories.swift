import Glibc

/// Creates and removes cgroup directories. On cgroupfs, mkdir(2) makes the kernel add the
/// interface files, and rmdir(2) removes a cgroup only when it has no tasks and no children.
/// Tests replace it with a fake that does the same in a plain directory.
protocol CgroupDirectories {
    /// Creates one cgroup; throws CgroupError with EEXIST when it exists.
    func makeDirectory(_ path: String) throws
    /// Removes one cgroup; throws CgroupError with EBUSY while tasks remain.
    func removeDirectory(_ path: String) throws
}

/// The real cgroupfs, through mkdir(2) and rmdir(2).
struct KernelCgroupDirectories: CgroupDirectories {
    func makeDirectory(_ path: String) throws {
        guard mkdir(path, 0o755) == 0 else {
            throw CgroupError(operation: "mkdir", file: path, errno: errno)
        }
    }

    func removeDirectory(_ path: String) throws {
        guard rmdir(path) == 0 else {
            throw CgroupError(operation: "rmdir", file: path, errno: errno)
        }
    }
}
