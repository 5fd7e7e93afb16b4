import CSystem
import Cgroups
import Foundation
import Glibc
import Reactor

/// The job table: starts jobs, stops them, hands out subscriptions, and keeps the jobs of
/// earlier runs of jobd, read from the state directory.
///
/// Not thread-safe: create and use it on the thread that runs `loop`.
public final class JobManager {
    private let loop: EventLoop
    private let ioRing: IORing
    private let cgroups: CgroupManager?
    private let store: JobStore
    private var jobs: [String: Job] = [:]
    private var order: [String] = []

    /// Payload bytes of recent output kept in memory per running job; older output is read
    /// back from the log file. Applies to jobs started after it is set.
    /// NOTE: a chunk's allocation can be up to twice its payload (SharedBytes shrinks a read
    /// buffer only when less than half of it was filled), so memory may reach twice this.
    public var outputBufferBytes = 1 << 20
    /// Payload bytes per job whose log writes may be in flight before jobd stops reading
    /// the job's pipes until writes complete (the pipe then fills and the job's writes wait).
    public var maxPendingWriteBytes = 1 << 20

    /// Runs on the loop thread when a job has finished, after its status was saved.
    public var onJobFinished: ((JobStatus) -> Void)?

    /// Opens the state directory (creating `<stateDirectory>/jobs`). `cgroups` nil runs jobs
    /// without cgroups: no limits, and signals reach only the leader through its pidfd.
    public init(loop: EventLoop, ring: IORing, cgroups: CgroupManager?, stateDirectory: String) throws {
        self.loop = loop
        self.ioRing = ring
        self.cgroups = cgroups
        self.store = try JobStore(stateDirectory: stateDirectory)
    }

    /// Returns the job with `id`, running or finished.
    public func job(id: String) -> Job? { jobs[id] }

    /// Every job in start order (jobs of earlier runs first).
    public var allJobs: [Job] { order.compactMap { jobs[$0] } }

    /// Returns a subscription to `job`'s output from byte 0.
    public func subscribe(_ job: Job) -> Subscription {
        Subscription(job: job)
    }

    /// Stops `job` (see `Job.stop`): SIGTERM, then SIGKILL after `grace`; `completion` runs
    /// on the loop thread with the final status.
    public func stop(_ job: Job, grace: Duration, completion: @escaping (JobStatus) -> Void) {
        job.stop(grace: grace, completion: completion)
    }

    // MARK: - Start

    /// Starts `spec` in a new cgroup with its limits: saves its metadata, creates the log,
    /// the pipes and the cgroup, and spawns the leader into the cgroup (clone3). Throws
    /// SpawnError when the command cannot be executed, JobError for an invalid or duplicate
    /// id, limits without cgroups, or storage failures, and CgroupError when a cgroup write
    /// fails. A failed start leaves no job, process, cgroup or file behind.
    public func start(_ spec: JobSpec) throws -> Job {
        let id = spec.id ?? UUID().uuidString.lowercased()
        try Self.validate(id: id)
        guard jobs[id] == nil, !FileManager.default.fileExists(atPath: store.metadataPath(id: id)) else {
            throw JobError(.duplicateID, "job id \"\(id)\" is already in use: choose another id or leave it empty")
        }
        if cgroups == nil && spec.limits != ResourceLimits() {
            throw JobError(
                .cgroupsUnavailable,
                "resource limits need cgroups, which jobd cannot write here: run jobd as root with writable cgroups, "
                    + "or start the job without limits")
        }

        let status = JobStatus(
            id: id, owner: spec.owner, command: spec.command, arguments: spec.arguments, state: .running,
            startedAtNanoseconds: wallClockNanoseconds(), limits: spec.limits)
        // Metadata first: whatever exists after a crash from here on, recover() finds it.
        try store.save(status)
        var cleanup = StartCleanup(store: store, id: id)
        defer { cleanup.run() }

        let output = try OutputLog(
            path: store.logPath(id: id), loop: loop, ioRing: ioRing, ringCapacity: outputBufferBytes,
            maxPendingBytes: maxPendingWriteBytes)
        cleanup.output = output
        let stdoutPipe = try Syscall.pipe(nonBlocking: false)
        cleanup.fds += [stdoutPipe.read, stdoutPipe.write]
        let stderrPipe = try Syscall.pipe(nonBlocking: false)
        cleanup.fds += [stderrPipe.read, stderrPipe.write]
        try Syscall.setNonBlocking(stdoutPipe.read)
        try Syscall.setNonBlocking(stderrPipe.read)
        let devNull = try Syscall.call("open", "/dev/null") { open("/dev/null", O_RDONLY | O_CLOEXEC) }
        cleanup.fds.append(devNull)

        var request = SpawnRequest(
            command: spec.command, arguments: spec.arguments, environment: Self.environment(spec.environment),
            workingDirectory: spec.workingDirectory, stdinFD: devNull, stdoutFD: stdoutPipe.write,
            stderrFD: stderrPipe.write)
        let cgroup = try cgroups?.create(name: id, limits: spec.limits)
        cleanup.cgroup = cgroup
        if let cgroup {
            try prepareJoin(cgroup, &request, &cleanup)
        }

        let process = try Spawner.spawn(request)

        // The child has its copies; the parent keeps only the read ends and the pidfd.
        cleanup.keep([stdoutPipe.read, stderrPipe.read])
        cleanup.succeeded = true
        cleanup.run()
        let job = Job(
            status: status, logPath: store.logPath(id: id), output: output, loop: loop, cgroup: cgroup,
            pidfd: process.pidfd, stdoutFD: stdoutPipe.read, stderrFD: stderrPipe.read)
        job.onFinished = { [unowned self] job in self.jobFinished(job) }
        do {
            try job.begin()
        } catch {
            // epoll_ctl failed (ENOMEM or ENOSPC): the process runs but cannot be followed.
            job.abandon()
            store.remove(id: id)
            throw error
        }
        jobs[id] = job
        order.append(id)
        return job
    }

    /// Sets up how the child joins `cgroup`: a directory fd for CLONE_INTO_CGROUP on v2,
    /// every controller's cgroup.procs opened for writing on v1.
    private func prepareJoin(_ cgroup: Cgroup, _ request: inout SpawnRequest, _ cleanup: inout StartCleanup) throws {
        switch cgroup.version {
        case .v2:
            let fd = try cgroup.openDirectoryFD()
            cleanup.fds.append(fd)
            request.cgroupDirectoryFD = fd
        case .v1:
            for file in cgroup.procsFiles {
                let fd = try Syscall.call("open", file) { open(file, O_WRONLY | O_CLOEXEC) }
                cleanup.fds.append(fd)
                request.cgroupProcsFDs.append(fd)
            }
        }
    }

    private func jobFinished(_ job: Job) {
        do {
            try store.save(job.status)
        } catch {
            // The job is finished in memory; only a restart would see it as running.
            job.recordCleanupError("\(error)")
        }
        onJobFinished?(job.status)
    }

    /// Accepts ids usable as a file name and a cgroup name.
    static func validate(id: String) throws {
        let allowed = id.utf8.allSatisfy { byte in
            (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z"))
                || (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z"))
                || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")) || byte == UInt8(ascii: "-")
                || byte == UInt8(ascii: "_") || byte == UInt8(ascii: ".")
        }
        guard allowed, !id.isEmpty, id.utf8.count <= 64, !id.hasPrefix(".") else {
            throw JobError(
                .invalidID,
                "invalid job id \"\(id)\": expected 1 to 64 letters, digits, '-', '_' or '.', not starting with '.'")
        }
    }

    /// Returns KEY=VALUE strings: the spec's environment, or jobd's own when nil.
    private static func environment(_ variables: [String: String]?) -> [String] {
        guard let variables else {
            return ProcessInfo.processInfo.environment.map { "\($0.key)=\($0.value)" }
        }
        return variables.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
    }

    // MARK: - Recovery

    /// Loads the jobs of earlier runs from the state directory. A job saved as running
    /// belonged to a jobd that stopped without finishing it: its leftover cgroup is killed and
    /// removed, and the job is recorded as stopped by SIGKILL. Job cgroups without metadata are
    /// killed and removed too. Call once, before the first `start`. Returns problems that did
    /// not stop recovery (unreadable metadata, a cgroup that could not be removed), for jobd
    /// to log.
    @discardableResult
    public func recover() throws -> [String] {
        let (statuses, failures) = try store.loadAll()
        var problems = failures

        for var status in statuses.sorted(by: { $0.startedAtNanoseconds < $1.startedAtNanoseconds }) {
            guard jobs[status.id] == nil else { continue }
            if status.state == .running {
                if let cgroup = cgroups?.open(name: status.id) {
                    problems += Self.killAndRemove(cgroup)
                } else if cgroups == nil {
                    problems.append(
                        "job \(status.id) was running when jobd stopped; without cgroups its processes cannot be "
                            + "found, so they may still run")
                }
                status.state = .stopped
                status.signal = SIGKILL
                status.endedAtNanoseconds = wallClockNanoseconds()
                do {
                    try store.save(status)
                } catch {
                    problems.append("\(error)")
                }
            }

            let logPath = store.logPath(id: status.id)
            let logEnd: UInt64
            do {
                logEnd = try Self.completeLength(ofLog: logPath)
            } catch {
                problems.append("output of job \(status.id) is unreadable: \(error)")
                logEnd = OutputLogFormat.firstRecordOffset
            }
            jobs[status.id] = Job(finished: status, logPath: logPath, logEnd: logEnd)
            order.append(status.id)
        }

        if let cgroups {
            for name in try cgroups.listJobCgroups() where jobs[name]?.isFinished != false {
                if let cgroup = cgroups.open(name: name) {
                    problems += Self.killAndRemove(cgroup)
                }
            }
        }
        return problems
    }

    /// Kills what is left in `cgroup` and removes it; returns what happened, for jobd's log, so
    /// that no process is killed without a trace.
    private static func killAndRemove(_ cgroup: Cgroup) -> [String] {
        do {
            let survivors = try cgroup.members().count
            try cgroup.killAll()
            try cgroup.remove(timeout: .seconds(5))
            if survivors == 0 { return [] }
            return ["killed \(survivors) processes left in the cgroup of job \(cgroup.name) from before the restart"]
        } catch {
            return ["cleaning up the leftover cgroup \(cgroup.name) failed: \(error)"]
        }
    }

    /// Returns the end of the last complete record of a log; a missing log is empty.
    private static func completeLength(ofLog path: String) throws -> UInt64 {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 && errno == ENOENT { return OutputLogFormat.firstRecordOffset }
        guard fd >= 0 else { throw SystemError(errno: errno, call: "open", subject: path) }
        defer { Syscall.close(fd) }
        let reader = OutputLogReader(fd: fd, path: path)
        try reader.validateMagic()
        return try reader.endOfCompleteRecords()
    }
}

/// Resources a failing `start` must release, in reverse order of creation, from a `defer`.
private struct StartCleanup {
    let store: JobStore
    let id: String
    var fds: [Int32] = []
    var output: OutputLog?
    var cgroup: Cgroup?
    /// Set once the process runs: then only the parent's copies of fds are closed.
    var succeeded = false
    private var done = false

    init(store: JobStore, id: String) {
        self.store = store
        self.id = id
    }

    /// Excludes `kept` from the fds to close.
    mutating func keep(_ kept: [Int32]) {
        fds.removeAll { kept.contains($0) }
    }

    mutating func run() {
        if done { return }
        done = true
        for fd in fds { Syscall.close(fd) }
        if succeeded { return }
        if let cgroup {
            // Nothing ran in it (a failed spawn was reaped), so rmdir succeeds at once.
            try? cgroup.remove(timeout: .seconds(1))
        }
        output?.close()
        store.remove(id: id)
    }
}
