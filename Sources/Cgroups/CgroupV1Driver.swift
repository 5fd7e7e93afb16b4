import Glibc

/// Job cgroups on cgroup v1, where each controller (or group of co-mounted controllers) has a
/// hierarchy of its own. A job has one directory per used hierarchy, `<own>/<subtree>/<job>`,
/// where `<own>` is the process's own cgroup in that hierarchy. jobd stays where it is because
/// v1 has no rule against processes in inner cgroups.
final class CgroupV1Driver: CgroupDriver {
    /// One mounted hierarchy: its controllers (e.g. ["cpu"] or ["cpu", "cpuacct"]) and the
    /// directory holding the job cgroups.
    struct Hierarchy {
        var controllers: [String]
        var jobsDirectory: String
    }

    let version = CgroupVersion.v1
    let hierarchies: [Hierarchy]
    private let ioDevice: Result<BlockDevice, CgroupError>
    private let directories: any CgroupDirectories
    private let swapsFile: String

    /// Controllers a job cgroup joins. cpuset and devices stay out because jobs need no settings
    /// from them, and a new cpuset cgroup accepts no task until cpus and mems are copied in.
    static let usedControllers = ["cpu", "cpuacct", "memory", "blkio", "pids", "freezer"]
    /// How long killAll waits for freezer.state to reach FROZEN before it kills anyway.
    static let freezeTimeout: Duration = .seconds(2)

    var jobsDirectories: [String] { hierarchies.map(\.jobsDirectory) }

    /// Creates `<own>/<subtree>` in every hierarchy given; `own` maps each hierarchy's
    /// controllers to the process's own cgroup directory in it.
    ///
    /// - Throws: CgroupError when no freezer hierarchy is mounted, because killing a job's tasks
    ///   without racing its forks needs it.
    init(
        own: [(controllers: [String], directory: String)], subtreeName: String, host: CgroupHost,
        ioDevice: Result<BlockDevice, CgroupError>
    ) throws {
        hierarchies = own.map {
            Hierarchy(controllers: $0.controllers, jobsDirectory: $0.directory + "/" + subtreeName)
        }
        directories = host.directories
        swapsFile = host.swapsFile
        self.ioDevice = ioDevice

        guard hierarchies.contains(where: { $0.controllers.contains("freezer") }) else {
            throw CgroupError(
                operation: "detect", file: "/proc/self/mountinfo",
                detail: "no cgroup v1 freezer hierarchy is mounted; mount one at /sys/fs/cgroup/freezer")
        }
        for hierarchy in hierarchies {
            do {
                try directories.makeDirectory(hierarchy.jobsDirectory)
            } catch let error as CgroupError where error.errno == EEXIST {
                continue
            }
        }
    }

    func create(name: String, limits: ResourceLimits) throws {
        try requireControllers(for: limits)
        let device = try limits.ioBytesPerSecond.map { _ in try ioDevice.get() }

        var created: [String] = []
        do {
            for hierarchy in hierarchies {
                let directory = hierarchy.jobsDirectory + "/" + name
                try directories.makeDirectory(directory)
                created.append(directory)
            }
            try writeLimits(limits, device: device, name: name)
        } catch {
            for directory in created.reversed() {
                _ = try? removeIfIdle(directory, directories: directories)
            }
            throw error
        }
    }

    func exists(name: String) -> Bool {
        hierarchies.contains { CgroupFiles.isDirectory($0.jobsDirectory + "/" + name) }
    }

    func jobNames() throws -> [String] {
        var names = Set<String>()
        for hierarchy in hierarchies {
            names.formUnion(try CgroupFiles.subdirectories(of: hierarchy.jobsDirectory))
        }
        return names.sorted()
    }

    func directory(name: String) -> String {
        directory(of: "freezer", name: name)!
    }

    func procsFiles(name: String) -> [String] {
        hierarchies.map { $0.jobsDirectory + "/" + name + "/cgroup.procs" }
    }

    /// Returns the union of every hierarchy's member list: a child that failed half-way through
    /// joining is still found.
    func members(name: String) throws -> [Int32] {
        var pids = Set<Int32>()
        for file in procsFiles(name: name) where CgroupFiles.exists(file) {
            pids.formUnion(try CgroupFiles.readPids(file))
        }
        return pids.sorted()
    }

    func isPopulated(name: String) throws -> Bool {
        !(try members(name: name)).isEmpty
    }

    /// Freezes the job, SIGKILLs each member read while frozen, then thaws so the kills take
    /// effect. A frozen task cannot fork, so the member list is complete. If freezing does not
    /// finish in time (a task in uninterruptible sleep), the kill goes ahead anyway and a second
    /// round catches tasks forked meanwhile.
    func killAll(name: String) throws {
        let state = directory(name: name) + "/freezer.state"
        for _ in 0..<2 {
            try CgroupFiles.write("FROZEN", to: state)
            let frozen = try waitForFreezer(state)
            do {
                try signalMembers(SIGKILL) { try members(name: name) }
            } catch {
                try? CgroupFiles.write("THAWED", to: state)
                throw error
            }
            try CgroupFiles.write("THAWED", to: state)
            if frozen {
                return
            }
        }
    }

    func usage(name: String) throws -> ResourceUsage {
        var usage = ResourceUsage()

        if let directory = directory(of: "cpuacct", name: name) {
            usage.cpuNanoseconds = UInt64(try CgroupFiles.readTrimmed(directory + "/cpuacct.usage")) ?? 0
        }

        if let directory = directory(of: "memory", name: name) {
            usage.memoryPeakBytes = UInt64(try CgroupFiles.readTrimmed(directory + "/memory.max_usage_in_bytes")) ?? 0
            // oom_kill appeared in memory.oom_control in Linux 4.13.
            usage.oomKills = try CgroupFiles.readKeyedValues(directory + "/memory.oom_control")["oom_kill"] ?? 0
        }

        if let directory = directory(of: "blkio", name: name) {
            for line in try CgroupFiles.read(directory + "/blkio.throttle.io_service_bytes").split(separator: "\n") {
                let fields = line.split(separator: " ")
                guard fields.count == 3, let value = UInt64(fields[2]) else {
                    continue
                }
                if fields[1] == "Read" {
                    usage.ioReadBytes += value
                } else if fields[1] == "Write" {
                    usage.ioWriteBytes += value
                }
            }
        }
        return usage
    }

    /// Removes the job's directory in every hierarchy; true only when all are gone. The freezer
    /// directory goes last, and only once the others are gone, so that ``killAll(name:)`` still
    /// works while any part of the job remains.
    func tryRemove(name: String) throws -> Bool {
        var removed = true
        for hierarchy in hierarchies where !hierarchy.controllers.contains("freezer") {
            if !(try removeIfIdle(hierarchy.jobsDirectory + "/" + name, directories: directories)) {
                removed = false
            }
        }
        guard removed else {
            return false
        }
        return try removeIfIdle(directory(name: name), directories: directories)
    }

    // MARK: - Steps

    private func directory(of controller: String, name: String) -> String? {
        hierarchies.first { $0.controllers.contains(controller) }.map { $0.jobsDirectory + "/" + name }
    }

    private func requireControllers(for limits: ResourceLimits) throws {
        for (controller, limit) in limits.requiredControllers(ioController: "blkio") where directory(of: controller, name: "") == nil {
            throw CgroupError(
                operation: "create", file: "/proc/self/mountinfo",
                detail: "the \(controller) controller needed for the \(limit) is not mounted; "
                    + "mount its cgroup v1 hierarchy under /sys/fs/cgroup")
        }
    }

    private func writeLimits(_ limits: ResourceLimits, device: BlockDevice?, name: String) throws {
        if let quota = limits.cpuQuotaMicroseconds, let directory = directory(of: "cpu", name: name) {
            try writeVerified(String(ResourceLimits.cpuPeriodMicroseconds), to: directory + "/cpu.cfs_period_us")
            try writeVerified(String(quota), to: directory + "/cpu.cfs_quota_us")
        }

        if let bytes = limits.memoryBytes, let directory = directory(of: "memory", name: name) {
            let value = String(pageAlignedBytes(bytes))
            try writeVerified(value, to: directory + "/memory.limit_in_bytes")
            // The memsw limit caps memory plus swap, so equal limits leave no room for swap. It must
            // be written after memory.limit_in_bytes because the kernel keeps memsw >= memory.
            try limitSwap(value, file: directory + "/memory.memsw.limit_in_bytes", swapsFile: swapsFile)
        }

        if let rate = limits.ioBytesPerSecond, let device, let directory = directory(of: "blkio", name: name) {
            for file in ["blkio.throttle.read_bps_device", "blkio.throttle.write_bps_device"] {
                try writeVerified("\(device) \(rate)", to: directory + "/" + file) { stored in
                    stored.split(separator: "\n").contains { $0 == "\(device) \(rate)" }
                }
            }
        }

        if let directory = directory(of: "pids", name: name) {
            try writeVerified(String(limits.maxPids), to: directory + "/pids.max")
        }
    }

    /// Polls freezer.state until FROZEN; false when it is still FREEZING after the timeout.
    private func waitForFreezer(_ path: String) throws -> Bool {
        let clock = ContinuousClock()
        let deadline = clock.now + Self.freezeTimeout
        while try CgroupFiles.readTrimmed(path) != "FROZEN" {
            if clock.now >= deadline {
                return false
            }
            usleep(1000)
        }
        return true
    }
}
