import Glibc
import Reactor

/// A non-blocking gRPC client connection over HTTP/2 and mutual TLS 1.3 on the caller's
/// `EventLoop`: many calls share one connection as HTTP/2 streams (RFC 9113, section 5).
/// Results arrive through callbacks on the loop thread, after the method that started the
/// call has returned, except when nghttp2 rejects the request outright.
///
/// Not thread-safe: create, use and close it on the loop's thread. Calls beyond the
/// server's SETTINGS_MAX_CONCURRENT_STREAMS, and calls started before the handshake ends,
/// wait in a queue of at most `Options.maxQueuedCalls`. Flow control is nghttp2's: the
/// client acknowledges response bytes (WINDOW_UPDATE) as it consumes them.
public final class GRPCChannel {
    public let host: String
    public let port: UInt16
    /// Runs once when the connection closes: nil after `close()` or an orderly close by the
    /// server, else an UNAVAILABLE status naming the cause (connect refused, handshake failed,
    /// connection lost). Calls in flight have finished by then.
    public var onClose: ((Status?) -> Void)?

    private let loop: EventLoop
    private let options: GRPCClient.Options
    private let serverName: String
    private let authority: String
    private var connection: ClientConnection?
    private var isOpen = false
    /// The status every new call fails with, set once the connection failed or closed.
    private var failure: Status?
    /// Calls in flight on the connection, counted here because nghttp2 queues streams past
    /// the server's limit without bound.
    private var activeCalls = 0
    private var queue: [QueuedCall] = []
    private var queueHead = 0
    private var queuedCount = 0

    /// Loads the TLS files, throwing `TLSError` when one is missing or invalid, and starts
    /// connecting to `host:port` (getaddrinfo(3), then a non-blocking connect(2) to the first
    /// address). Connect and handshake failures do not throw: the calls fail with UNAVAILABLE
    /// and `onClose` reports the status. The server certificate must carry `tls.serverName`,
    /// or `host` when that is nil.
    /// NOTE: getaddrinfo blocks the loop for a name that needs DNS; pass an IP literal on a
    /// loop that serves other work.
    public init(
        loop: EventLoop, host: String, port: UInt16, tls: TLSConfiguration, options: GRPCClient.Options = .init()
    ) throws {
        self.loop = loop
        self.host = host
        self.port = port
        self.options = options
        self.serverName = tls.serverName ?? host
        self.authority = host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
        let context = try TLSContext(configuration: tls, isServer: false)
        connect(context: context)
    }

    /// Closes the connection without GOAWAY if `close()` was not called. Calls in flight and
    /// queued finish with UNAVAILABLE, and `onClose` does not run.
    deinit {
        onClose = nil
        if let connection, connection.state != .closed {
            connection.onClose = nil
            connection.close(reason: nil)
        }
        failQueuedCalls(Status(.unavailable, "channel to \(authority) released while calls were queued"))
    }

    /// True once the server's HTTP/2 SETTINGS arrived after the TLS handshake, until the
    /// connection closes.
    public var isConnected: Bool { isOpen && failure == nil }

    /// Starts a unary call; `completion` gets the response message or the failure status.
    /// `timeout` becomes the deadline, sent as grpc-timeout and enforced locally, and it
    /// counts from this call, including time spent in the queue.
    ///
    /// With `acceptsPlainHTTPResponses`, a response with HTTP status 200 and no grpc-status
    /// counts as OK, for plain HTTP/2 servers such as nghttpd serving a file. Its body, if
    /// any, must still be gRPC-framed messages. The flag is off by default because a gRPC
    /// server must send a status (gRPC over HTTP/2, "Responses").
    @discardableResult
    public func startUnary(
        _ method: String, request: [UInt8], timeout: Duration?, acceptsPlainHTTPResponses: Bool = false,
        completion: @escaping (Result<[UInt8], Status>) -> Void
    ) -> ClientCallHandle {
        var response: [UInt8]?
        var count = 0
        let authority = self.authority
        let call = QueuedCall(
            method: method, request: request, timeout: timeout, acceptsPlainHTTPResponses: acceptsPlainHTTPResponses,
            onMessage: { message in
                count += 1
                response = message
                return true
            },
            onFinish: { status in
                guard status.isOK else {
                    completion(.failure(status))
                    return
                }
                if count == 0 && acceptsPlainHTTPResponses {
                    completion(.success([]))
                    return
                }
                guard count == 1, let response else {
                    completion(
                        .failure(
                            Status(
                                .internal,
                                "server \(authority) sent \(count) messages for unary method \(method), expected 1")))
                    return
                }
                completion(.success(response))
            })
        return start(call)
    }

    /// Starts a server-streaming call: `onMessage` gets each response message as it arrives,
    /// then `onFinish` the final status once. `ClientCallHandle.cancel()` ends it early with
    /// CANCELLED. `timeout` works as in `startUnary`.
    @discardableResult
    public func startServerStreaming(
        _ method: String, request: [UInt8], timeout: Duration?, onMessage: @escaping ([UInt8]) -> Void,
        onFinish: @escaping (Status) -> Void
    ) -> ClientCallHandle {
        let call = QueuedCall(
            method: method, request: request, timeout: timeout, acceptsPlainHTTPResponses: false,
            onMessage: { message in
                onMessage(message)
                return true
            }, onFinish: onFinish)
        return start(call)
    }

    /// Sends GOAWAY and a TLS close_notify and closes the connection. Calls in flight or
    /// queued finish with UNAVAILABLE, then `onClose` runs with nil. Safe to call twice.
    public func close() {
        guard failure == nil else { return }
        guard let connection, connection.state != .closed else {
            connectionClosed(status: nil)
            return
        }
        connection.closeGracefully()
    }

    // MARK: - Connecting

    private func connect(context: TLSContext) {
        let address: Socket.Address
        do {
            guard let first = try Socket.resolve(host: host, port: port).first else {
                failLater(Status(.unavailable, "no address for \(host): check the server address"))
                return
            }
            address = first
        } catch {
            failLater(Status(.unavailable, "\(error): check the server address"))
            return
        }

        let fd: Int32
        let connected: Bool
        do {
            fd = try Socket.makeSocket(family: address.family)
        } catch {
            failLater(Status(.unavailable, "cannot create a socket: \(error)"))
            return
        }
        do {
            connected = try Socket.connect(fd, to: address)
        } catch {
            Syscall.close(fd)
            failLater(
                GRPCClient.connectStatus(
                    errno: error.errno, reason: error.description, authority: authority,
                    connectTimeout: options.connectTimeout))
            return
        }

        let connection: ClientConnection
        do {
            let tls = try TLSSession(context: context, serverName: serverName)
            // NOTE: each channel has its own 128 KiB of read buffers. GRPCClient's connections
            // share one set, but sharing them between channels would need state per loop.
            connection = ClientConnection(
                loop: loop, fd: fd, tls: tls, buffers: ConnectionBuffers(), authority: authority,
                connecting: !connected, maxMessageSize: options.maxReceiveMessageSize,
                streamWindowSize: options.initialWindowSize,
                keepalive: options.keepaliveInterval.map { ($0, options.keepaliveTimeout) })
        } catch {
            Syscall.close(fd)
            failLater(Status(.unavailable, "\(error)"))
            return
        }
        // Calls wait for the server's SETTINGS, so the first ones respect its stream limit.
        connection.onSettings = { [unowned self] in
            self.isOpen = true
            self.startQueuedCalls()
        }
        connection.onClose = { [unowned self] reason in
            self.connectionClosed(status: self.closeStatus(reason: reason))
        }
        self.connection = connection
        do {
            try connection.start(handshakeTimeout: options.connectTimeout)
        } catch {
            connection.close(reason: "\(error)")
        }
    }

    /// Returns the status for the connection's close: nil after an orderly close of an open
    /// connection, else UNAVAILABLE with the cause.
    private func closeStatus(reason: String?) -> Status? {
        guard let connection else { return nil }
        if isOpen {
            return reason.map { Status(.unavailable, "connection to \(authority) closed: \($0)") }
        }
        guard let failure = connection.failure else {
            return Status(.unavailable, "connection to \(authority) closed during the TLS handshake")
        }
        if failure.stage == .connecting {
            return GRPCClient.connectStatus(
                errno: connection.connectErrno, reason: failure.reason, authority: authority,
                connectTimeout: options.connectTimeout)
        }
        return GRPCClient.handshakeStatus(failure.reason, authority: authority, serverName: serverName)
    }

    /// Reports a failure found inside `init` after the current batch, once the caller could
    /// set `onClose` and start calls.
    private func failLater(_ status: Status) {
        failure = status
        loop.executeAfterBatch { [weak self] in
            guard let self else { return }
            self.failQueuedCalls(status)
            self.onClose?(status)
            self.onClose = nil
        }
    }

    private func connectionClosed(status: Status?) {
        let callStatus = status ?? Status(.unavailable, "connection to \(authority) closed")
        failure = callStatus
        failQueuedCalls(callStatus)
        let handler = onClose
        onClose = nil
        handler?(status)
    }

    // MARK: - Calls

    private func start(_ call: QueuedCall) -> ClientCallHandle {
        let handle = ClientCallHandle()
        call.handle = handle
        if let failure {
            finishLater(call, failure)
        } else if canStartNow && queuedCount == 0 {
            dispatch(call)
        } else if queuedCount >= options.maxQueuedCalls {
            finishLater(
                call,
                Status(
                    .resourceExhausted,
                    "\(queuedCount) calls already wait for a stream on \(authority): "
                        + "raise GRPCClient.Options.maxQueuedCalls or start fewer calls at once"))
        } else {
            enqueue(call)
        }
        return handle
    }

    private var canStartNow: Bool {
        guard isOpen, let connection, connection.isUsable else { return false }
        return activeCalls < connection.maxConcurrentCalls
    }

    private func dispatch(_ call: QueuedCall) {
        guard let connection else { return }
        var timeout = call.timeout
        if let deadline = call.deadline {
            let remaining = Int64(bitPattern: deadline &- MonotonicClock.nanoseconds())
            guard remaining > 0 else {
                finishLater(call, Status(.deadlineExceeded, "deadline of \(call.timeout!) exceeded for \(call.method)"))
                return
            }
            timeout = .nanoseconds(remaining)
        }

        activeCalls += 1
        let started = connection.startCall(
            method: call.method, request: call.request, timeout: timeout,
            acceptsPlainHTTPResponses: call.acceptsPlainHTTPResponses, onMessage: call.onMessage
        ) { [weak self] status in
            call.finish(status)
            guard let self else { return }
            self.activeCalls -= 1
            self.startQueuedCalls()
        }
        call.handle?.cancelAction = { [weak connection, weak started] in
            guard let connection, let started else { return }
            connection.cancel(started, status: Status(.cancelled, "cancelled by the client"))
        }
    }

    private func enqueue(_ call: QueuedCall) {
        queue.append(call)
        queuedCount += 1
        call.handle?.cancelAction = { [weak self, weak call] in
            guard let self, let call else { return }
            self.dequeue(call, status: Status(.cancelled, "cancelled by the client"))
        }
        if let timeout = call.timeout {
            call.timer = loop.scheduleTimer(after: timeout) { [weak self, weak call] in
                guard let self, let call else { return }
                call.timer = nil
                self.dequeue(
                    call, status: Status(.deadlineExceeded, "deadline of \(timeout) exceeded for \(call.method)"))
            }
        }
    }

    /// Finishes a queued call; its slot is skipped when the queue reaches it.
    private func dequeue(_ call: QueuedCall, status: Status) {
        guard call.isQueued else { return }
        call.isQueued = false
        queuedCount -= 1
        call.cancelTimer(loop: loop)
        call.finish(status)
    }

    private func startQueuedCalls() {
        while queuedCount > 0 && canStartNow {
            let call = queue[queueHead]
            queueHead += 1
            guard call.isQueued else { continue }
            call.isQueued = false
            queuedCount -= 1
            call.cancelTimer(loop: loop)
            dispatch(call)
        }
        compactQueue()
    }

    private func failQueuedCalls(_ status: Status) {
        let waiting = queue[queueHead...].filter(\.isQueued)
        queue.removeAll()
        queueHead = 0
        queuedCount = 0
        for call in waiting {
            call.isQueued = false
            call.cancelTimer(loop: loop)
            call.finish(status)
        }
    }

    private func compactQueue() {
        if queueHead == queue.count {
            queue.removeAll(keepingCapacity: true)
            queueHead = 0
        } else if queueHead > 1024 && queueHead * 2 > queue.count {
            queue.removeFirst(queueHead)
            queueHead = 0
        }
    }

    /// Finishes `call` after the current batch, so no completion runs inside `start`.
    private func finishLater(_ call: QueuedCall, _ status: Status) {
        loop.executeAfterBatch {
            call.finish(status)
        }
    }
}

/// A call started on a `GRPCChannel`, for cancelling it.
public final class ClientCallHandle {
    fileprivate var cancelAction: (() -> Void)?

    init() {}

    /// Cancels the call: a started call's stream is reset with RST_STREAM CANCEL (RFC 9113,
    /// section 8.7), so the server sees the cancel, and a queued call leaves the queue. The
    /// completion then runs with CANCELLED, unless the call had already finished, in which
    /// case this does nothing. Loop thread only.
    public func cancel() {
        let action = cancelAction
        cancelAction = nil
        action?()
    }
}

/// A call waiting for a stream, or started, with what it needs to start late.
private final class QueuedCall {
    let method: String
    let request: [UInt8]
    let timeout: Duration?
    /// The CLOCK_MONOTONIC deadline in nanoseconds, taken when the caller started the call.
    let deadline: UInt64?
    let acceptsPlainHTTPResponses: Bool
    let onMessage: ([UInt8]) -> Bool
    private var onFinish: ((Status) -> Void)?
    weak var handle: ClientCallHandle?
    var timer: TimerID?
    var isQueued = true

    init(
        method: String, request: [UInt8], timeout: Duration?, acceptsPlainHTTPResponses: Bool,
        onMessage: @escaping ([UInt8]) -> Bool, onFinish: @escaping (Status) -> Void
    ) {
        self.method = method
        self.request = request
        self.timeout = timeout
        self.deadline = timeout.map { MonotonicClock.nanoseconds() &+ UInt64(max(0, GRPCTimeout.nanoseconds($0))) }
        self.acceptsPlainHTTPResponses = acceptsPlainHTTPResponses
        self.onMessage = onMessage
        self.onFinish = onFinish
    }

    /// Reports `status` once and drops the handle's cancel action.
    func finish(_ status: Status) {
        handle?.cancelAction = nil
        let handler = onFinish
        onFinish = nil
        handler?(status)
    }

    func cancelTimer(loop: EventLoop) {
        if let timer {
            loop.cancelTimer(timer)
            self.timer = nil
        }
    }
}
