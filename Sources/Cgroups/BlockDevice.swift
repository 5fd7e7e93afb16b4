import Glibc

/// A whole block device, the unit the kernel throttles: v2 `io.max` and v1 `blkio.throttle.*`
/// reject partitions and devices without a request queue.
struct BlockDevice: Equatable, CustomStringConvertible {
    var major: UInt32
    var minor: UInt32

    init(major: UInt32, minor: UInt32) {
        self.major = major
        self.minor = minor
    }

    /// Splits a dev_t the way glibc's major(3) and minor(3) do, which Swift cannot import
    /// because they are macros.
    init(encoded device: dev_t) {
        let value = UInt64(device)
        major = UInt32(truncatingIfNeeded: ((value >> 8) & 0xfff) | ((value >> 32) & ~0xfff))
        minor = UInt32(truncatingIfNeeded: (value & 0xff) | ((value >> 12) & ~0xff))
    }

    /// `MAJ:MIN`, the device key in cgroup I/O files.
    var description: String { "\(major):\(minor)" }

    /// Resolves the disk to throttle: `configured` ("MAJ:MIN" or a /dev path) when given, else
    /// the device that contains `stateDirectory` (stat(2) st_dev). A partition resolves to its
    /// parent disk through sysfs `/sys/dev/block/MAJ:MIN`.
    ///
    /// - Throws: CgroupError when the device is not a block device sysfs knows, as for tmpfs,
    ///   overlayfs and other filesystems without a disk of their own.
    static func resolve(stateDirectory: String, configured: String?, sysBlock: String) throws -> BlockDevice {
        let device: BlockDevice
        let source: String
        if let configured {
            device = try parseConfigured(configured)
            source = "I/O device \(configured)"
        } else {
            var info = stat()
            guard stat(stateDirectory, &info) == 0 else {
                throw CgroupError(operation: "stat", file: stateDirectory, errno: errno)
            }
            device = BlockDevice(encoded: info.st_dev)
            source = "state directory \(stateDirectory) (device \(device))"
        }
        return try device.wholeDisk(sysBlock: sysBlock, source: source)
    }

    private static func parseConfigured(_ text: String) throws -> BlockDevice {
        let parts = text.split(separator: ":")
        if parts.count == 2, let major = UInt32(parts[0]), let minor = UInt32(parts[1]) {
            return BlockDevice(major: major, minor: minor)
        }

        var info = stat()
        guard stat(text, &info) == 0 else {
            throw CgroupError(
                operation: "stat", file: text, errno: errno,
                detail: "expected the I/O device as MAJ:MIN or a /dev path, e.g. /dev/vda")
        }
        guard (info.st_mode & S_IFMT) == S_IFBLK else {
            throw CgroupError(
                operation: "resolve I/O device", file: text,
                detail: "not a block device; expected MAJ:MIN or a /dev path, e.g. /dev/vda")
        }
        return BlockDevice(encoded: info.st_rdev)
    }

    /// Returns the disk itself, or the disk a partition belongs to (sysfs puts a partition's
    /// directory inside its disk's and gives it a `partition` file).
    private func wholeDisk(sysBlock: String, source: String) throws -> BlockDevice {
        let link = "\(sysBlock)/\(self)"
        guard let resolved = realpath(link, nil) else {
            throw CgroupError(
                operation: "resolve I/O device", file: link, errno: errno,
                detail: "\(source) is not a block device, as with tmpfs or overlay, so its I/O cannot be "
                    + "throttled; configure the disk to throttle as the I/O device")
        }
        let directory = String(cString: resolved)
        free(resolved)

        guard CgroupFiles.exists(directory + "/partition") else {
            return self
        }
        let parentDev = directory.split(separator: "/").dropLast().joined(separator: "/")
        let text = try CgroupFiles.readTrimmed("/" + parentDev + "/dev")
        let parts = text.split(separator: ":")
        guard parts.count == 2, let major = UInt32(parts[0]), let minor = UInt32(parts[1]) else {
            throw CgroupError(
                operation: "read", file: "/\(parentDev)/dev", detail: "expected MAJ:MIN, read \"\(text)\"")
        }
        return BlockDevice(major: major, minor: minor)
    }
}
