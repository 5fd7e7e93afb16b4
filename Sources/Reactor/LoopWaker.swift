import CSystem
import Glibc
import Synchronization

/// State that other threads may touch: the wakeup eventfd and the stop request. It owns the
/// eventfd and closes it when the last reference, from the loop or a waker, goes away, so a
/// waker never writes to an fd number that was closed and reused.
final class LoopRemoteState: Sendable {
    let eventFD: Int32
    let stopRequested = Atomic<Bool>(false)

    init() throws(SystemError) {
        eventFD = try Syscall.call("eventfd") { eventfd(0, Int32(EFD_NONBLOCK | EFD_CLOEXEC)) }
    }

    func signal() {
        var one: UInt64 = 1
        // EAGAIN means the counter is already non-zero, so the loop wakes anyway.
        _ = withUnsafeBytes(of: &one) { write(eventFD, $0.baseAddress, 8) }
    }

    deinit {
        Syscall.close(eventFD)
    }
}

/// A handle that wakes an `EventLoop` from another thread through its eventfd. It is the only
/// part of the reactor that may be used off the loop thread (tests and shutdown use it).
public final class LoopWaker: Sendable {
    let state: LoopRemoteState

    init(state: LoopRemoteState) {
        self.state = state
    }

    /// Makes the loop's current or next `epoll_wait` return (eventfd write).
    public func wake() {
        state.signal()
    }

    /// Asks the loop to return from `run()` after its current batch, then wakes it.
    public func requestStop() {
        state.stopRequested.store(true, ordering: .sequentiallyConsistent)
        state.signal()
    }
}
