/// Failure of a job operation other than the spawn itself (see `SpawnError`).
public struct JobError: Error, CustomStringConvertible, Equatable {
    public enum Kind: Equatable, Sendable {
        /// The job id is not usable as a file and cgroup name.
        case invalidID
        /// A job with this id exists already.
        case duplicateID
        /// Limits were requested but jobd has no cgroup manager.
        case cgroupsUnavailable
        /// The state directory or a job's files could not be used.
        case storage
        /// A job's output log is damaged.
        case corruptLog
    }

    public let kind: Kind
    public let message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public var description: String { message }
}
