import CNghttp2
import Glibc
import Reactor

/// The client side of one connection: opens a stream per call and turns the response
/// into messages and a `Status`. Used on the loop thread; `GRPCClient` wraps it in
/// blocking calls.
final class ClientConnection: Connection {
    let authority: String
    let maxMessageSize: Int
    /// SETTINGS_INITIAL_WINDOW_SIZE: response bytes a stream may have in flight.
    let streamWindowSize: Int32
    private var calls: [Int32: ClientCall] = [:]
    private let keepaliveSettings: (interval: Duration, timeout: Duration)?
    /// The reason connecting or the handshake failed, for the client's error message.
    private(set) var failure: (stage: State, reason: String)?
    /// The reason an open connection closed, nil while open or after an orderly close.
    private(set) var closeReason: String?
    private(set) var receivedGoAway = false
    private(set) var sawResponse = false
    /// Runs on each SETTINGS frame from the server; the first one means calls may start
    /// within the server's SETTINGS_MAX_CONCURRENT_STREAMS.
    var onSettings: (() -> Void)?
    /// Runs once when the connection closes, after its calls have finished; nil after an
    /// orderly close.
    var onClose: ((String?) -> Void)?

    init(
        loop: EventLoop, fd: Int32, tls: TLSSession, buffers: ConnectionBuffers, authority: String, connecting: Bool,
        maxMessageSize: Int,
        streamWindowSize: Int32, keepalive: (interval: Duration, timeout: Duration)? = nil
    ) {
        self.keepaliveSettings = keepalive
        self.authority = authority
        self.maxMessageSize = maxMessageSize
        self.streamWindowSize = streamWindowSize
        super.init(
            loop: loop, fd: fd, tls: tls, buffers: buffers, peerAddress: authority, outputLimit: 256 * 1024,
            connecting: connecting)
    }

    /// True while new calls may start on this connection.
    var isUsable: Bool { state != .closed && !receivedGoAway }

    var activeCallCount: Int { calls.count }

    /// The number of calls the server allows in flight at once, from its SETTINGS frame.
    var maxConcurrentCalls: Int { http2.map { Int($0.remoteMaxConcurrentStreams) } ?? 0 }

    // MARK: - Calls

    /// Starts a call; `onMessage` returns false to cancel it, and `onFinish` runs once with
    /// the final status (also when the call cannot start).
    /// `timeout` is sent as grpc-timeout and enforced locally after `localTimeout`, which
    /// defaults to the same value (tests lengthen it to see the server enforce the deadline).
    @discardableResult
    func startCall(
        method: String, request: [UInt8], timeout: Duration?, localTimeout: Duration? = nil,
        acceptsPlainHTTPResponses: Bool = false, onMessage: @escaping ([UInt8]) -> Bool,
        onFinish: @escaping (Status) -> Void
    ) -> ClientCall {
        let call = ClientCall(
            method: method, request: request, maxMessageSize: maxMessageSize,
            acceptsPlainHTTPResponses: acceptsPlainHTTPResponses, onMessage: onMessage, onFinish: onFinish)
        guard state == .open, let http2, !receivedGoAway else {
            call.finish(Status(.unavailable, "connection to \(authority) is not open"), loop: loop)
            return call
        }
        var headers: [HTTP2Header] = [
            (":method", "POST"), (":scheme", "https"), (":path", method.hasPrefix("/") ? method : "/" + method),
            (":authority", authority), ("content-type", "application/grpc"), ("te", "trailers"),
            ("user-agent", "grpclite/1"),
        ]
        if let timeout {
            headers.append(("grpc-timeout", GRPCTimeout(timeout).headerValue))
        }
        do {
            call.stream = try http2.submitRequest(headers: headers)
        } catch {
            call.finish(Status(.unavailable, "cannot start call \(method) on \(authority): \(error)"), loop: loop)
            return call
        }
        calls[call.stream] = call
        if let timeout = localTimeout ?? timeout {
            call.deadlineTimer = loop.scheduleTimer(after: timeout) { [weak self, weak call] in
                guard let self, let call else { return }
                call.deadlineTimer = nil
                self.cancel(call, status: Status(.deadlineExceeded, "deadline of \(timeout) exceeded for \(method)"))
            }
        }
        scheduleFlush()
        return call
    }

    /// Resets the call's stream with CANCEL (RFC 9113, section 8.7) and finishes it with `status`.
    func cancel(_ call: ClientCall, status: Status) {
        guard !call.isFinished else { return }
        http2?.resetStream(call.stream, errorCode: NGHTTP2_CANCEL.rawValue)
        calls.removeValue(forKey: call.stream)
        call.finish(status, loop: loop)
        scheduleFlush()
    }

    // MARK: - Connection hooks

    override var isIdle: Bool { calls.isEmpty }

    override var keepalive: (interval: Duration, timeout: Duration)? { keepaliveSettings }

    override func handshakeCompleted(peer: PeerIdentity) -> [(id: Int32, value: UInt32)] {
        [
            (Int32(NGHTTP2_SETTINGS_ENABLE_PUSH.rawValue), 0),
            (Int32(NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE.rawValue), UInt32(streamWindowSize)),
            (Int32(NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE.rawValue), UInt32(ClientConnection.maxHeaderListSize)),
        ]
    }

    override var connectionWindowSize: Int32 { max(16 * 1024 * 1024, streamWindowSize) }

    override func handshakeFailed(stage: State, reason: String) {
        failure = (stage, reason)
    }

    override func didClose(reason: String?) {
        closeReason = reason
        let open = calls.values
        calls.removeAll()
        for call in open {
            call.finish(Status(.unavailable, closedMessage(reason)), loop: loop)
        }
        let handler = onClose
        onClose = nil
        onSettings = nil
        handler?(reason)
    }

    private func closedMessage(_ reason: String?) -> String {
        guard let reason else { return "connection to \(authority) closed" }
        if !sawResponse && reason.contains("alert") {
            // In TLS 1.3 the server checks our certificate after our side of the handshake
            // has completed, so its rejection arrives as an alert on the first read.
            return "server \(authority) rejected our client certificate (\(reason)): "
                + "use a certificate and key signed by the CA the server trusts"
        }
        return "connection to \(authority) closed: \(reason)"
    }

    // MARK: - Response

    /// The largest response header list (headers and trailers together) a call accepts, in
    /// bytes counted as RFC 9113 section 6.5.2 does: name plus value plus 32 per field.
    static let maxHeaderListSize = 64 * 1024

    override func http2Header(stream: Int32, name: String, value: String) -> Bool {
        guard let call = calls[stream] else { return true }
        call.headerBytes += name.utf8.count + value.utf8.count + 32
        guard call.headerBytes <= ClientConnection.maxHeaderListSize else {
            // nghttp2 resets the stream; http2StreamClosed reports this as the cause.
            call.headerListTooLarge = true
            return false
        }
        if call.headerBlocks == 0 {
            call.headers.append((name, value))
        } else {
            call.trailers.append((name, value))
        }
        return true
    }

    override func http2HeadersComplete(stream: Int32, endStream: Bool) {
        guard let call = calls[stream] else { return }
        sawResponse = true
        call.headerBlocks += 1
        if endStream {
            complete(call)
        }
    }

    override func http2Data(stream: Int32, bytes: UnsafeRawBufferPointer) {
        guard let call = calls[stream], !call.isFinished else { return }
        call.deframer.append(bytes)
        do {
            while let message = try call.deframer.next() {
                call.messageCount += 1
                if !call.onMessage(message) {
                    cancel(call, status: Status(.cancelled, "cancelled by the client"))
                    return
                }
                // The handler may have cancelled the call itself, through a ClientCallHandle.
                if call.isFinished { return }
            }
        } catch {
            cancel(call, status: Status(error.code, "response from \(authority): \(error.message)"))
        }
    }

    override func http2EndStream(stream: Int32) {
        guard let call = calls[stream] else { return }
        complete(call)
    }

    private func complete(_ call: ClientCall) {
        calls.removeValue(forKey: call.stream)
        var status = call.statusFromResponse()
        if status.isOK && call.deframer.bufferedBytes > 0 {
            status = Status(.internal, "response from \(authority) ended inside a message")
        }
        call.finish(status, loop: loop)
    }

    override func http2StreamClosed(stream: Int32, errorCode: UInt32) {
        guard let call = calls.removeValue(forKey: stream) else { return }
        if call.headerListTooLarge {
            call.finish(
                Status(
                    .resourceExhausted,
                    "response from \(authority) has more than \(ClientConnection.maxHeaderListSize) bytes of headers"),
                loop: loop)
            return
        }
        let status: Status
        switch errorCode {
        case NGHTTP2_NO_ERROR.rawValue:
            status = Status(.internal, "server \(authority) closed the stream without a status")
        case NGHTTP2_REFUSED_STREAM.rawValue:
            status = Status(.unavailable, "server \(authority) refused the stream: it is shutting down or busy, retry")
        case NGHTTP2_CANCEL.rawValue:
            status = Status(.cancelled, "server \(authority) cancelled the stream")
        case NGHTTP2_ENHANCE_YOUR_CALM.rawValue:
            status = Status(.resourceExhausted, "server \(authority) reset the stream: too many requests")
        default:
            status = Status(.internal, "server \(authority) reset the stream with HTTP/2 error \(errorCode)")
        }
        call.finish(status, loop: loop)
    }

    override func http2SettingsReceived() {
        onSettings?()
    }

    override func http2GoAway(lastStreamID: Int32, errorCode: UInt32) {
        receivedGoAway = true
    }

    override func http2ReadData(stream: Int32, maxLength: Int) -> HTTP2DataRead {
        guard let call = calls[stream] else { return .data(length: 0, trailers: []) }
        let length = min(maxLength, call.outbound.count)
        // The request is complete from the start, so its last DATA frame ends the stream.
        return .data(length: length, trailers: length == call.outbound.count ? [] : nil)
    }

    override func http2SendData(stream: Int32, frameHeader: UnsafeRawBufferPointer, length: Int) -> HTTP2SendResult {
        // The call may have ended (response complete, cancelled) while nghttp2 held its frame.
        guard let call = calls[stream] else { return .resetStream }
        return sendDataFrame(frameHeader: frameHeader, length: length, from: &call.outbound)
    }
}
