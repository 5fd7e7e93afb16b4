import Glibc

/// The version-specific half of the cgroup operations; ``Cgroup`` and ``CgroupManager`` hold
/// one and add what both versions share. Names are job cgroup names below the jobs directory.
protocol CgroupDriver: AnyObject {
    var version: CgroupVersion { get }
    /// Directories whose children are job cgroups (one per v1 hierarchy).
    var jobsDirectories: [String] { get }

    /// Creates the job cgroup, writes and reads back every limit; removes what it created
    /// before throwing.
    func create(name: String, limits: ResourceLimits) throws
    func exists(name: String) -> Bool
    func jobNames() throws -> [String]

    /// v2: the job's directory; v1: its freezer directory.
    func directory(name: String) -> String
    func procsFiles(name: String) -> [String]
    func members(name: String) throws -> [Int32]
    func isPopulated(name: String) throws -> Bool
    func killAll(name: String) throws
    func usage(name: String) throws -> ResourceUsage
    /// Removes the job cgroup; false while the kernel reports EBUSY.
    func tryRemove(name: String) throws -> Bool
}

extension CgroupDriver {
    /// Writes `value`, reads the file back and throws unless `matches` accepts what the kernel
    /// stored; kernels clamp or round some values without failing the write.
    func writeVerified(_ value: String, to path: String, matches: (String) -> Bool) throws {
        try CgroupFiles.write(value, to: path)
        let stored = try CgroupFiles.read(path).trimmingWhitespace()
        guard matches(stored) else {
            throw CgroupError(
                operation: "write", file: path, value: value, detail: "read back \"\(stored)\"")
        }
    }

    func writeVerified(_ value: String, to path: String) throws {
        try writeVerified(value, to: path) { $0 == value }
    }

    /// Removes one directory; true when it is gone (ENOENT counts), false on EBUSY.
    func removeIfIdle(_ path: String, directories: any CgroupDirectories) throws -> Bool {
        do {
            try directories.removeDirectory(path)
            return true
        } catch let error as CgroupError where error.errno == ENOENT {
            return true
        } catch let error as CgroupError where error.errno == EBUSY {
            return false
        }
    }
}

extension CgroupDriver {
    /// Writes `value` to the swap limit `file`. When the file is missing because the kernel does
    /// not account swap to cgroups, the memory limit still bounds the job as long as no swap is
    /// active, so that case passes and active swap is an error.
    func limitSwap(_ value: String, file: String, swapsFile: String) throws {
        if CgroupFiles.exists(file) {
            try writeVerified(value, to: file)
            return
        }
        let areas = try CgroupFiles.read(swapsFile).split(separator: "\n").dropFirst()
        if let area = areas.first?.split(whereSeparator: { $0 == " " || $0 == "\t" }).first {
            throw CgroupError(
                operation: "limit swap", file: file, errno: ENOENT,
                detail: "the kernel does not account swap to cgroups, but swap is active on \(area), so the job "
                    + "could swap past its memory limit; boot with swapaccount=1 or turn swap off (swapoff -a)")
        }
    }
}

/// Rounds a memory limit down to whole pages, as the kernel stores it, so that the read-back
/// of the written value compares exactly.
func pageAlignedBytes(_ bytes: UInt64) -> UInt64 {
    let pageSize = UInt64(sysconf(Int32(_SC_PAGESIZE)))
    return bytes / pageSize * pageSize
}
