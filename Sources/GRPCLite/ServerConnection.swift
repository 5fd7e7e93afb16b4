import CNghttp2
import Reactor

/// The server side of one connection: turns HTTP/2 streams into gRPC calls and routes
/// them through the server's interceptors to its handlers.
final class ServerConnection: Connection {
    unowned let server: GRPCServer
    private let options: GRPCServer.Options
    private var calls: [Int32: ServerCall] = [:]
    private var writableCalls: [ServerCall] = []
    /// Request bytes held across all calls (partial messages and requests not yet handled).
    private(set) var receivedBytesHeld = 0
    private(set) var isAccepted = false
    /// Set when the server is being released: no more callbacks into it.
    private var isDetached = false
    private(set) var isShuttingDown = false

    init(server: GRPCServer, fd: Int32, tls: TLSSession, peerAddress: String) {
        self.server = server
        self.options = server.options
        super.init(
            loop: server.loop, fd: fd, tls: tls, buffers: server.buffers, peerAddress: peerAddress,
            outputLimit: server.options.connectionOutputLimit, connecting: false)
    }

    /// Bytes this connection holds for output: its TLS and socket buffers plus every call's queue.
    var bufferedBytes: Int {
        calls.values.reduce(bufferedOutputBytes) { $0 + $1.outbound.count }
    }

    var activeCallCount: Int { calls.count }

    // MARK: - Connection hooks

    override var isIdle: Bool { calls.isEmpty }

    override func handshakeCompleted(peer: PeerIdentity) -> [(id: Int32, value: UInt32)] {
        isAccepted = true
        if !isDetached {
            server.connectionAccepted(self, peer: peer)
        }
        return [
            (Int32(NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS.rawValue), options.maxConcurrentStreams),
            (Int32(NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE.rawValue), options.initialWindowSize),
            (Int32(NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE.rawValue), UInt32(options.maxHeaderListSize)),
        ]
    }

    override var connectionWindowSize: Int32 { Int32(clamping: options.connectionWindowSize) }

    override func handshakeFailed(stage: State, reason: String) {
        if !isDetached {
            server.connectionRefused(self, reason: reason)
        }
    }

    override func didFlush() {
        guard !writableCalls.isEmpty else { return }
        let ready = writableCalls
        writableCalls.removeAll()
        for call in ready {
            call.notifyWritable()
        }
    }

    override func didClose(reason: String?) {
        let open = calls.values
        calls.removeAll()
        writableCalls.removeAll()
        for call in open {
            call.streamClosed(errorCode: UInt32(NGHTTP2_CANCEL.rawValue))
        }
        if !isDetached {
            server.connectionClosed(self, reason: reason)
        }
    }

    /// Closes the connection without reporting to the server, which is being released.
    func closeDetached(reason: String) {
        isDetached = true
        close(reason: reason)
    }

    /// Sends GOAWAY naming the last stream already received, so calls in flight finish and
    /// the client opens new calls elsewhere (RFC 9113, section 6.8). The connection closes
    /// by itself once its last stream ends.
    func beginShutdown() {
        guard !isShuttingDown else { return }
        isShuttingDown = true
        guard state == .open, let http2 else {
            close(reason: "server shutting down")
            return
        }
        http2.submitGoAway(lastStreamID: http2.lastProcessedStreamID, errorCode: NGHTTP2_NO_ERROR.rawValue)
        flush()
    }

    func markWritable(_ call: ServerCall) {
        writableCalls.append(call)
    }

    // MARK: - Request headers

    override func http2BeginHeaders(stream: Int32) {
        guard calls[stream] == nil else { return }
        calls[stream] = ServerCall(
            stream: stream, connection: self, maxMessageSize: options.maxReceiveMessageSize,
            writeLimit: options.streamWriteLimit)
    }

    override func http2Header(stream: Int32, name: String, value: String) -> Bool {
        guard let call = calls[stream] else { return true }
        if call.context != nil {
            // Trailers from the client carry nothing gRPC uses.
            return true
        }
        call.headerBytes += name.utf8.count + value.utf8.count + 32
        guard call.headerBytes <= options.maxHeaderListSize else { return false }
        call.headers.append((name, value))
        return true
    }

    override func http2HeadersComplete(stream: Int32, endStream: Bool) {
        guard let call = calls[stream] else { return }
        if call.context == nil {
            startCall(call)
        }
        if endStream {
            call.requestEnded = true
            requestEnded(call)
        }
    }

    private func startCall(_ call: ServerCall) {
        var method = ""
        var contentType = ""
        var httpMethod = ""
        var encoding: String?
        var timeout: String?
        var metadata: [(name: String, value: String)] = []
        for (name, value) in call.headers {
            switch name {
            case ":path": method = value
            case ":method": httpMethod = value
            case "content-type": contentType = value
            case "grpc-encoding": encoding = value
            case "grpc-timeout": timeout = value
            default:
                if !name.hasPrefix(":") { metadata.append((name, value)) }
            }
        }
        call.headers = []

        var deadline: UInt64?
        var parsedTimeout: GRPCTimeout?
        if let timeout {
            parsedTimeout = GRPCTimeout(headerValue: timeout)
            if let parsedTimeout {
                deadline =
                    MonotonicClock.nanoseconds() &+ UInt64(max(0, GRPCTimeout.nanoseconds(parsedTimeout.duration)))
            }
        }
        let context = ServerCallContext(
            method: method, peer: peer ?? PeerIdentity(commonName: nil), peerAddress: peerAddress, deadline: deadline,
            metadata: metadata)
        call.context = context

        if let status = ServerConnection.validate(
            httpMethod: httpMethod, contentType: contentType, encoding: encoding, timeout: timeout,
            parsed: parsedTimeout)
        {
            call.finish(status)
            return
        }
        guard server.hasMethod(method) else {
            call.finish(Status(.unimplemented, "unknown method \(method)"))
            return
        }
        if let rejection = server.runInterceptors(context) {
            call.finish(rejection)
            return
        }
        if let parsedTimeout {
            call.deadlineTimer = loop.scheduleTimer(after: parsedTimeout.duration) { [weak call] in
                call?.deadlineExpired()
            }
        }
    }

    /// Checks the request headers that gRPC requires; returns the status to reject with.
    static func validate(
        httpMethod: String, contentType: String, encoding: String?, timeout: String?, parsed: GRPCTimeout?
    ) -> Status? {
        if httpMethod != "POST" {
            return Status(.internal, "invalid HTTP method \(httpMethod): gRPC requests use POST")
        }
        if !(contentType == "application/grpc" || contentType.hasPrefix("application/grpc+")
            || contentType.hasPrefix("application/grpc;"))
        {
            return Status(
                .internal,
                "invalid content-type \"\(contentType)\": expected application/grpc or application/grpc+proto")
        }
        if let encoding, encoding != "identity" {
            return Status(
                .unimplemented,
                "message encoding \"\(encoding)\" is not supported: send messages uncompressed (identity)")
        }
        if let timeout, parsed == nil {
            return Status(
                .internal, "invalid grpc-timeout \"\(timeout)\": expected up to 8 digits and a unit H, M, S, m, u or n")
        }
        return nil
    }

    // MARK: - Request body

    override func http2Data(stream: Int32, bytes: UnsafeRawBufferPointer) {
        guard let call = calls[stream], !call.isFinished, !call.handlerStarted else { return }
        // nghttp2 acknowledges DATA as it arrives, so flow control alone does not bound what
        // many streams with partial messages hold together; this limit does.
        if receivedBytesHeld + bytes.count > options.connectionReceiveLimit {
            release(call)
            call.finish(
                Status(
                    .resourceExhausted,
                    "connection holds more than \(options.connectionReceiveLimit) bytes of unfinished requests"))
            return
        }
        let before = call.heldBytes
        defer { receivedBytesHeld += call.heldBytes - before }
        call.deframer.append(bytes)
        do {
            while let message = try call.deframer.next() {
                if call.request != nil {
                    release(call)
                    call.finish(
                        Status(.internal, "more than one request message for a unary or server-streaming method"))
                    return
                }
                call.request = message
            }
        } catch {
            release(call)
            call.finish(error)
        }
    }

    override func http2EndStream(stream: Int32) {
        guard let call = calls[stream] else { return }
        call.requestEnded = true
        requestEnded(call)
    }

    /// Asks the client to stop sending a request whose response is complete, e.g. after
    /// RESOURCE_EXHAUSTED, with RST_STREAM NO_ERROR (RFC 9113, section 8.1).
    override func http2SentEndStream(stream: Int32) {
        guard let call = calls[stream], !call.requestEnded else { return }
        http2?.resetStream(stream, errorCode: NGHTTP2_NO_ERROR.rawValue)
    }

    private func requestEnded(_ call: ServerCall) {
        guard !call.isFinished, !call.handlerStarted, let context = call.context else { return }
        if call.deframer.bufferedBytes > 0 {
            call.finish(
                Status(.internal, "request ended inside a message (\(call.deframer.bufferedBytes) bytes left over)"))
            return
        }
        guard let request = call.request else {
            call.finish(
                Status(.internal, "request ended without a message: unary and server-streaming methods expect one"))
            return
        }
        release(call)
        call.request = nil
        call.markHandlerStarted()
        server.dispatch(context: context, request: request, call: call)
    }

    // MARK: - Stream end and data

    /// Stops counting a call's request bytes, which it no longer keeps once handled or failed.
    private func release(_ call: ServerCall) {
        receivedBytesHeld -= call.heldBytes
        call.dropRequestBytes()
    }

    override func http2StreamClosed(stream: Int32, errorCode: UInt32) {
        guard let call = calls.removeValue(forKey: stream) else { return }
        release(call)
        call.streamClosed(errorCode: errorCode)
    }

    override func http2ReadData(stream: Int32, maxLength: Int) -> HTTP2DataRead {
        guard let call = calls[stream] else { return .data(length: 0, trailers: []) }
        return call.readData(maxLength: maxLength)
    }

    override func http2SendData(stream: Int32, frameHeader: UnsafeRawBufferPointer, length: Int) -> HTTP2SendResult {
        guard let call = calls[stream] else { return .failed }
        return call.sendData(frameHeader: frameHeader, length: length)
    }
}
