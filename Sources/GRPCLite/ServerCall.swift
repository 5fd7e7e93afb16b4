import Reactor

/// One gRPC call on a server stream: request headers and message in, response headers,
/// messages and trailers out (gRPC over HTTP/2 protocol).
final class ServerCall {
    let stream: Int32
    /// Weak because handlers may keep a writer or responder after the connection is gone.
    private(set) weak var connection: ServerConnection?
    private let writeLimit: Int

    var headers: [HTTP2Header] = []
    var headerBytes = 0
    var deframer: MessageDeframer
    var request: [UInt8]?
    var context: ServerCallContext?
    var deadlineTimer: TimerID?
    var onWritable: (() -> Void)?
    /// The client has sent END_STREAM.
    var requestEnded = false

    private(set) var outbound = OutboundQueue()
    private(set) var finalStatus: Status?
    private var responseStarted = false
    private var isDeferred = false
    private var sawUnwritable = false
    /// Bytes of a DATA frame that nghttp2 packed and then kept after `sendData` returned
    /// would-block; it sends that frame again later, so these bytes must stay queued.
    private var promisedBytes = 0
    private(set) var isStreamClosed = false
    private(set) var handlerStarted = false

    init(stream: Int32, connection: ServerConnection, maxMessageSize: Int, writeLimit: Int) {
        self.stream = stream
        self.connection = connection
        self.deframer = MessageDeframer(maxMessageSize: maxMessageSize)
        self.writeLimit = writeLimit
    }

    /// True once a status is set or the stream closed; nothing more is sent.
    var isFinished: Bool { finalStatus != nil || isStreamClosed || context?.isCancelled == true }

    var isWritable: Bool {
        if isFinished { return false }
        if outbound.count >= writeLimit {
            sawUnwritable = true
            return false
        }
        return true
    }

    /// Request bytes this call holds: a partial message and a request not yet handled.
    var heldBytes: Int { deframer.bufferedBytes + (request?.count ?? 0) }

    func dropRequestBytes() {
        deframer = MessageDeframer(maxMessageSize: deframer.maxMessageSize)
        request = nil
    }

    func markHandlerStarted() {
        handlerStarted = true
    }

    // MARK: - Response

    /// Queues one framed message; `prefixAndBytes` holds the 5-byte gRPC prefix and any
    /// copied bytes, `payload` the bytes held by reference.
    func send(prefixAndBytes: [UInt8], payload: SharedBytes?) {
        guard !isFinished else { return }
        if !startResponse(hasBody: true) { return }
        outbound.append(prefixAndBytes)
        if let payload {
            outbound.append(payload)
        }
        if outbound.count >= writeLimit {
            sawUnwritable = true
        }
        resume()
    }

    /// Sets the final status: trailers follow the queued messages, or a Trailers-Only
    /// response carries it when nothing was sent yet.
    func finish(_ status: Status) {
        guard finalStatus == nil, !isStreamClosed else { return }
        finalStatus = status
        cancelDeadline()
        if !responseStarted {
            responseStarted = true
            var headers = ServerCall.responseHeaders
            headers.append(contentsOf: ServerCall.trailers(for: status))
            submit(headers: headers, hasBody: false)
        } else {
            resume()
        }
    }

    private func startResponse(hasBody: Bool) -> Bool {
        guard !responseStarted else { return true }
        responseStarted = true
        return submit(headers: ServerCall.responseHeaders, hasBody: hasBody)
    }

    @discardableResult
    private func submit(headers: [HTTP2Header], hasBody: Bool) -> Bool {
        guard let connection, let http2 = connection.http2 else { return false }
        do {
            try http2.submitResponse(stream: stream, headers: headers, hasBody: hasBody)
        } catch {
            // The stream is gone (closed by the peer); the close callback cleans up.
            return false
        }
        connection.scheduleFlush()
        return true
    }

    private func resume() {
        if isDeferred {
            isDeferred = false
            connection?.http2?.resumeData(stream: stream)
        }
        connection?.scheduleFlush()
    }

    static let responseHeaders: [HTTP2Header] = [(":status", "200"), ("content-type", "application/grpc")]

    /// The longest encoded `grpc-message` sent. nghttp2 refuses a header block larger than the
    /// peer's limit (64 KiB by default), which would leave the call without trailers, so longer
    /// messages are cut to this size.
    static let maxEncodedMessageBytes = 8192

    static func trailers(for status: Status) -> [HTTP2Header] {
        var trailers: [HTTP2Header] = [("grpc-status", String(status.code.rawValue))]
        if !status.message.isEmpty {
            let message = PercentEncoding.encode(status.message, maxBytes: maxEncodedMessageBytes)
            trailers.append(("grpc-message", message))
        }
        return trailers
    }

    // MARK: - nghttp2 data source

    /// Returns the next DATA frame's length, with the trailers once the queue is empty
    /// after `finish`; defers while the handler has not written more.
    func readData(maxLength: Int) -> HTTP2DataRead {
        let length = min(maxLength, outbound.count)
        if let finalStatus, length == outbound.count {
            return .data(length: length, trailers: ServerCall.trailers(for: finalStatus))
        }
        if length == 0 {
            isDeferred = true
            return .deferred
        }
        return .data(length: length, trailers: nil)
    }

    /// Writes a DATA frame: nghttp2's 9-byte header, then `length` queued bytes.
    func sendData(frameHeader: UnsafeRawBufferPointer, length: Int) -> HTTP2SendResult {
        guard let connection else { return .resetStream }
        let result = connection.sendDataFrame(frameHeader: frameHeader, length: length, from: &outbound)
        promisedBytes = result == .wouldBlock ? length : 0
        if result == .sent && sawUnwritable && outbound.count < writeLimit / 2 && !isFinished {
            sawUnwritable = false
            connection.markWritable(self)
        }
        return result
    }

    // MARK: - Ending

    /// Records the stream's end; a stream reset before the status was sent cancels the call.
    func streamClosed(errorCode: UInt32) {
        isStreamClosed = true
        cancelDeadline()
        outbound.removeAll()
        onWritable = nil
        if finalStatus == nil || errorCode != 0 {
            context?.cancel()
        }
        // Handlers' closures often capture the writer, which refers back to this call.
        context?.onCancel = nil
    }

    func deadlineExpired() {
        deadlineTimer = nil
        guard !isFinished else { return }
        context?.cancel()
        finalStatus = nil
        finishAfterCancel(Status(.deadlineExceeded, "deadline exceeded"))
    }

    /// Sends a status after `context.cancel()` made `isFinished` true.
    private func finishAfterCancel(_ status: Status) {
        guard finalStatus == nil, !isStreamClosed else { return }
        finalStatus = status
        // A frame nghttp2 already holds still goes out; the rest of the queue, which may be
        // the tail of a message, is dropped before the trailers.
        outbound.removeAll(keepingFirst: promisedBytes)
        if !responseStarted {
            responseStarted = true
            var headers = ServerCall.responseHeaders
            headers.append(contentsOf: ServerCall.trailers(for: status))
            submit(headers: headers, hasBody: false)
        } else {
            resume()
        }
    }

    func cancelDeadline() {
        if let timer = deadlineTimer {
            connection?.loop.cancelTimer(timer)
            deadlineTimer = nil
        }
    }

    /// Fires `onWritable` if the handler still waits for it.
    func notifyWritable() {
        guard !isFinished, let handler = onWritable else { return }
        handler()
    }
}
