/// Resources a job cgroup has used since it was created.
public struct ResourceUsage: Equatable, Sendable {
    /// CPU time of all tasks, user and system (v2 `cpu.stat` usage_usec, v1 `cpuacct.usage`).
    public var cpuNanoseconds: UInt64
    /// Highest memory charge (v2 `memory.peak`, Linux 5.19; v1 `memory.max_usage_in_bytes`).
    /// 0 on v2 kernels without `memory.peak`.
    public var memoryPeakBytes: UInt64
    /// Bytes read from block devices (v2 `io.stat` rbytes, v1 `blkio.throttle.io_service_bytes`).
    public var ioReadBytes: UInt64
    /// Bytes written to block devices (v2 `io.stat` wbytes, v1 `blkio.throttle.io_service_bytes`).
    public var ioWriteBytes: UInt64
    /// Processes the kernel OOM killer killed (v2 `memory.events` oom_kill, v1 `memory.oom_control`).
    public var oomKills: UInt64

    public init(
        cpuNanoseconds: UInt64 = 0, memoryPeakBytes: UInt64 = 0, ioReadBytes: UInt64 = 0,
        ioWriteBytes: UInt64 = 0, oomKills: UInt64 = 0
    ) {
        self.cpuNanoseconds = cpuNanoseconds
        self.memoryPeakBytes = memoryPeakBytes
        self.ioReadBytes = ioReadBytes
        self.ioWriteBytes = ioWriteBytes
        self.oomKills = oomKills
    }
}
