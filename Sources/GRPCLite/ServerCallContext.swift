import Reactor

/// The state of one server call that handlers and interceptors see, on the loop thread.
public final class ServerCallContext {
    /// The full method name as in the HTTP/2 `:path`, e.g. `/jobworker.v1.JobService/Start`.
    public let method: String
    /// The verified client certificate.
    public let peer: PeerIdentity
    /// The client's address, e.g. `127.0.0.1:40312`.
    public let peerAddress: String
    /// The call's deadline in CLOCK_MONOTONIC nanoseconds (see `MonotonicClock`), from the
    /// request's `grpc-timeout`; nil when the client set none.
    public let deadline: UInt64?
    /// Request headers other than the HTTP/2 pseudo-headers, names in lower case.
    public let metadata: [(name: String, value: String)]
    /// True once the client reset the stream, the deadline passed, or the connection closed.
    public private(set) var isCancelled = false
    /// Runs once, on the loop thread, when the call is cancelled. Handlers that keep
    /// resources for a call (a subscription, a pending reply) release them here.
    public var onCancel: (() -> Void)?
    /// Values interceptors pass to handlers, e.g. the caller's roles.
    public var userInfo: [String: Any] = [:]

    init(
        method: String, peer: PeerIdentity, peerAddress: String, deadline: UInt64?,
        metadata: [(name: String, value: String)]
    ) {
        self.method = method
        self.peer = peer
        self.peerAddress = peerAddress
        self.deadline = deadline
        self.metadata = metadata
    }

    /// Returns the time left before the deadline, nil when there is no deadline.
    public var timeRemaining: Duration? {
        guard let deadline else { return nil }
        let now = MonotonicClock.nanoseconds()
        return deadline > now ? .nanoseconds(Int64(deadline - now)) : .zero
    }

    func cancel() {
        guard !isCancelled else { return }
        isCancelled = true
        let handler = onCancel
        onCancel = nil
        handler?()
    }
}

/// Completes a unary call with one response message or a status, now or later (e.g. once
/// a job has ended); only the first completion counts.
public final class UnaryResponder {
    private let call: ServerCall

    init(call: ServerCall) {
        self.call = call
    }

    /// True once the call has a result or was cancelled; later completions are ignored.
    public var isFinished: Bool { call.isFinished }

    /// Sends `message` and status OK.
    public func succeed(_ message: [UInt8]) {
        guard !call.isFinished else { return }
        call.send(prefixAndBytes: MessageFraming.frame(message), payload: nil)
        call.finish(.ok)
    }

    /// Sends `status` with no message. A status of OK is sent as INTERNAL, because a unary
    /// call must pair OK with a response message.
    public func fail(_ status: Status) {
        if status.isOK {
            call.finish(Status(.internal, "handler finished the unary call without a response message"))
        } else {
            call.finish(status)
        }
    }
}

/// Sends the messages of a server-streaming call under backpressure: write while
/// `isWritable`, then wait for `onWritable`.
public final class ServerStreamWriter {
    private let call: ServerCall

    init(call: ServerCall) {
        self.call = call
    }

    /// False while the stream's queue contains its write limit or more, because the peer's
    /// flow-control window or the connection's output buffer is full; also false once the
    /// call has finished or was cancelled.
    public var isWritable: Bool { call.isWritable }

    /// Runs on the loop thread when the queue has drained below half its limit after
    /// `isWritable` was seen false.
    public var onWritable: (() -> Void)? {
        get { call.onWritable }
        set { call.onWritable = newValue }
    }

    /// True once the call finished or was cancelled; writes are then ignored.
    public var isFinished: Bool { call.isFinished }

    /// Queues one message, copying it. Writing while not writable still queues the message,
    /// so a handler that ignores `isWritable` grows the queue without bound.
    public func write(_ message: [UInt8]) {
        call.send(prefixAndBytes: MessageFraming.frame(message), payload: nil)
    }

    /// Queues one message made of `prefix` followed by `payload`. The payload is held by
    /// reference until sent and encrypted straight from its memory, so one output chunk can
    /// go to many subscribers without a copy per subscriber.
    public func write(prefix: [UInt8], payload: SharedBytes) {
        var head = MessageFraming.prefix(length: prefix.count + payload.count)
        head.append(contentsOf: prefix)
        call.send(prefixAndBytes: head, payload: payload)
    }

    /// Ends the stream with `status` after the queued messages.
    public func finish(_ status: Status = .ok) {
        call.finish(status)
    }
}
