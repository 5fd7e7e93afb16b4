import Glibc

/// Reads and writes cgroupfs interface files with the kernel's rules: one write(2) per value,
/// because cgroupfs parses each write on its own, and errors that carry the path and errno.
enum CgroupFiles {
    /// Writes `value` with a single write(2) to an existing file. The file is opened without
    /// O_CREAT because cgroupfs cannot create files, so a missing one fails with ENOENT.
    static func write(_ value: String, to path: String) throws {
        let fd = try retryingEINTR { open(path, O_WRONLY | O_TRUNC | O_CLOEXEC) }
        guard fd >= 0 else {
            throw CgroupError(operation: "write", file: path, value: value, errno: Glibc.errno)
        }
        defer { close(fd) }

        var bytes = Array(value.utf8)
        let written = try retryingEINTR { Glibc.write(fd, &bytes, bytes.count) }
        guard written >= 0 else {
            throw CgroupError(operation: "write", file: path, value: value, errno: Glibc.errno)
        }
        guard written == bytes.count else {
            throw CgroupError(
                operation: "write", file: path, value: value,
                detail: "short write of \(written) of \(bytes.count) bytes")
        }
    }

    /// Returns the whole file as text.
    static func read(_ path: String) throws -> String {
        let fd = try retryingEINTR { open(path, O_RDONLY | O_CLOEXEC) }
        guard fd >= 0 else {
            throw CgroupError(operation: "read", file: path, errno: Glibc.errno)
        }
        defer { close(fd) }

        var contents: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = try retryingEINTR { Glibc.read(fd, &buffer, buffer.count) }
            guard count >= 0 else {
                throw CgroupError(operation: "read", file: path, errno: Glibc.errno)
            }
            if count == 0 {
                break
            }
            contents.append(contentsOf: buffer[0..<count])
        }
        return String(decoding: contents, as: UTF8.self)
    }

    /// Returns the file's first line without surrounding whitespace.
    static func readTrimmed(_ path: String) throws -> String {
        let text = try read(path)
        return String(text.split(separator: "\n", omittingEmptySubsequences: false).first ?? "")
            .trimmingWhitespace()
    }

    /// Returns `key value` lines (cpu.stat, memory.events, memory.oom_control) as a dictionary.
    static func readKeyedValues(_ path: String) throws -> [String: UInt64] {
        var values: [String: UInt64] = [:]
        for line in try read(path).split(separator: "\n") {
            let fields = line.split(separator: " ")
            if fields.count == 2, let value = UInt64(fields[1]) {
                values[String(fields[0])] = value
            }
        }
        return values
    }

    static func exists(_ path: String) -> Bool {
        access(path, F_OK) == 0
    }

    static func isDirectory(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR
    }

    /// Returns the names of the subdirectories of `path`, the child cgroups; sorted.
    static func subdirectories(of path: String) throws -> [String] {
        guard let directory = opendir(path) else {
            throw CgroupError(operation: "opendir", file: path, errno: Glibc.errno)
        }
        defer { closedir(directory) }

        var names: [String] = []
        while let entry = readdir(directory) {
            let name = withUnsafePointer(to: entry.pointee.d_name) { pointer in
                pointer.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
            }
            if name != ".", name != "..", entry.pointee.d_type == UInt8(DT_DIR) {
                names.append(name)
            }
        }
        return names.sorted()
    }

    /// Returns the pids listed in a `cgroup.procs` file.
    static func readPids(_ path: String) throws -> [Int32] {
        try read(path).split(separator: "\n").compactMap { Int32($0) }
    }

    private static func retryingEINTR<T: FixedWidthInteger>(_ body: () -> T) throws -> T {
        while true {
            let result = body()
            if result == -1 && Glibc.errno == EINTR {
                continue
            }
            return result
        }
    }
}

extension StringProtocol {
    func trimmingWhitespace() -> String {
        let start = drop(while: \.isWhitespace)
        var end = start.endIndex
        while end > start.startIndex, start[start.index(before: end)].isWhitespace {
            end = start.index(before: end)
        }
        return String(start[start.startIndex..<end])
    }
}
