import GRPCLite

/// `jobworker.v1.JobStatus`: one job's state, outcome and accounting.
public struct Jobworker_V1_JobStatus: ProtobufMessage, Equatable, Sendable {
    public var jobID = ""
    public var state = Jobworker_V1_JobState.unspecified
    /// The leader's exit status when it exited on its own, else 0.
    public var exitCode: Int32 = 0
    /// The signal number that killed the leader, 0 if none.
    public var signal: Int32 = 0
    /// True when the kernel's OOM killer killed any process of the job's cgroup.
    public var oomKilled = false
    /// The common name of the client certificate that started the job.
    public var owner = ""
    public var command = ""
    public var args: [String] = []
    /// Unix time in nanoseconds.
    public var startedAt: Int64 = 0
    /// Unix time in nanoseconds, or 0 while the job runs.
    public var endedAt: Int64 = 0
    public var resources: Jobworker_V1_ResourceConfig?
    public var usage: Jobworker_V1_ResourceUsage?
    /// A human-readable reason the job ended, e.g. "killed by signal 9".
    public var exitReason = ""
    public var workingDirectory = ""

    public init() {}

    public mutating func merge(from reader: inout ProtobufReader) throws {
        while let field = try reader.nextField() {
            switch field {
            case 1: jobID = try reader.readString()
            case 2: state = try reader.readEnum()
            case 3: exitCode = try reader.readInt32()
            case 4: signal = try reader.readInt32()
            case 5: oomKilled = try reader.readBool()
            case 6: owner = try reader.readString()
            case 7: command = try reader.readString()
            case 8: try reader.readRepeatedString(into: &args)
            case 9: startedAt = try reader.readInt64()
            case 10: endedAt = try reader.readInt64()
            case 11: try reader.readMessage(into: &resources)
            case 12: try reader.readMessage(into: &usage)
            case 13: exitReason = try reader.readString()
            case 14: workingDirectory = try reader.readString()
            default: try reader.skipField()
            }
        }
    }

    public func encode(to writer: inout ProtobufWriter) {
        writer.writeString(jobID, field: 1)
        writer.writeEnum(state, field: 2)
        writer.writeInt32(exitCode, field: 3)
        writer.writeInt32(signal, field: 4)
        writer.writeBool(oomKilled, field: 5)
        writer.writeString(owner, field: 6)
        writer.writeString(command, field: 7)
        writer.writeRepeatedString(args, field: 8)
        writer.writeInt64(startedAt, field: 9)
        writer.writeInt64(endedAt, field: 10)
        writer.writeMessage(resources, field: 11)
        writer.writeMessage(usage, field: 12)
        writer.writeString(exitReason, field: 13)
        writer.writeString(workingDirectory, field: 14)
    }
}
