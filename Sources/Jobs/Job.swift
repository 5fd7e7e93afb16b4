import CSystem
import Cgroups
import Glibc
import Reactor

/// One job: its process (followed through a pidfd), its cgroup, its output pipes and log,
/// and its subscribers. Created by `JobManager`; every member is used on the loop thread.
///
/// Lifecycle: the leader's pidfd turns readable when it exits, and waitid(P_PIDFD) reaps it.
/// Then the rest of the cgroup is killed and both pipes are read to EOF. Then the cgroup's
/// usage is read and the cgroup removed, retried on a timer while busy. Once every log write
/// has completed, the job is finished and saved, and its Stop callers and subscribers run.
public final class Job {
    /// A read end of one of the job's output pipes.
    private final class OutputPipe {
        let stream: OutputStream
        var fd: Int32
        var isRegistered = false

        init(stream: OutputStream, fd: Int32) {
            self.stream = stream
            self.fd = fd
        }

        var isOpen: Bool { fd >= 0 }
    }

    public let id: String
    /// Current status; final once `state` is no longer `.running`.
    public private(set) var status: JobStatus
    /// Cleanup that failed while the job ended (killing or removing its cgroup), for
    /// jobd to log; the job still finished.
    public private(set) var cleanupErrors: [String] = []

    let logPath: String
    /// The reason the output log of a job loaded after a restart cannot be read. A
    /// subscription fails with it instead of reporting an empty output.
    let outputProblem: String?
    /// The first failed write of the output log while the job ran; output from then on is
    /// missing from the file.
    private var finishedWriteError: SystemError?
    /// The writer while the job runs; nil once finished or when loaded after a restart.
    private(set) var output: OutputLog?
    private var finishedLogEnd: UInt64

    private let loop: EventLoop?
    private var cgroup: Cgroup?
    private var pidfd: Int32 = -1
    private var pipes: [OutputPipe] = []
    private var leaderEnded = false
    private var isFinishing = false
    /// Set once the cgroup is gone: only log writes can still hold the job back.
    private var isAwaitingWrites = false
    private var stopRequested = false
    private var stopCompletions: [(JobStatus) -> Void] = []
    private var graceTimer: TimerID?
    private var pipeDeadlineTimer: TimerID?
    private var waitingSubscriptions: [ObjectIdentifier: Subscription] = [:]
    /// Runs once when the job finishes, before Stop callers and subscribers hear of it.
    var onFinished: ((Job) -> Void)?

    /// Maximum reads per pipe per loop batch, so a chatty job cannot starve other fds.
    private static let readsPerWakeup = 16
    /// How long the pipes may stay open after the leader exited and the cgroup was killed.
    /// A process outside the cgroup that has a write end open (received over a socket, say)
    /// must not keep the job alive.
    private static let pipeDrainDeadline = Duration.seconds(5)
    /// Maximum bytes the final drain of a pipe reads before closing it: four default pipe
    /// buffers (64 KiB each, pipe(7)), ample for what a killed job left behind.
    private static let finalDrainLimit = 256 * 1024

    /// Creates a running job around a spawned process. `begin` starts following it.
    init(
        status: JobStatus, logPath: String, output: OutputLog, loop: EventLoop, cgroup: Cgroup?, pidfd: Int32,
        stdoutFD: Int32, stderrFD: Int32
    ) {
        self.id = status.id
        self.status = status
        self.logPath = logPath
        self.output = output
        self.outputProblem = nil
        self.finishedLogEnd = OutputLogFormat.firstRecordOffset
        self.loop = loop
        self.cgroup = cgroup
        self.pidfd = pidfd
        self.pipes = [OutputPipe(stream: .stdout, fd: stdoutFD), OutputPipe(stream: .stderr, fd: stderrFD)]
    }

    /// Creates a finished job loaded from the state directory. `outputProblem` is the reason
    /// its log cannot be read, nil when it can.
    init(finished status: JobStatus, logPath: String, logEnd: UInt64, outputProblem: String? = nil) {
        precondition(status.state != .running, "a loaded job must be finished")
        self.id = status.id
        self.status = status
        self.logPath = logPath
        self.outputProblem = outputProblem
        self.finishedLogEnd = logEnd
        self.loop = nil
    }

    deinit {
        assert(pidfd < 0, "job \(id) released with its pidfd open")
        assert(pipes.allSatisfy { !$0.isOpen }, "job \(id) released with open pipes")
    }

    /// True once the job has ended and its output is complete.
    public var isFinished: Bool { status.state != .running }

    /// Offset after the last record of the output log.
    var logEndOffset: UInt64 { output?.endOffset ?? finishedLogEnd }

    /// The first failed write of the output log, while running or after.
    var outputWriteError: SystemError? { output?.writeError ?? finishedWriteError }

    // MARK: - Following the process

    /// Registers the pidfd and both pipes in the loop.
    func begin() throws {
        guard let loop, let output else { return }
        output.onProgress = { [unowned self] in self.outputProgressed() }
        try loop.register(fd: pidfd, interest: .readable) { [unowned self] _ in self.reapLeader() }
        for pipe in pipes {
            try register(pipe)
        }
    }

    private func register(_ pipe: OutputPipe) throws {
        guard let loop, pipe.isOpen, !pipe.isRegistered else { return }
        try loop.register(fd: pipe.fd, interest: .readable) { [unowned self] _ in self.read(pipe) }
        pipe.isRegistered = true
    }

    private func pause(_ pipe: OutputPipe) {
        guard let loop, pipe.isRegistered else { return }
        loop.deregister(fd: pipe.fd)
        pipe.isRegistered = false
    }

    /// Reaps the leader with waitid(P_PIDFD, WNOHANG) and records how it ended.
    private func reapLeader() {
        var info = siginfo_t()
        let result = cs_waitid_pidfd(pidfd, &info, WEXITED | WNOHANG)
        if result < 0 && errno == EINTR { return }  // level-triggered: called again
        if result == 0 && cs_siginfo_pid(&info) == 0 { return }  // not exited yet

        if result == 0 {
            switch cs_siginfo_code(&info) {
            case Int32(CLD_EXITED):
                status.exitCode = cs_siginfo_status(&info)
            default:  // CLD_KILLED, CLD_DUMPED
                status.signal = cs_siginfo_status(&info)
            }
        } else {
            // ECHILD: someone else reaped it, which jobd never does; the outcome is unknown.
            cleanupErrors.append("waitid(pidfd \(pidfd)) failed: \(SpawnError.describe(errno: errno))")
        }

        loop?.deregister(fd: pidfd)
        Syscall.close(pidfd)
        pidfd = -1
        leaderEnded = true
        leaderExited()
    }

    private func leaderExited() {
        if let cgroup {
            // The job is its cgroup: nothing may outlive the leader. An empty cgroup stays empty,
            // since only a member can fork into it, so the kill (on v1 a freeze, a poll for
            // FROZEN and a thaw) is skipped for the common job that leaves nothing behind.
            do {
                if try !cgroup.members().isEmpty {
                    try cgroup.killAll()
                }
            } catch {
                cleanupErrors.append("killing the rest of cgroup \(cgroup.name) failed: \(error)")
            }
            pipeDeadlineTimer = loop?.scheduleTimer(after: Self.pipeDrainDeadline) { [weak self] in
                self?.closeOpenPipes()
            }
        } else {
            // NOTE: without a cgroup, processes the leader left behind are not killed. They may
            // keep the pipes open, so only what is buffered now is read before closing them.
            for pipe in pipes where pipe.isOpen {
                read(pipe, untilEmpty: true)
                close(pipe)
            }
        }
        finishIfDone()
    }

    private func closeOpenPipes() {
        pipeDeadlineTimer = nil
        for pipe in pipes where pipe.isOpen {
            read(pipe, untilEmpty: true)
            close(pipe)
        }
        finishIfDone()
    }

    // MARK: - Output

    /// Reads chunks of up to 64 KiB from `pipe` into the log. Stops when the pipe is empty,
    /// after `readsPerWakeup` chunks (epoll reports it again), or when log writes back up.
    /// `untilEmpty` is the final drain before the pipe is closed: it ignores both limits but
    /// stops after `finalDrainLimit` bytes, because a process outside the job may keep writing.
    private func read(_ pipe: OutputPipe, untilEmpty: Bool = false) {
        guard let output else { return }
        var reads = 0
        var drained = 0
        var appended = false
        while pipe.isOpen && (untilEmpty ? drained < Self.finalDrainLimit : reads < Self.readsPerWakeup) {
            if output.isBackpressured && !untilEmpty {
                pause(pipe)
                break
            }

            guard let chunk = readChunk(from: pipe) else { break }
            if chunk.count == 0 {
                close(pipe)
                break
            }

            output.append(chunk, stream: pipe.stream)
            appended = true
            reads += 1
            drained += chunk.count
            // A short read means the pipe is empty now, so skip the read that would return EAGAIN.
            if chunk.count < OutputLogFormat.maxPayloadSize && !untilEmpty { break }
        }
        if appended { wakeSubscriptions() }
        if !pipe.isOpen { finishIfDone() }
    }

    /// Returns the next chunk read from `pipe`, an empty chunk at EOF (or after a read error,
    /// which ends the pipe too), or nil when the pipe is empty for now (EAGAIN).
    private func readChunk(from pipe: OutputPipe) -> SharedBytes? {
        var isEmpty = false
        do {
            let chunk = try SharedBytes(capacity: OutputLogFormat.maxPayloadSize) { buffer in
                let count = try Syscall.callNonBlocking("read", "fd \(pipe.fd)") {
                    Glibc.read(pipe.fd, buffer.baseAddress, buffer.count)
                }
                isEmpty = count == nil
                return count ?? 0
            }
            return isEmpty ? nil : chunk
        } catch {
            cleanupErrors.append("reading the \(pipe.stream) pipe failed: \(error)")
            return SharedBytes([])
        }
    }

    private func close(_ pipe: OutputPipe) {
        guard pipe.isOpen else { return }
        pause(pipe)
        Syscall.close(pipe.fd)
        pipe.fd = -1
    }

    /// Resumes paused pipes once log writes caught up, and finishes when they all completed.
    private func outputProgressed() {
        guard let output else { return }
        if !output.isBackpressured {
            for pipe in pipes where pipe.isOpen && !pipe.isRegistered {
                do {
                    try register(pipe)
                } catch {
                    cleanupErrors.append("resuming the \(pipe.stream) pipe failed: \(error)")
                    close(pipe)
                }
            }
        }
        if isAwaitingWrites {
            finishAfterWrites()
        } else {
            finishIfDone()
        }
    }

    // MARK: - Finishing

    private func finishIfDone() {
        guard leaderEnded, !isFinishing, pipes.allSatisfy({ !$0.isOpen }) else { return }
        isFinishing = true
        if let timer = pipeDeadlineTimer {
            loop?.cancelTimer(timer)
            pipeDeadlineTimer = nil
        }
        if let cgroup {
            do {
                let usage = try cgroup.usage()
                status.usage = usage
                status.oomKilled = usage.oomKills > 0
            } catch {
                cleanupErrors.append("reading the usage of cgroup \(cgroup.name) failed: \(error)")
            }
        }
        removeCgroup(attempt: 0)
    }

    /// Removes the cgroup with rmdir, which fails with EBUSY until the killed processes are
    /// gone. Retries on a timer for up to about 5 s and kills again every 50 attempts.
    private func removeCgroup(attempt: Int) {
        guard let cgroup, let loop else {
            finishAfterWrites()
            return
        }
        do {
            if try cgroup.tryRemove() {
                self.cgroup = nil
                finishAfterWrites()
                return
            }
        } catch {
            cleanupErrors.append("removing cgroup \(cgroup.name) failed: \(error)")
            self.cgroup = nil
            finishAfterWrites()
            return
        }

        if attempt >= 500 {
            cleanupErrors.append("cgroup \(cgroup.name) is still busy after 5 s; it is left in place")
            self.cgroup = nil
            finishAfterWrites()
            return
        }
        if attempt % 50 == 49 {
            try? cgroup.killAll()
        }
        let delay: Duration = attempt < 10 ? .milliseconds(1) : .milliseconds(10)
        loop.scheduleTimer(after: delay) { [self] in removeCgroup(attempt: attempt + 1) }
    }

    private func finishAfterWrites() {
        isAwaitingWrites = true
        guard let output, output.isIdle else { return }  // outputProgressed calls back
        finish(output)
    }

    private func finish(_ output: OutputLog) {
        guard !isFinished else { return }
        finishedLogEnd = output.endOffset
        if let error = output.writeError {
            finishedWriteError = error
            cleanupErrors.append("writing the output log \(logPath) failed: \(error)")
        }
        output.close()
        self.output = nil
        if let timer = graceTimer {
            loop?.cancelTimer(timer)
            graceTimer = nil
        }

        status.state = stopRequested ? .stopped : .exited
        status.endedAtNanoseconds = wallClockNanoseconds()
        onFinished?(self)

        let completions = stopCompletions
        stopCompletions = []
        for completion in completions { completion(status) }
        wakeSubscriptions()
    }

    // MARK: - Stop

    /// Stops the job: SIGTERM to every process of its cgroup (or the leader's pidfd without
    /// one), then SIGKILL to whatever is left after `grace`. `completion` runs on the loop
    /// thread once the job has finished. Stop of a finished job completes at once without a
    /// signal; Stops while one is in progress share its outcome.
    func stop(grace: Duration, completion: @escaping (JobStatus) -> Void) {
        if isFinished {
            completion(status)
            return
        }
        stopCompletions.append(completion)
        // After the leader exited the job is ending on its own, and a second Stop must not
        // restart the grace period.
        if stopRequested || leaderEnded { return }
        stopRequested = true

        signal(SIGTERM)
        graceTimer = loop?.scheduleTimer(after: grace) { [weak self] in
            guard let self else { return }
            graceTimer = nil
            if !leaderEnded { kill() }
        }
    }

    private func signal(_ signal: Int32) {
        if let cgroup {
            do {
                try cgroup.signalAll(signal)
                return
            } catch {
                cleanupErrors.append("signalling cgroup \(cgroup.name) failed: \(error)")
            }
        }
        if pidfd >= 0 {
            _ = cs_pidfd_send_signal(pidfd, signal, 0)  // ESRCH: exited meanwhile, reaped next batch
        }
    }

    private func kill() {
        if let cgroup {
            do {
                try cgroup.killAll()
                return
            } catch {
                cleanupErrors.append("killing cgroup \(cgroup.name) failed: \(error)")
            }
        }
        if pidfd >= 0 {
            _ = cs_pidfd_send_signal(pidfd, SIGKILL, 0)
        }
    }

    /// Kills and reaps a job that `begin` could not register, closes its fds and removes its
    /// cgroup. Blocks in waitid(2) until the SIGKILLed leader is gone.
    func abandon() {
        for pipe in pipes { close(pipe) }
        if pidfd >= 0 {
            loop?.deregister(fd: pidfd)
            if let cgroup { try? cgroup.killAll() }
            _ = cs_pidfd_send_signal(pidfd, SIGKILL, 0)
            var info = siginfo_t()
            while cs_waitid_pidfd(pidfd, &info, WEXITED) < 0 && errno == EINTR {}
            Syscall.close(pidfd)
            pidfd = -1
        }
        if let cgroup {
            try? cgroup.remove(timeout: .seconds(1))
            self.cgroup = nil
        }
        // Nothing was read yet, so no write is pending.
        output?.close()
        output = nil
    }

    func recordCleanupError(_ message: String) {
        cleanupErrors.append(message)
    }

    // MARK: - Subscriptions

    /// Remembers `subscription` to wake once when output arrives or the job finishes.
    func wakeWhenReadable(_ subscription: Subscription) {
        waitingSubscriptions[ObjectIdentifier(subscription)] = subscription
    }

    func forget(_ subscription: Subscription) {
        waitingSubscriptions[ObjectIdentifier(subscription)] = nil
    }

    private func wakeSubscriptions() {
        if waitingSubscriptions.isEmpty { return }
        let subscriptions = waitingSubscriptions.values
        waitingSubscriptions.removeAll()
        for subscription in subscriptions { subscription.wake() }
    }
}
