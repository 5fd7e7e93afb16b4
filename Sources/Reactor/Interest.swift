import CSystem
import Glibc

/// The events a registration asks epoll to report for its fd.
///
/// Registrations are level-triggered unless `edgeTriggered` is set. Level-triggered is the
/// default because a handler that reads only part of what is available is called again on
/// the next batch, so no data is stranded. Edge-triggered suits fds whose handler always
/// drains them until EAGAIN (eventfd, timerfd, signalfd are read completely in one call).
public struct Interest: OptionSet, Hashable, Sendable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// EPOLLIN: data to read, or EOF.
    public static let readable = Interest(rawValue: EPOLLIN.rawValue)
    /// EPOLLOUT: room to write.
    public static let writable = Interest(rawValue: EPOLLOUT.rawValue)
    /// EPOLLET: report a change once instead of while the condition holds.
    public static let edgeTriggered = Interest(rawValue: EPOLLET.rawValue)

    var epollEvents: UInt32 { rawValue | EPOLLRDHUP.rawValue }
}

/// The events epoll reported for a registered fd in one batch.
public struct Readiness: OptionSet, Hashable, Sendable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// EPOLLIN: a read will not block (it may return EOF).
    public static let readable = Readiness(rawValue: EPOLLIN.rawValue)
    /// EPOLLOUT: a write will not block.
    public static let writable = Readiness(rawValue: EPOLLOUT.rawValue)
    /// EPOLLRDHUP: the peer closed its writing side of a socket.
    public static let readHangup = Readiness(rawValue: EPOLLRDHUP.rawValue)
    /// EPOLLHUP: both directions are closed, e.g. every write end of a pipe is closed.
    public static let hangup = Readiness(rawValue: EPOLLHUP.rawValue)
    /// EPOLLERR: an error is pending on the fd, e.g. a reset socket.
    public static let error = Readiness(rawValue: EPOLLERR.rawValue)
}
