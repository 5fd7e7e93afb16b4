import Glibc

/// Job cgroups on the unified hierarchy (cgroup v2).
///
/// Layout below the process's own cgroup `<own>`:
///
///     <own>/<subtree>/daemon      jobd itself
///     <own>/<subtree>/jobs/<job>  one cgroup per job
///
/// The kernel lets a non-root cgroup enable controllers for its children only while it has no
/// processes of its own (the no-internal-processes rule), so jobd moves into the `daemon` leaf
/// before it enables controllers in `<own>`, `<own>/<subtree>` and `<own>/<subtree>/jobs`.
/// A jobd started again inside `<own>/<subtree>/daemon` keeps that layout instead of nesting.
final class CgroupV2Driver: CgroupDriver {
    let version = CgroupVersion.v2
    /// The cgroup jobd was in when detection ran, with the daemon leaf factored out.
    let ownDirectory: String
    let subtreeDirectory: String
    let jobsDirectory: String
    /// Controllers enabled for job cgroups; a subset of ``usedControllers``.
    let enabledControllers: Set<String>
    private let ioDevice: Result<BlockDevice, CgroupError>
    private let directories: any CgroupDirectories
    private let swapsFile: String

    static let usedControllers = ["cpu", "memory", "io", "pids"]

    var jobsDirectories: [String] { [jobsDirectory] }

    /// Builds the layout and enables every used controller that `<own>/cgroup.controllers`
    /// lists. A missing controller is an error only when a job requests its limit.
    init(
        currentDirectory: String, subtreeName: String, host: CgroupHost,
        ioDevice: Result<BlockDevice, CgroupError>
    ) throws {
        var own = currentDirectory
        let daemonSuffix = "/\(subtreeName)/daemon"
        if own.hasSuffix(daemonSuffix) {
            own.removeLast(daemonSuffix.count)
        }
        ownDirectory = own
        subtreeDirectory = own + "/" + subtreeName
        jobsDirectory = subtreeDirectory + "/jobs"
        directories = host.directories
        swapsFile = host.swapsFile
        self.ioDevice = ioDevice

        let daemonDirectory = subtreeDirectory + "/daemon"
        try Self.makeDirectoryIfMissing(subtreeDirectory, directories: directories)
        try Self.makeDirectoryIfMissing(daemonDirectory, directories: directories)
        if currentDirectory != daemonDirectory {
            try CgroupFiles.write(String(host.processID), to: daemonDirectory + "/cgroup.procs")
        }

        let offered = try CgroupFiles.read(own + "/cgroup.controllers").split(separator: " ").map {
            $0.trimmingWhitespace()
        }
        let available = Self.usedControllers.filter { offered.contains($0) }
        try Self.enableControllers(available, in: own)
        try Self.makeDirectoryIfMissing(jobsDirectory, directories: directories)
        try Self.enableControllers(available, in: subtreeDirectory)
        try Self.enableControllers(available, in: jobsDirectory)
        enabledControllers = Set(available)
    }

    func create(name: String, limits: ResourceLimits) throws {
        try requireControllers(for: limits)
        let device = try limits.ioBytesPerSecond.map { _ in try ioDevice.get() }
        let directory = directory(name: name)
        try directories.makeDirectory(directory)

        do {
            try writeLimits(limits, device: device, in: directory)
        } catch {
            _ = try? removeIfIdle(directory, directories: directories)
            throw error
        }
    }

    func exists(name: String) -> Bool {
        CgroupFiles.isDirectory(directory(name: name))
    }

    func jobNames() throws -> [String] {
        try CgroupFiles.subdirectories(of: jobsDirectory)
    }

    func directory(name: String) -> String {
        jobsDirectory + "/" + name
    }

    func procsFiles(name: String) -> [String] {
        [directory(name: name) + "/cgroup.procs"]
    }

    func members(name: String) throws -> [Int32] {
        try CgroupFiles.readPids(directory(name: name) + "/cgroup.procs")
    }

    /// Reads `populated` from cgroup.events, which counts this cgroup and its descendants.
    func isPopulated(name: String) throws -> Bool {
        let path = directory(name: name) + "/cgroup.events"
        guard let populated = try CgroupFiles.readKeyedValues(path)["populated"] else {
            throw CgroupError(operation: "read", file: path, detail: "no populated field")
        }
        return populated != 0
    }

    /// Writes 1 to cgroup.kill, which SIGKILLs every task of the cgroup and its descendants in
    /// the kernel, so a forking task cannot escape (Linux 5.14).
    func killAll(name: String) throws {
        let path = directory(name: name) + "/cgroup.kill"
        do {
            try CgroupFiles.write("1", to: path)
        } catch let error as CgroupError where error.errno == ENOENT {
            throw CgroupError(
                operation: "write", file: path, value: "1", errno: ENOENT,
                detail: "cgroup.kill needs Linux 5.14 or later")
        }
    }

    func usage(name: String) throws -> ResourceUsage {
        let directory = directory(name: name)
        var usage = ResourceUsage()

        let cpu = try CgroupFiles.readKeyedValues(directory + "/cpu.stat")
        usage.cpuNanoseconds = (cpu["usage_usec"] ?? 0) * 1000

        if enabledControllers.contains("memory") {
            if CgroupFiles.exists(directory + "/memory.peak") {
                usage.memoryPeakBytes = UInt64(try CgroupFiles.readTrimmed(directory + "/memory.peak")) ?? 0
            }
            usage.oomKills = try CgroupFiles.readKeyedValues(directory + "/memory.events")["oom_kill"] ?? 0
        }

        if enabledControllers.contains("io") {
            for line in try CgroupFiles.read(directory + "/io.stat").split(separator: "\n") {
                for field in line.split(separator: " ") {
                    if field.hasPrefix("rbytes="), let value = UInt64(field.dropFirst(7)) {
                        usage.ioReadBytes += value
                    } else if field.hasPrefix("wbytes="), let value = UInt64(field.dropFirst(7)) {
                        usage.ioWriteBytes += value
                    }
                }
            }
        }
        return usage
    }

    func tryRemove(name: String) throws -> Bool {
        try removeIfIdle(directory(name: name), directories: directories)
    }

    // MARK: - Steps

    private func requireControllers(for limits: ResourceLimits) throws {
        for (controller, limit) in limits.requiredControllers(ioController: "io") where !enabledControllers.contains(controller) {
            throw CgroupError(
                operation: "create", file: ownDirectory + "/cgroup.controllers",
                detail: "the \(controller) controller needed for the \(limit) is not available to jobd's cgroup; "
                    + "enable it in the parent's cgroup.subtree_control (systemd: Delegate=yes)")
        }
    }

    private func writeLimits(_ limits: ResourceLimits, device: BlockDevice?, in directory: String) throws {
        if let quota = limits.cpuQuotaMicroseconds {
            try writeVerified("\(quota) \(ResourceLimits.cpuPeriodMicroseconds)", to: directory + "/cpu.max")
        }

        if let bytes = limits.memoryBytes {
            try writeVerified(String(pageAlignedBytes(bytes)), to: directory + "/memory.max")
            // memory.swap.max is missing when the kernel does not account swap (CONFIG_MEMCG_SWAP
            // off or swapaccount=0).
            try limitSwap("0", file: directory + "/memory.swap.max", swapsFile: swapsFile)
        }

        if let rate = limits.ioBytesPerSecond, let device {
            try writeVerified("\(device) rbps=\(rate) wbps=\(rate)", to: directory + "/io.max") { stored in
                let line = stored.split(separator: "\n").first { $0.hasPrefix("\(device) ") } ?? ""
                let fields = line.split(separator: " ")
                return fields.contains("rbps=\(rate)") && fields.contains("wbps=\(rate)")
            }
        }

        try writeVerified(String(limits.maxPids), to: directory + "/pids.max")
    }

    /// Writes all controllers in one write, so the kernel applies them together, and checks that
    /// cgroup.subtree_control lists each; EBUSY means the cgroup still has processes.
    private static func enableControllers(_ controllers: [String], in directory: String) throws {
        guard !controllers.isEmpty else {
            return
        }
        let path = directory + "/cgroup.subtree_control"
        let value = controllers.map { "+" + $0 }.joined(separator: " ")
        do {
            try CgroupFiles.write(value, to: path)
            let stored = try CgroupFiles.read(path)
            let enabled = stored.split(whereSeparator: { $0 == " " || $0 == "\n" }).map {
                $0.hasPrefix("+") ? String($0.dropFirst()) : String($0)
            }
            guard controllers.allSatisfy({ enabled.contains($0) }) else {
                throw CgroupError(
                    operation: "write", file: path, value: value, detail: "read back \"\(stored.trimmingWhitespace())\""
                )
            }
        } catch let error as CgroupError where error.errno == EBUSY {
            throw CgroupError(
                operation: "enable controllers", file: path, value: value, errno: EBUSY,
                detail: "\(directory) still has processes besides jobd, and cgroup v2 enables controllers only "
                    + "in cgroups without processes; start jobd in a cgroup of its own (systemd: a service with "
                    + "Delegate=yes)")
        }
    }

    private static func makeDirectoryIfMissing(_ path: String, directories: any CgroupDirectories) throws {
        do {
            try directories.makeDirectory(path)
        } catch let error as CgroupError where error.errno == EEXIST {
            return
        }
    }
}
