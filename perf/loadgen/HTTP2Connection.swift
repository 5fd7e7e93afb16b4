import CNghttp2
import Glibc
import Reactor

/// An HTTP/2 client connection over TLS driven by nghttp2 (RFC 9113), multiplexing any
/// number of `HTTP2Call`s on one `ClientTransport`. Used by every benchmark against jobd
/// (gRPC) and against nghttpd (plain HTTP/2 with the same bytes).
///
/// Not thread-safe: used only on the loop's thread.
final class HTTP2Connection {
    let transport: ClientTransport
    private let authority: String
    private var session: OpaquePointer?
    private var calls: [Int32: HTTP2Call] = [:]
    private var flushScheduled = false
    private var receiveTime: UInt64 = 0
    private(set) var isOpen = false

    /// Runs once when TLS and the HTTP/2 preface are done and calls may start.
    var onOpen: (() -> Void)?
    /// Runs once when the connection closes, after every open call has been finished.
    var onClose: ((String?) -> Void)?

    init(
        loop: EventLoop, host: String, port: UInt16, tls: TLSClientContext, readBuffer: UnsafeMutableRawBufferPointer
    ) throws {
        authority = "\(host):\(port)"
        transport = try ClientTransport(loop: loop, host: host, port: port, tls: tls, readBuffer: readBuffer)
        transport.onOpen = { [unowned self] in self.startSession() }
        transport.onData = { [unowned self] bytes, time in self.receive(bytes, at: time) }
        transport.onClose = { [unowned self] reason in self.didClose(reason: reason) }
    }

    deinit {
        if let session {
            nghttp2_session_del(session)
        }
    }

    /// Submits `call` as a POST to its path. Returns false when the connection is not open
    /// or nghttp2 rejects the request. The call finishes through its `onFinish`.
    @discardableResult
    func start(_ call: HTTP2Call) -> Bool {
        guard isOpen, let session else { return false }
        // The same headers go to nghttpd, so both servers parse the same request.
        let headers: [(String, String)] = [
            (":method", "POST"), (":scheme", "https"), (":path", call.path), (":authority", authority),
            ("content-type", "application/grpc"), ("te", "trailers"), ("user-agent", "jobworker-loadgen"),
        ]

        var provider = nghttp2_data_provider()
        provider.read_callback = { session, stream, buffer, length, flags, _, userData in
            let connection = Unmanaged<HTTP2Connection>.fromOpaque(userData!).takeUnretainedValue()
            return connection.readBody(stream: stream, into: buffer!, length: length, flags: flags!)
        }
        let stream = withNameValuePairs(headers) { pairs, count in
            nghttp2_submit_request(session, nil, pairs, count, &provider, nil)
        }
        guard stream > 0 else { return false }
        call.stream = stream
        calls[stream] = call
        scheduleFlush()
        return true
    }

    /// Closes the connection. Open calls finish with the reason "closed by the client".
    func close() {
        transport.close(reason: nil)
    }

    // MARK: - Session

    private func startSession() {
        guard transport.negotiatedProtocol == "h2" else {
            transport.close(reason: "server did not select ALPN h2")
            return
        }
        var callbacks: OpaquePointer?
        nghttp2_session_callbacks_new(&callbacks)
        defer { nghttp2_session_callbacks_del(callbacks) }
        installCallbacks(callbacks)
        nghttp2_session_client_new(&session, callbacks, Unmanaged.passUnretained(self).toOpaque())

        // Large receive windows keep flow control from pacing the output benchmark. The
        // connection window is raised separately (RFC 9113, section 6.9.2).
        var settings = [
            nghttp2_settings_entry(settings_id: Int32(NGHTTP2_SETTINGS_ENABLE_PUSH.rawValue), value: 0),
            nghttp2_settings_entry(settings_id: Int32(NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE.rawValue), value: 16 << 20),
        ]
        nghttp2_submit_settings(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), &settings, settings.count)
        nghttp2_session_set_local_window_size(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), 0, 1 << 30)
        isOpen = true
        scheduleFlush()
        onOpen?()
    }

    private func installCallbacks(_ callbacks: OpaquePointer?) {
        nghttp2_session_callbacks_set_on_header_callback(callbacks) {
            _, frame, name, nameLength, value, valueLength, _, userData in
            let connection = Unmanaged<HTTP2Connection>.fromOpaque(userData!).takeUnretainedValue()
            guard let frame, let call = connection.calls[frame.pointee.hd.stream_id] else { return 0 }
            let nameText = String(decoding: UnsafeRawBufferPointer(start: name, count: nameLength), as: UTF8.self)
            let valueText = String(decoding: UnsafeRawBufferPointer(start: value, count: valueLength), as: UTF8.self)
            switch nameText {
            case ":status": call.httpStatus = Int(valueText) ?? 0
            case "grpc-status": call.grpcStatus = Int(valueText)
            case "grpc-message": call.grpcMessage = valueText
            default: break
            }
            return 0
        }
        nghttp2_session_callbacks_set_on_data_chunk_recv_callback(callbacks) {
            session, _, stream, data, length, userData in
            let connection = Unmanaged<HTTP2Connection>.fromOpaque(userData!).takeUnretainedValue()
            guard let call = connection.calls[stream] else { return 0 }
            if !call.receive(UnsafeRawBufferPointer(start: data, count: length), at: connection.receiveTime) {
                nghttp2_submit_rst_stream(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), stream, NGHTTP2_CANCEL.rawValue)
            }
            return 0
        }
        nghttp2_session_callbacks_set_on_stream_close_callback(callbacks) { _, stream, errorCode, userData in
            let connection = Unmanaged<HTTP2Connection>.fromOpaque(userData!).takeUnretainedValue()
            guard let call = connection.calls.removeValue(forKey: stream) else { return 0 }
            call.onFinish?(call, errorCode == 0 ? nil : "stream reset with HTTP/2 error \(errorCode)")
            return 0
        }
    }

    private func readBody(
        stream: Int32, into buffer: UnsafeMutablePointer<UInt8>, length: Int, flags: UnsafeMutablePointer<UInt32>
    ) -> Int {
        guard let call = calls[stream] else {
            flags.pointee |= NGHTTP2_DATA_FLAG_EOF.rawValue
            return 0
        }
        let count = min(length, call.body.count - call.bodyOffset)
        call.body.withUnsafeBytes { bytes in
            UnsafeMutableRawPointer(buffer).copyMemory(from: bytes.baseAddress! + call.bodyOffset, byteCount: count)
        }
        call.bodyOffset += count
        if call.bodyOffset == call.body.count {
            flags.pointee |= NGHTTP2_DATA_FLAG_EOF.rawValue
        }
        return count
    }

    // MARK: - Input and output

    private func receive(_ bytes: UnsafeRawBufferPointer, at time: UInt64) {
        guard let session else { return }
        receiveTime = time
        let result = nghttp2_session_mem_recv(
            session, bytes.baseAddress?.assumingMemoryBound(to: UInt8.self), bytes.count)
        if result < 0 {
            transport.close(reason: "HTTP/2 error: \(String(cString: nghttp2_strerror(Int32(result))))")
            return
        }
        scheduleFlush()
    }

    private func scheduleFlush() {
        guard !flushScheduled else { return }
        flushScheduled = true
        transport.loop.executeAfterBatch { [weak self] in
            guard let self else { return }
            self.flushScheduled = false
            self.flush()
        }
    }

    private func flush() {
        guard let session, transport.state == .open else { return }
        while true {
            var data: UnsafePointer<UInt8>?
            let length = nghttp2_session_mem_send(session, &data)
            if length < 0 {
                transport.close(reason: "HTTP/2 error: \(String(cString: nghttp2_strerror(Int32(length))))")
                return
            }
            if length == 0 { break }
            transport.send(UnsafeRawBufferPointer(start: data, count: length))
        }
        if nghttp2_session_want_read(session) == 0 && nghttp2_session_want_write(session) == 0 {
            transport.close(reason: "HTTP/2 session ended (GOAWAY)")
        }
    }

    private func didClose(reason: String?) {
        isOpen = false
        let open = calls.values
        calls.removeAll()
        for call in open {
            call.onFinish?(call, reason ?? "closed by the client")
        }
        onClose?(reason)
        onClose = nil
        onOpen = nil
    }
}

/// Calls `body` with nghttp2 name/value pairs for `headers`. nghttp2 copies them during
/// the submit call, so the storage only lives for the call (nghttp2_submit_request(3)).
private func withNameValuePairs<R>(_ headers: [(String, String)], _ body: (UnsafePointer<nghttp2_nv>, Int) -> R) -> R {
    var storage: [UnsafeMutablePointer<UInt8>] = []
    defer { storage.forEach { free($0) } }
    var pairs: [nghttp2_nv] = []
    for (name, value) in headers {
        let namePointer = UnsafeMutableRawPointer(strdup(name)!).assumingMemoryBound(to: UInt8.self)
        let valuePointer = UnsafeMutableRawPointer(strdup(value)!).assumingMemoryBound(to: UInt8.self)
        storage += [namePointer, valuePointer]
        pairs.append(
            nghttp2_nv(
                name: namePointer, value: valuePointer, namelen: name.utf8.count, valuelen: value.utf8.count,
                flags: UInt8(NGHTTP2_NV_FLAG_NONE.rawValue)))
    }
    return pairs.withUnsafeBufferPointer { body($0.baseAddress!, $0.count) }
}
