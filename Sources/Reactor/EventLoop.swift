import CSystem
import Glibc

/// A single-threaded epoll reactor: fd readiness, timers (timerfd), cross-thread wakeups
/// (eventfd) and signals (signalfd) all arrive through one `epoll_wait` loop.
///
/// Not thread-safe: create, use and run a loop on one thread. Only `LoopWaker` may be used
/// from other threads. Handlers run on the loop thread and may register, modify or remove
/// any registration, including their own and others in the same batch.
///
/// Fd reuse: epoll reports events by the fd number stored at registration. A handler can
/// close fd 7 and register a new fd 7 within one batch, so each registration gets a
/// generation number packed with the fd into epoll's data field, and an event whose
/// generation does not match the current registration of that fd is dropped.
public final class EventLoop {
    private final class Registration {
        let generation: UInt32
        var interest: Interest
        let handler: (Readiness) -> Void

        init(generation: UInt32, interest: Interest, handler: @escaping (Readiness) -> Void) {
            self.generation = generation
            self.interest = interest
            self.handler = handler
        }
    }

    private let epollFD: Int32
    private let timerFD: Int32
    private var signalFD: Int32 = -1
    private let remote: LoopRemoteState
    private var registrations: [Registration?] = []  // indexed by fd
    private var registrationCount = 0
    private var nextGeneration: UInt32 = 1
    private var timers = TimerQueue()
    private var armedDeadline: UInt64 = 0  // 0: the timerfd is disarmed
    private var afterBatchWork: [() -> Void] = []
    private var stopRequested = false
    private var ownerThread = pthread_self()
    private let events: UnsafeMutablePointer<epoll_event>
    private let eventCapacity = 256

    /// Creates the epoll instance with its timerfd and wakeup eventfd (epoll_create1(2),
    /// timerfd_create(2), eventfd(2)).
    public init() throws(SystemError) {
        epollFD = try Syscall.call("epoll_create1") { epoll_create1(Int32(EPOLL_CLOEXEC)) }
        do {
            timerFD = try Syscall.call("timerfd_create") {
                timerfd_create(CLOCK_MONOTONIC, Int32(TFD_NONBLOCK | TFD_CLOEXEC))
            }
        } catch {
            Syscall.close(epollFD)
            throw error
        }
        do {
            remote = try LoopRemoteState()
        } catch {
            Syscall.close(timerFD)
            Syscall.close(epollFD)
            throw error
        }
        events = .allocate(capacity: eventCapacity)

        try register(fd: timerFD, interest: .readable) { [unowned self] _ in self.fireTimers() }
        try register(fd: remote.eventFD, interest: .readable) { [unowned self] _ in self.drainWakeups() }
    }

    deinit {
        // The loop owns these fds; registered fds belong to their handlers' owners.
        if signalFD >= 0 { Syscall.close(signalFD) }
        Syscall.close(timerFD)
        Syscall.close(epollFD)
        events.deallocate()
    }

    /// The number of fds registered by users of the loop, without the loop's own.
    public var registeredCount: Int {
        registrationCount - 2 - (signalFD >= 0 ? 1 : 0)
    }

    /// The number of pending timers.
    public var pendingTimerCount: Int { timers.count }

    // MARK: - Registrations

    /// Starts watching `fd` for `interest`; `handler` runs on the loop thread with what epoll
    /// reported (epoll_ctl(2) EPOLL_CTL_ADD). The caller keeps ownership of the fd and must
    /// call `deregister` before closing it.
    public func register(fd: Int32, interest: Interest, handler: @escaping (Readiness) -> Void) throws(SystemError) {
        assertOnLoopThread()
        precondition(fd >= 0, "register: invalid fd \(fd)")
        let index = Int(fd)
        if index >= registrations.count {
            registrations.append(contentsOf: repeatElement(nil, count: index + 1 - registrations.count))
        }
        precondition(registrations[index] == nil, "register: fd \(fd) is already registered")

        let registration = Registration(generation: nextGeneration, interest: interest, handler: handler)
        nextGeneration = nextGeneration == UInt32.max ? 1 : nextGeneration + 1
        var event = epoll_event()
        event.events = interest.epollEvents
        event.data.u64 = Self.pack(fd: fd, generation: registration.generation)
        _ = try Syscall.call("epoll_ctl", "fd \(fd)") { epoll_ctl(epollFD, EPOLL_CTL_ADD, fd, &event) }
        registrations[index] = registration
        registrationCount += 1
    }

    /// Changes the events watched for a registered `fd` (epoll_ctl(2) EPOLL_CTL_MOD).
    public func modify(fd: Int32, interest: Interest) throws(SystemError) {
        assertOnLoopThread()
        guard let registration = registration(of: fd) else {
            preconditionFailure("modify: fd \(fd) is not registered")
        }
        if registration.interest == interest { return }

        var event = epoll_event()
        event.events = interest.epollEvents
        event.data.u64 = Self.pack(fd: fd, generation: registration.generation)
        _ = try Syscall.call("epoll_ctl", "fd \(fd)") { epoll_ctl(epollFD, EPOLL_CTL_MOD, fd, &event) }
        registration.interest = interest
    }

    /// Stops watching `fd` (epoll_ctl(2) EPOLL_CTL_DEL); events already fetched in the
    /// current batch for it are dropped. Does not close the fd. Removing an fd that is not
    /// registered does nothing.
    public func deregister(fd: Int32) {
        assertOnLoopThread()
        guard registration(of: fd) != nil else { return }
        registrations[Int(fd)] = nil
        registrationCount -= 1
        // ENOENT or EBADF here means the owner closed the fd before deregistering. Closing
        // already removed it from the epoll set, so only the table entry needs clearing.
        _ = epoll_ctl(epollFD, EPOLL_CTL_DEL, fd, nil)
    }

    private func registration(of fd: Int32) -> Registration? {
        let index = Int(fd)
        return index >= 0 && index < registrations.count ? registrations[index] : nil
    }

    private static func pack(fd: Int32, generation: UInt32) -> UInt64 {
        UInt64(generation) << 32 | UInt64(UInt32(bitPattern: fd))
    }

    // MARK: - Timers

    /// Runs `body` on the loop thread once `delay` has passed on CLOCK_MONOTONIC.
    /// Returns an id for `cancelTimer`. Costs O(log n) in the number of pending timers.
    @discardableResult
    public func scheduleTimer(after delay: Duration, _ body: @escaping () -> Void) -> TimerID {
        let now = MonotonicClock.nanoseconds()
        let (deadline, overflow) = now.addingReportingOverflow(delay.clampedNanoseconds)
        return scheduleTimer(atNanoseconds: overflow ? .max : deadline, body)
    }

    /// Runs `body` on the loop thread at `deadline`, in CLOCK_MONOTONIC nanoseconds.
    @discardableResult
    public func scheduleTimer(atNanoseconds deadline: UInt64, _ body: @escaping () -> Void) -> TimerID {
        assertOnLoopThread()
        let id = timers.schedule(deadline: max(deadline, 1), body: body)
        rearmTimerFD()
        return id
    }

    /// Cancels a pending timer; cancelling one that already fired does nothing.
    public func cancelTimer(_ id: TimerID) {
        assertOnLoopThread()
        if timers.cancel(id) {
            rearmTimerFD()
        }
    }

    private func fireTimers() {
        var expirations: UInt64 = 0
        _ = read(timerFD, &expirations, 8)  // EAGAIN: a re-arm raced the read; nothing to drain
        armedDeadline = 0

        // Due timers fire in deadline order. `now` is read once, so a timer that a body
        // schedules fires in a later batch and cannot starve the other fds.
        let now = MonotonicClock.nanoseconds()
        while let entry = timers.popExpired(now: now) {
            entry.body()
        }
        rearmTimerFD()
    }

    /// Arms the timerfd for the earliest deadline when it changed (timerfd_settime(2),
    /// TFD_TIMER_ABSTIME). A deadline in the past fires at once.
    private func rearmTimerFD() {
        let next = timers.earliestDeadline ?? 0
        if next == armedDeadline { return }

        var spec = itimerspec()
        spec.it_value.tv_sec = Int(next / 1_000_000_000)
        spec.it_value.tv_nsec = Int(next % 1_000_000_000)
        let result = timerfd_settime(timerFD, Int32(TFD_TIMER_ABSTIME), &spec, nil)
        precondition(result == 0, "timerfd_settime failed: errno \(errno)")
        armedDeadline = next
    }

    // MARK: - Running

    /// Queues `body` to run on the loop thread after the handlers of the current batch and
    /// before the next `epoll_wait`, e.g. to submit a batch of io_uring writes or flush a
    /// connection's output once per batch.
    public func executeAfterBatch(_ body: @escaping () -> Void) {
        afterBatchWork.append(body)
    }

    /// Runs batches until `stop()` is called or a `LoopWaker` requests a stop.
    public func run() throws(SystemError) {
        ownerThread = pthread_self()
        stopRequested = false
        while !stopRequested {
            try runOnce(timeout: nil)
        }
    }

    /// Runs batches until `condition` returns true (then returns true) or `timeout` passes
    /// (then returns false). Meant for tests that drive the loop on their own thread.
    public func run(until condition: () -> Bool, timeout: Duration) throws(SystemError) -> Bool {
        ownerThread = pthread_self()
        let deadline = MonotonicClock.nanoseconds() &+ timeout.clampedNanoseconds
        while !condition() {
            let now = MonotonicClock.nanoseconds()
            if now >= deadline { return false }
            try runOnce(timeout: .nanoseconds(Int64(min(deadline - now, 100_000_000))))
        }
        return true
    }

    /// Makes `run()` return after the current batch. Call on the loop thread.
    public func stop() {
        stopRequested = true
    }

    /// Waits for one batch of events (epoll_wait(2)), at most `timeout` (nil: no limit),
    /// dispatches it, then runs the work queued by `executeAfterBatch`.
    public func runOnce(timeout: Duration?) throws(SystemError) {
        ownerThread = pthread_self()
        runAfterBatchWork()  // work queued before the loop ran, e.g. by the set-up code

        let milliseconds: Int32
        if let timeout {
            // Round up, so a wait for 0.5 ms does not become a busy poll.
            milliseconds = Int32(clamping: (timeout.clampedNanoseconds + 999_999) / 1_000_000)
        } else {
            milliseconds = -1
        }
        let count = try Syscall.call("epoll_wait") { epoll_wait(epollFD, events, Int32(eventCapacity), milliseconds) }

        for index in 0..<Int(count) {
            let data = events[index].data.u64
            let fd = Int32(bitPattern: UInt32(truncatingIfNeeded: data))
            let generation = UInt32(truncatingIfNeeded: data >> 32)
            // A handler earlier in this batch may have removed or replaced this registration.
            guard let registration = registration(of: fd), registration.generation == generation else { continue }
            registration.handler(Readiness(rawValue: events[index].events))
        }

        runAfterBatchWork()
    }

    private func runAfterBatchWork() {
        // Work may queue more work; it runs in the same pass, so the queue is empty before
        // the loop sleeps.
        while !afterBatchWork.isEmpty {
            let work = afterBatchWork
            afterBatchWork.removeAll(keepingCapacity: true)
            for body in work { body() }
        }
    }

    // MARK: - Wakeups and signals

    /// Returns a handle that wakes or stops this loop from any thread.
    public func makeWaker() -> LoopWaker {
        LoopWaker(state: remote)
    }

    private func drainWakeups() {
        var counter: UInt64 = 0
        _ = read(remote.eventFD, &counter, 8)  // EAGAIN: another batch drained it already
        if remote.stopRequested.exchange(false, ordering: .sequentiallyConsistent) {
            stopRequested = true
        }
    }

    /// Blocks `signals` in the calling thread, so they stay pending for a signalfd.
    /// Call it first in `main`, before any thread starts, because threads inherit the mask
    /// and a process-directed signal goes to any thread that does not block it
    /// (pthread_sigmask(3), signal(7)).
    public static func blockSignals(_ signals: [Int32]) {
        var mask = sigset_t()
        sigemptyset(&mask)
        for signal in signals { sigaddset(&mask, signal) }
        pthread_sigmask(SIG_BLOCK, &mask, nil)
    }

    /// Delivers `signals` to `handler` on the loop thread through a signalfd (signalfd(2)).
    /// Blocks them in the calling thread; every other thread must block them too (see
    /// `blockSignals`). Child exits are not watched here: jobs are followed through pidfds.
    /// Call once per loop.
    public func watchSignals(_ signals: [Int32], handler: @escaping (Int32) -> Void) throws(SystemError) {
        precondition(signalFD < 0, "watchSignals: this loop already watches signals")
        Self.blockSignals(signals)

        var mask = sigset_t()
        sigemptyset(&mask)
        for signal in signals { sigaddset(&mask, signal) }
        let fd = try Syscall.call("signalfd") { signalfd(-1, &mask, Int32(SFD_NONBLOCK | SFD_CLOEXEC)) }
        signalFD = fd
        try register(fd: fd, interest: .readable) { [unowned self] _ in
            self.drainSignals(handler)
        }
    }

    private func drainSignals(_ handler: (Int32) -> Void) {
        var info = signalfd_siginfo()
        let size = MemoryLayout<signalfd_siginfo>.size
        while true {
            let count = read(signalFD, &info, size)
            if count != size { return }  // EAGAIN: drained
            handler(Int32(info.ssi_signo))
        }
    }

    private func assertOnLoopThread() {
        assert(pthread_equal(pthread_self(), ownerThread) != 0, "EventLoop used off its thread")
    }
}
