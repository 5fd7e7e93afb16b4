import Cgroups

/// What to run: the command, its arguments, environment, working directory and limits.
public struct JobSpec: Equatable, Sendable {
    /// Job id; nil lets `JobManager.start` generate one. Letters, digits, `-`, `_` and `.`,
    /// at most 64 characters, not starting with a dot (it names files and the cgroup).
    public var id: String?
    /// Identity that started the job, stored for access checks by the caller.
    public var owner: String
    /// Program path, or a name looked up in PATH as execvp(3) does.
    public var command: String
    /// Arguments after argv[0]; argv[0] is `command`.
    public var arguments: [String]
    /// Environment for execve; nil passes jobd's own environment on.
    public var environment: [String: String]?
    /// Working directory; nil keeps jobd's.
    public var workingDirectory: String?
    /// Resource limits of the job's cgroup.
    public var limits: ResourceLimits

    public init(
        id: String? = nil, owner: String, command: String, arguments: [String] = [],
        environment: [String: String]? = nil, workingDirectory: String? = nil, limits: ResourceLimits = ResourceLimits()
    ) {
        self.id = id
        self.owner = owner
        self.command = command
        self.arguments = arguments
        self.environment = environment
        self.workingDirectory = workingDirectory
        self.limits = limits
    }
}

/// Life stage of a job, as in the API's JobState.
public enum JobState: String, Equatable, Sendable {
    /// The leader process runs, or the job's output is still being collected.
    case running
    /// The job ended on its own.
    case exited
    /// The job ended after a Stop.
    case stopped
}

/// The pipe a chunk of output came from. Raw values are the tags of the on-disk log
/// format (see `OutputLogFormat`) and match the API's OutputStream numbers.
public enum OutputStream: UInt8, Equatable, Sendable {
    case stdout = 1
    case stderr = 2
}

/// Snapshot of a job: what was run, its state and, once ended, how it ended.
public struct JobStatus: Equatable, Sendable {
    public var id: String
    public var owner: String
    public var command: String
    public var arguments: [String]
    public var state: JobState
    /// Exit code when the leader exited; nil when a signal killed it or it still runs.
    public var exitCode: Int32?
    /// Signal that killed the leader; nil when it exited or still runs.
    public var signal: Int32?
    /// True when the kernel's OOM killer killed any process of the job's cgroup.
    public var oomKilled: Bool
    /// Wall-clock start, in nanoseconds since the Unix epoch (CLOCK_REALTIME).
    public var startedAtNanoseconds: UInt64
    /// Wall-clock end, in nanoseconds since the Unix epoch; nil while running.
    public var endedAtNanoseconds: UInt64?
    /// CPU time, memory peak and I/O of the cgroup, read before it was removed; nil without
    /// a cgroup or while running.
    public var usage: ResourceUsage?
    public var limits: ResourceLimits

    public init(
        id: String, owner: String, command: String, arguments: [String], state: JobState, exitCode: Int32? = nil,
        signal: Int32? = nil, oomKilled: Bool = false, startedAtNanoseconds: UInt64,
        endedAtNanoseconds: UInt64? = nil, usage: ResourceUsage? = nil, limits: ResourceLimits
    ) {
        self.id = id
        self.owner = owner
        self.command = command
        self.arguments = arguments
        self.state = state
        self.exitCode = exitCode
        self.signal = signal
        self.oomKilled = oomKilled
        self.startedAtNanoseconds = startedAtNanoseconds
        self.endedAtNanoseconds = endedAtNanoseconds
        self.usage = usage
        self.limits = limits
    }
}
