import GRPCLite

/// `jobworker.v1.JobState`: where a job is in its lifecycle.
public enum Jobworker_V1_JobState: ProtobufEnum, Sendable, Hashable {
    case unspecified
    case running
    /// The job ended on its own: `exitCode` is set, or `signal` if a signal killed it.
    case exited
    /// The job was ended by Stop.
    case stopped
    /// A number this version does not name, kept so that re-encoding preserves it.
    case unrecognized(Int32)

    public init(rawValue: Int32) {
        switch rawValue {
        case 0: self = .unspecified
        case 1: self = .running
        case 2: self = .exited
        case 3: self = .stopped
        default: self = .unrecognized(rawValue)
        }
    }

    public var rawValue: Int32 {
        switch self {
        case .unspecified: 0
        case .running: 1
        case .exited: 2
        case .stopped: 3
        case .unrecognized(let value): value
        }
    }
}

/// `jobworker.v1.OutputStream`: which of the job's pipes output came from.
public enum Jobworker_V1_OutputStream: ProtobufEnum, Sendable, Hashable {
    case unspecified
    case stdout
    case stderr
    /// A number this version does not name, kept so that re-encoding preserves it.
    case unrecognized(Int32)

    public init(rawValue: Int32) {
        switch rawValue {
        case 0: self = .unspecified
        case 1: self = .stdout
        case 2: self = .stderr
        default: self = .unrecognized(rawValue)
        }
    }

    public var rawValue: Int32 {
        switch self {
        case .unspecified: 0
        case .stdout: 1
        case .stderr: 2
        case .unrecognized(let value): value
        }
    }
}
