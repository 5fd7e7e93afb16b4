import Glibc

/// Resource limits for one job, validated before any cgroup file is written.
///
/// Formats accepted by ``parse(cpu:memory:diskIO:maxPids:cpuCount:)``:
///
/// - CPU: a whole percentage of one CPU followed by `%`, from `1%` to the host's CPU count
///   times 100 (`200%` on 2 CPUs). `150%` is a quota of 1.5 CPUs: the kernel lets the job run
///   150 ms per 100 ms period, summed over all its threads (v2 `cpu.max`, v1 `cpu.cfs_quota_us`).
/// - Memory: a whole number of bytes with an optional suffix, at least ``minimumMemoryBytes``
///   (4M). The limit covers swap too, so the job cannot swap its way past it. On a kernel that
///   does not account swap to cgroups, a memory limit is rejected while swap is active.
/// - Disk I/O: a rate, a whole number of bytes with an optional suffix followed by `/s`, e.g.
///   `10MB/s`. It limits read and write bandwidth separately, each to this rate, on the whole
///   disk behind the state directory (or the configured I/O device).
///   NOTE: on cgroup v1 writes that a job leaves in the page cache are flushed later by kernel
///   threads outside its cgroup, so they escape the limit. Reads, O_DIRECT writes and writes the
///   job flushes itself with fsync(2) are limited. cgroup v2 charges writeback to the job.
/// - Pids: the maximum number of processes and threads the job may have at once. A job that
///   gives none gets ``defaultMaxPids``, so every job has a cap against fork bombs.
///
/// Units: every suffix is a power of 1024, for memory and rates alike. `K`, `KB`, `KiB` all mean
/// 1024 bytes; `M`, `MB`, `MiB` mean 1024², `G`/`GB`/`GiB` 1024³ and `T`/`TB`/`TiB` 1024⁴.
/// A bare number or a `B` suffix is bytes. Suffix letters are case-insensitive, so `10mb/s` is
/// 10 MiB/s. There is no 1000-based form, so the same word never means two sizes.
///
/// The kernel stores memory limits in pages, so a memory limit takes effect rounded down to a
/// multiple of the page size (4 KiB on x86-64).
public struct ResourceLimits: Equatable, Sendable {
    /// CPU quota in percent of one CPU: 150 is 1.5 CPUs. Nil is no quota.
    public var cpuPercent: UInt32?
    /// Memory limit in bytes, swap included. Nil is no limit.
    public var memoryBytes: UInt64?
    /// Read and write bandwidth limit, each in bytes per second. Nil is no limit.
    public var ioBytesPerSecond: UInt64?
    /// Maximum number of tasks (processes and threads) the job may have at once.
    public var maxPids: UInt32

    /// Tasks allowed to a job that gave no max_pids: enough for a build with parallel compilers,
    /// few enough that a fork bomb stops long before it hurts the host.
    public static let defaultMaxPids: UInt32 = 1024
    /// Smallest accepted memory limit, a floor that rejects a slip such as `256` (bytes, meant as
    /// 256M) instead of starting a job that the OOM killer ends at once.
    public static let minimumMemoryBytes: UInt64 = 4 * 1024 * 1024
    /// Largest accepted max_pids, the kernel's PID_MAX_LIMIT on 64-bit hosts.
    public static let maximumPids: UInt32 = 4_194_304
    /// Largest accepted byte count, the kernel's signed 64-bit ceiling for these files.
    public static let maximumBytes = UInt64(Int64.max)

    /// Creates limits from values already in kernel units; use ``parse(cpu:memory:diskIO:maxPids:cpuCount:)``
    /// for user strings.
    public init(
        cpuPercent: UInt32? = nil, memoryBytes: UInt64? = nil, ioBytesPerSecond: UInt64? = nil,
        maxPids: UInt32 = ResourceLimits.defaultMaxPids
    ) {
        self.cpuPercent = cpuPercent
        self.memoryBytes = memoryBytes
        self.ioBytesPerSecond = ioBytesPerSecond
        self.maxPids = maxPids
    }

    /// Parses and validates user limit strings. Nil leaves a field unlimited (pids: the default
    /// cap). An empty string is an error because the caller requested a limit and gave none.
    ///
    /// - Parameter cpuCount: CPUs on the host, the upper bound of the CPU percentage divided by 100.
    /// - Throws: ``LimitError`` naming the first invalid value and the expected form.
    public static func parse(
        cpu: String?, memory: String?, diskIO: String?, maxPids: UInt32?, cpuCount: Int
    ) throws -> ResourceLimits {
        var limits = ResourceLimits()
        if let cpu {
            limits.cpuPercent = try parseCPU(cpu, cpuCount: cpuCount)
        }
        if let memory {
            limits.memoryBytes = try parseMemory(memory)
        }
        if let diskIO {
            limits.ioBytesPerSecond = try parseRate(diskIO)
        }
        if let maxPids {
            limits.maxPids = try validatePids(maxPids)
        }
        return limits
    }

    /// Returns the CPU quota in microseconds per ``cpuPeriodMicroseconds``: 150% is 150000.
    public var cpuQuotaMicroseconds: UInt64? {
        cpuPercent.map { UInt64($0) * ResourceLimits.cpuPeriodMicroseconds / 100 }
    }

    /// CFS period for the CPU quota, the kernel's default of 100 ms.
    public static let cpuPeriodMicroseconds: UInt64 = 100_000

    /// Returns the number of online CPUs (sysconf(_SC_NPROCESSORS_ONLN)), the bound for CPU limits.
    public static func onlineCPUCount() -> Int {
        Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))
    }
}

extension ResourceLimits {
    /// Returns each controller these limits need, with the limit's name for error messages.
    /// pids is always needed because every job gets a pids cap; `ioController` is `blkio` on
    /// cgroup v1 and `io` on v2.
    func requiredControllers(ioController: String) -> [(controller: String, limit: String)] {
        var needed = [(controller: "pids", limit: "max_pids")]
        if cpuPercent != nil {
            needed.append(("cpu", "CPU limit"))
        }
        if memoryBytes != nil {
            needed.append(("memory", "memory limit"))
        }
        if ioBytesPerSecond != nil {
            needed.append((ioController, "disk I/O limit"))
        }
        return needed
    }
}
