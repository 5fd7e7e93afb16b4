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
    /// The reason connecting or the handshake failed, for the client's error message.
    private(set) var failure: (stage: State, reason: String)?
    /// The reason an open connection closed, nil while open or after an orderly close.
    private(set) var closeReason: String?
    private(set) var receivedGoAway = false
    private(set) var sawResponse = false

    init(
        loop: EventLoop, fd: Int32, tls: TLSSession, buffers: ConnectionBuffers, authority: String, connecting: Bool,
        maxMessageSize: Int,
        streamWindowSize: Int32
    ) {
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

    // MARK: - Calls

    /// Starts a call; `onMessage` returns false to cancel it, and `onFinish` runs once with
    /// the final status (also when the call cannot start).
    /// `timeout` is sent as grpc-timeout and enforced locally after `localTimeout`, which
    /// defaults to the same value (tests lengthen it to see the server enforce the deadline).
    func startCall(
        method: String, request: [UInt8], timeout: Duration?, localTimeout: Duration? = nil,
        onMessage: @escaping ([UInt8]) -> Bool, onFinish: @escaping (Status) -> Void
    ) {
        let call = ClientCall(
            method: method, request: request, maxMessageSize: maxMessageSize, onMessage: onMessage, onFinish: onFinish)
        guard state == .open, let http2, !receivedGoAway else {
            call.finish(Status(.unavailable, "connection to \(authority) is not open"), loop: loop)
            return
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
            return
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

    override func handshakeCompleted(peer: PeerIdentity) -> [(id: Int32, value: UInt32)] {
        [
            (Int32(NGHTTP2_SETTINGS_ENABLE_PUSH.rawValue), 0),
            (Int32(NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE.rawValue), UInt32(streamWindowSize)),
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

    override func http2Header(stream: Int32, name: String, value: String) -> Bool {
        guard let call = calls[stream] else { return true }
        if call.headerBlocks == 0 {
            call.headers.append((name, value))
        } else {
            call.trailers.append((name, value))
        }
        return call.headers.count + call.trailers.count <= 256
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
        guard let call = calls[stream] else { return .failed }
        return sendDataFrame(frameHeader: frameHeader, length: length, from: &call.outbound)
    }
}
