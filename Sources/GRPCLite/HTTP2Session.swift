import CNghttp2

/// An HTTP/2 header field as received or sent; names are lower case (RFC 9113, section 8.2).
typealias HTTP2Header = (name: String, value: String)

/// The result of a stream's data source when nghttp2 requests the next DATA frame.
enum HTTP2DataRead {
    /// Nothing to send now; the owner calls `resumeData` when there is.
    case deferred
    /// `length` bytes are ready and will be written by `http2SendData`. With `trailers`, this
    /// is the last DATA frame and a HEADERS frame with the trailers ends the stream.
    case data(length: Int, trailers: [HTTP2Header]?)
}

/// The outcome of `http2SendData` for one DATA frame.
enum HTTP2SendResult {
    case sent
    /// Nothing was written because the output buffer is full; nghttp2 retries the same
    /// frame on a later `nextOutput`.
    case wouldBlock
    /// Nothing was written because the stream's call ended while nghttp2 held the frame, so
    /// its bytes are gone. nghttp2 then resets only that stream, with INTERNAL_ERROR.
    case resetStream
    /// Writing failed part way, so the connection must close.
    case failed
}

/// Receives the events of an `HTTP2Session`, on the loop thread, from inside `receive` or `send`.
protocol HTTP2SessionDelegate: AnyObject {
    func http2BeginHeaders(stream: Int32)
    /// Returns false to reset the stream, e.g. when the header block grows past a limit.
    func http2Header(stream: Int32, name: String, value: String) -> Bool
    func http2HeadersComplete(stream: Int32, endStream: Bool)
    func http2Data(stream: Int32, bytes: UnsafeRawBufferPointer)
    func http2EndStream(stream: Int32)
    /// Reports a closed stream: `errorCode` is 0 after a normal end, else the RST_STREAM code.
    func http2StreamClosed(stream: Int32, errorCode: UInt32)
    func http2GoAway(lastStreamID: Int32, errorCode: UInt32)
    /// A SETTINGS frame from the peer has been applied (RFC 9113, section 6.5).
    func http2SettingsReceived()
    /// Reports a GOAWAY with an error that this side sent, e.g. when nghttp2 ends a session
    /// over a protocol violation or a flood; `reason` is the error name and nghttp2's debug text.
    func http2SentGoAway(reason: String)
    /// Reports a HEADERS or DATA frame with END_STREAM that went out.
    func http2SentEndStream(stream: Int32)
    func http2ReadData(stream: Int32, maxLength: Int) -> HTTP2DataRead
    /// Writes the 9-byte frame header and then exactly `length` bytes of the stream's data,
    /// as reported by the last `http2ReadData` of that stream, or nothing at all.
    func http2SendData(stream: Int32, frameHeader: UnsafeRawBufferPointer, length: Int) -> HTTP2SendResult
}

/// A failure reported by nghttp2, with its error text (nghttp2_strerror(3)).
struct HTTP2Error: Error, CustomStringConvertible {
    let call: String
    let code: Int

    var description: String {
        "\(call) failed: \(String(cString: nghttp2_strerror(Int32(truncatingIfNeeded: code))))"
    }
}

/// An nghttp2 session driven through memory buffers: `receive` parses bytes from the peer
/// (nghttp2_session_mem_recv(3)) and `nextOutput` serializes frames for it
/// (nghttp2_session_mem_send(3)). DATA frames use NGHTTP2_DATA_FLAG_NO_COPY, so their
/// payload goes from the stream's own buffers to the delegate without passing through nghttp2.
final class HTTP2Session {
    private var session: OpaquePointer?
    /// PING frames with the ACK flag received, which acknowledge `submitPing`.
    private(set) var pingAcknowledgements = 0
    unowned let delegate: any HTTP2SessionDelegate

    /// Creates a server or client session. Settings are sent with the first output.
    init(isServer: Bool, delegate: any HTTP2SessionDelegate, settings: [(id: Int32, value: UInt32)]) throws {
        self.delegate = delegate

        var callbacks: OpaquePointer?
        guard nghttp2_session_callbacks_new(&callbacks) == 0, let callbacks else {
            throw HTTP2Error(call: "nghttp2_session_callbacks_new", code: Int(NGHTTP2_ERR_NOMEM.rawValue))
        }
        defer { nghttp2_session_callbacks_del(callbacks) }
        HTTP2Session.install(callbacks)

        var option: OpaquePointer?
        guard nghttp2_option_new(&option) == 0, let option else {
            throw HTTP2Error(call: "nghttp2_option_new", code: Int(NGHTTP2_ERR_NOMEM.rawValue))
        }
        defer { nghttp2_option_del(option) }
        // Outbound control frames the peer provokes (PING and SETTINGS acks) are capped, so a
        // peer that sends them without reading the acknowledgements cannot grow our output queue.
        nghttp2_option_set_max_outbound_ack(option, 1000)

        var created: OpaquePointer?
        let userData = Unmanaged.passUnretained(self).toOpaque()
        let result =
            isServer
            ? nghttp2_session_server_new2(&created, callbacks, userData, option)
            : nghttp2_session_client_new2(&created, callbacks, userData, option)
        guard result == 0, let created else {
            throw HTTP2Error(
                call: isServer ? "nghttp2_session_server_new2" : "nghttp2_session_client_new2", code: Int(result))
        }
        session = created

        let entries = settings.map { nghttp2_settings_entry(settings_id: $0.id, value: $0.value) }
        let submitted = nghttp2_submit_settings(created, UInt8(NGHTTP2_FLAG_NONE.rawValue), entries, entries.count)
        guard submitted == 0 else {
            throw HTTP2Error(call: "nghttp2_submit_settings", code: Int(submitted))
        }
    }

    deinit {
        nghttp2_session_del(session)
    }

    /// Registers every callback in one place, as nghttp2's libevent example does.
    private static func install(_ callbacks: OpaquePointer) {
        nghttp2_session_callbacks_set_on_begin_headers_callback(callbacks) { _, frame, userData in
            guard let frame, frame.pointee.hd.type == UInt8(NGHTTP2_HEADERS.rawValue) else { return 0 }
            HTTP2Session.from(userData).delegate.http2BeginHeaders(stream: frame.pointee.hd.stream_id)
            return 0
        }
        nghttp2_session_callbacks_set_on_header_callback(callbacks) {
            _, frame, name, nameLength, value, valueLength, _, userData in
            guard let frame, let name, let value else { return 0 }
            let nameText = String(decoding: UnsafeBufferPointer(start: name, count: nameLength), as: UTF8.self)
            let valueText = String(decoding: UnsafeBufferPointer(start: value, count: valueLength), as: UTF8.self)
            let accepted = HTTP2Session.from(userData).delegate.http2Header(
                stream: frame.pointee.hd.stream_id, name: nameText, value: valueText)
            // This return value makes nghttp2 reset only the stream, not the connection.
            return accepted ? 0 : Int32(NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE.rawValue)
        }
        nghttp2_session_callbacks_set_on_frame_recv_callback(callbacks) { _, frame, userData in
            guard let frame else { return 0 }
            HTTP2Session.from(userData).frameReceived(frame)
            return 0
        }
        nghttp2_session_callbacks_set_on_data_chunk_recv_callback(callbacks) { _, _, stream, data, length, userData in
            guard let data else { return 0 }
            HTTP2Session.from(userData).delegate.http2Data(
                stream: stream, bytes: UnsafeRawBufferPointer(start: data, count: length))
            return 0
        }
        nghttp2_session_callbacks_set_on_stream_close_callback(callbacks) { _, stream, errorCode, userData in
            HTTP2Session.from(userData).delegate.http2StreamClosed(stream: stream, errorCode: errorCode)
            return 0
        }
        nghttp2_session_callbacks_set_on_frame_send_callback(callbacks) { _, frame, userData in
            guard let frame else { return 0 }
            let header = frame.pointee.hd
            if header.type == UInt8(NGHTTP2_GOAWAY.rawValue) && frame.pointee.goaway.error_code != 0 {
                HTTP2Session.from(userData).delegate.http2SentGoAway(
                    reason: HTTP2Session.describe(frame.pointee.goaway))
                return 0
            }
            let isMessage =
                header.type == UInt8(NGHTTP2_HEADERS.rawValue) || header.type == UInt8(NGHTTP2_DATA.rawValue)
            if isMessage && header.flags & UInt8(NGHTTP2_FLAG_END_STREAM.rawValue) != 0 {
                HTTP2Session.from(userData).delegate.http2SentEndStream(stream: header.stream_id)
            }
            return 0
        }
        nghttp2_session_callbacks_set_send_data_callback(callbacks) { _, frame, frameHeader, length, _, userData in
            guard let frame, let frameHeader else { return Int32(NGHTTP2_ERR_CALLBACK_FAILURE.rawValue) }
            // nghttp2_session_mem_send keeps packing DATA frames within one call, so this
            // callback is where the output limit stops it.
            let result = HTTP2Session.from(userData).delegate.http2SendData(
                stream: frame.pointee.hd.stream_id, frameHeader: UnsafeRawBufferPointer(start: frameHeader, count: 9),
                length: length)
            switch result {
            case .sent: return 0
            case .wouldBlock: return Int32(NGHTTP2_ERR_WOULDBLOCK.rawValue)
            case .resetStream: return Int32(NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE.rawValue)
            case .failed: return Int32(NGHTTP2_ERR_CALLBACK_FAILURE.rawValue)
            }
        }
    }

    /// Returns e.g. "sent GOAWAY PROTOCOL_ERROR: <debug data>" for a GOAWAY frame (RFC 9113, section 6.8).
    private static func describe(_ goAway: nghttp2_goaway) -> String {
        var text = "sent GOAWAY \(String(cString: nghttp2_http2_strerror(goAway.error_code)))"
        if let data = goAway.opaque_data, goAway.opaque_data_len > 0 {
            // The debug data is for people but may hold any bytes, so only printable ASCII is kept.
            let bytes = UnsafeBufferPointer(start: data, count: min(goAway.opaque_data_len, 200))
            text += ": " + String(decoding: bytes.filter { $0 >= 0x20 && $0 < 0x7F }, as: UTF8.self)
        }
        return text
    }

    private static func from(_ userData: UnsafeMutableRawPointer?) -> HTTP2Session {
        Unmanaged<HTTP2Session>.fromOpaque(userData!).takeUnretainedValue()
    }

    private func frameReceived(_ frame: UnsafePointer<nghttp2_frame>) {
        let header = frame.pointee.hd
        let endStream = header.flags & UInt8(NGHTTP2_FLAG_END_STREAM.rawValue) != 0
        switch Int(header.type) {
        case Int(NGHTTP2_HEADERS.rawValue):
            delegate.http2HeadersComplete(stream: header.stream_id, endStream: endStream)
        case Int(NGHTTP2_DATA.rawValue):
            if endStream {
                delegate.http2EndStream(stream: header.stream_id)
            }
        case Int(NGHTTP2_PING.rawValue):
            if header.flags & UInt8(NGHTTP2_FLAG_ACK.rawValue) != 0 {
                pingAcknowledgements += 1
            }
        case Int(NGHTTP2_SETTINGS.rawValue):
            if header.flags & UInt8(NGHTTP2_FLAG_ACK.rawValue) == 0 {
                delegate.http2SettingsReceived()
            }
        case Int(NGHTTP2_GOAWAY.rawValue):
            delegate.http2GoAway(
                lastStreamID: frame.pointee.goaway.last_stream_id, errorCode: frame.pointee.goaway.error_code)
        default:
            break
        }
    }

    // MARK: - Input and output

    /// Parses bytes received from the peer; delegate callbacks run before this returns.
    func receive(_ bytes: UnsafeRawBufferPointer) throws(HTTP2Error) {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return }
        let consumed = nghttp2_session_mem_recv(session, base.assumingMemoryBound(to: UInt8.self), bytes.count)
        if consumed < 0 {
            throw HTTP2Error(call: "nghttp2_session_mem_recv", code: consumed)
        }
    }

    /// Returns the next serialized bytes to send, empty when nothing is pending. The buffer
    /// stays valid until the next call. DATA frames never appear here: they go through
    /// `http2SendData` while this runs.
    func nextOutput() throws(HTTP2Error) -> UnsafeRawBufferPointer {
        var data: UnsafePointer<UInt8>?
        let length = nghttp2_session_mem_send(session, &data)
        if length < 0 {
            throw HTTP2Error(call: "nghttp2_session_mem_send", code: length)
        }
        return UnsafeRawBufferPointer(start: data, count: length)
    }

    /// True while the session expects more frames or has frames to send; when both are
    /// false after GOAWAY, the connection can close (nghttp2_session_want_read(3)).
    var wantsRead: Bool { nghttp2_session_want_read(session) != 0 }
    var wantsWrite: Bool { nghttp2_session_want_write(session) != 0 }

    /// The highest stream id the session has processed, for a GOAWAY's last-stream-id.
    var lastProcessedStreamID: Int32 { nghttp2_session_get_last_proc_stream_id(session) }

    /// The peer's SETTINGS_MAX_CONCURRENT_STREAMS, or nghttp2's assumption before its SETTINGS
    /// frame arrives (nghttp2_session_get_remote_settings(3)).
    var remoteMaxConcurrentStreams: UInt32 {
        nghttp2_session_get_remote_settings(session, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS)
    }

    // MARK: - Submitting frames

    /// Queues response HEADERS; with `hasBody` the stream's data source supplies DATA
    /// frames, else the HEADERS frame ends the stream (a Trailers-Only gRPC response).
    func submitResponse(stream: Int32, headers: [HTTP2Header], hasBody: Bool) throws(HTTP2Error) {
        let result = HTTP2Session.withHeaders(headers) { nva, count in
            if hasBody {
                var provider = HTTP2Session.dataProvider()
                return nghttp2_submit_response(session, stream, nva, count, &provider)
            }
            return nghttp2_submit_response(session, stream, nva, count, nil)
        }
        guard result == 0 else { throw HTTP2Error(call: "nghttp2_submit_response", code: Int(result)) }
    }

    /// Queues request HEADERS with a data source for the body; returns the new stream id.
    func submitRequest(headers: [HTTP2Header]) throws(HTTP2Error) -> Int32 {
        let stream = HTTP2Session.withHeaders(headers) { nva, count in
            var provider = HTTP2Session.dataProvider()
            return nghttp2_submit_request(session, nil, nva, count, &provider, nil)
        }
        guard stream > 0 else { throw HTTP2Error(call: "nghttp2_submit_request", code: Int(stream)) }
        return stream
    }

    /// Queues trailers that end the stream; call it from `http2ReadData` or after the body.
    func submitTrailers(stream: Int32, headers: [HTTP2Header]) throws(HTTP2Error) {
        let result = HTTP2Session.withHeaders(headers) { nva, count in
            nghttp2_submit_trailer(session, stream, nva, count)
        }
        guard result == 0 else { throw HTTP2Error(call: "nghttp2_submit_trailer", code: Int(result)) }
    }

    /// Raises the connection-level receive window from the protocol's 65,535 bytes, which no
    /// SETTINGS frame can change (nghttp2_session_set_local_window_size(3), RFC 9113 section 6.9.2).
    func setConnectionWindowSize(_ size: Int32) throws(HTTP2Error) {
        let result = nghttp2_session_set_local_window_size(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), 0, size)
        guard result == 0 else { throw HTTP2Error(call: "nghttp2_session_set_local_window_size", code: Int(result)) }
    }

    /// Tells nghttp2 to ask a deferred stream's data source again (nghttp2_session_resume_data(3)).
    func resumeData(stream: Int32) {
        // NGHTTP2_ERR_INVALID_ARGUMENT here means the stream was not deferred, which is harmless.
        _ = nghttp2_session_resume_data(session, stream)
    }

    /// Queues RST_STREAM with `errorCode` (RFC 9113, section 6.4).
    func resetStream(_ stream: Int32, errorCode: UInt32) {
        _ = nghttp2_submit_rst_stream(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), stream, errorCode)
    }

    /// Queues GOAWAY naming the last stream this side will process (RFC 9113, section 6.8).
    func submitGoAway(lastStreamID: Int32, errorCode: UInt32) {
        _ = nghttp2_submit_goaway(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), lastStreamID, errorCode, nil, 0)
    }

    /// Queues a PING. nghttp2 acknowledges the peer's PINGs by itself.
    func submitPing() {
        _ = nghttp2_submit_ping(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), nil)
    }

    private static func dataProvider() -> nghttp2_data_provider {
        var provider = nghttp2_data_provider()
        provider.source.ptr = nil
        provider.read_callback = { _, stream, _, length, flags, _, userData in
            HTTP2Session.from(userData).readData(stream: stream, maxLength: length, flags: flags!)
        }
        return provider
    }

    private func readData(stream: Int32, maxLength: Int, flags: UnsafeMutablePointer<UInt32>) -> Int {
        switch delegate.http2ReadData(stream: stream, maxLength: maxLength) {
        case .deferred:
            return Int(NGHTTP2_ERR_DEFERRED.rawValue)
        case .data(let length, let trailers):
            flags.pointee |= NGHTTP2_DATA_FLAG_NO_COPY.rawValue
            if let trailers {
                flags.pointee |= NGHTTP2_DATA_FLAG_EOF.rawValue
                if !trailers.isEmpty {
                    flags.pointee |= NGHTTP2_DATA_FLAG_NO_END_STREAM.rawValue
                    do {
                        try submitTrailers(stream: stream, headers: trailers)
                    } catch {
                        return Int(NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE.rawValue)
                    }
                }
            }
            return length
        }
    }

    /// Passes `headers` as an nghttp2_nv array that points into one contiguous buffer;
    /// nghttp2 copies names and values before the submit call returns.
    private static func withHeaders<R>(_ headers: [HTTP2Header], _ body: (UnsafePointer<nghttp2_nv>, Int) -> R) -> R {
        var storage: [UInt8] = []
        var ranges: [(name: Int, nameLength: Int, value: Int, valueLength: Int)] = []
        for header in headers {
            let nameStart = storage.count
            storage.append(contentsOf: header.name.utf8)
            let valueStart = storage.count
            storage.append(contentsOf: header.value.utf8)
            ranges.append((nameStart, valueStart - nameStart, valueStart, storage.count - valueStart))
        }
        storage.append(0)  // never empty, so the base address exists
        return storage.withUnsafeMutableBufferPointer { buffer in
            let base = buffer.baseAddress!
            let entries = ranges.map { range in
                nghttp2_nv(
                    name: base + range.name, value: base + range.value, namelen: range.nameLength,
                    valuelen: range.valueLength, flags: UInt8(NGHTTP2_NV_FLAG_NONE.rawValue))
            }
            return entries.withUnsafeBufferPointer { body($0.baseAddress!, $0.count) }
        }
    }
}
