import GRPCLite

/// `jobworker.v1.ResourceConfig`: the limits a client asks for, as the user typed them.
///
/// An empty string or a `maxPids` of 0 means no limit for that resource (for pids, the
/// server's default cap). The server parses and validates the strings.
public struct Jobworker_V1_ResourceConfig: ProtobufMessage, Equatable, Sendable {
    /// CPU as a percentage of one CPU, e.g. "50%" or "150%".
    public var cpuQuota = ""
    /// Memory in bytes with an optional K, M, G or T suffix, e.g. "256M".
    public var memoryLimit = ""
    /// Disk read and write rate, e.g. "10MB/s".
    public var diskIO = ""
    public var maxPids: UInt32 = 0

    public init() {}

    public init(cpuQuota: String = "", memoryLimit: String = "", diskIO: String = "", maxPids: UInt32 = 0) {
        self.cpuQuota = cpuQuota
        self.memoryLimit = memoryLimit
        self.diskIO = diskIO
        self.maxPids = maxPids
    }

    public mutating func merge(from reader: inout ProtobufReader) throws {
        while let field = try reader.nextField() {
            switch field {
            case 1: cpuQuota = try reader.readString()
            case 2: memoryLimit = try reader.readString()
            case 3: diskIO = try reader.readString()
            case 4: maxPids = try reader.readUInt32()
            default: try reader.skipField()
            }
        }
    }

    public func encode(to writer: inout ProtobufWriter) {
        writer.writeString(cpuQuota, field: 1)
        writer.writeString(memoryLimit, field: 2)
        writer.writeString(diskIO, field: 3)
        writer.writeUInt32(maxPids, field: 4)
    }
}

/// `jobworker.v1.ResourceUsage`: what a job's cgroup has used, from its accounting files.
public struct Jobworker_V1_ResourceUsage: ProtobufMessage, Equatable, Sendable {
    public var cpuTimeNanoseconds: UInt64 = 0
    public var memoryPeakBytes: UInt64 = 0
    public var ioReadBytes: UInt64 = 0
    public var ioWriteBytes: UInt64 = 0
    public var oomKillCount: UInt64 = 0

    public init() {}

    public init(
        cpuTimeNanoseconds: UInt64 = 0, memoryPeakBytes: UInt64 = 0, ioReadBytes: UInt64 = 0,
        ioWriteBytes: UInt64 = 0, oomKillCount: UInt64 = 0
    ) {
        self.cpuTimeNanoseconds = cpuTimeNanoseconds
        self.memoryPeakBytes = memoryPeakBytes
        self.ioReadBytes = ioReadBytes
        self.ioWriteBytes = ioWriteBytes
        self.oomKillCount = oomKillCount
    }

    public mutating func merge(from reader: inout ProtobufReader) throws {
        while let field = try reader.nextField() {
            switch field {
            case 1: cpuTimeNanoseconds = try reader.readUInt64()
            case 2: memoryPeakBytes = try reader.readUInt64()
            case 3: ioReadBytes = try reader.readUInt64()
            case 4: ioWriteBytes = try reader.readUInt64()
            case 5: oomKillCount = try reader.readUInt64()
            default: try reader.skipField()
            }
        }
    }

    public func encode(to writer: inout ProtobufWriter) {
        writer.writeUInt64(cpuTimeNanoseconds, field: 1)
        writer.writeUInt64(memoryPeakBytes, field: 2)
        writer.writeUInt64(ioReadBytes, field: 3)
        writer.writeUInt64(ioWriteBytes, field: 4)
        writer.writeUInt64(oomKillCount, field: 5)
    }
}
