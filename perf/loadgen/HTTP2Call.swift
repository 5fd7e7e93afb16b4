/// One request on an `HTTP2Connection`: the request body goes out as DATA, the response's
/// status, headers and body come back. For gRPC calls the body is split into messages
/// (5-byte prefix: compressed flag, 4-byte big-endian length; gRPC over HTTP/2,
/// "Length-Prefixed-Message").
final class HTTP2Call {
    let path: String
    let body: [UInt8]
    /// True when the response body is gRPC messages ended by grpc-status trailers.
    let isGRPC: Bool
    var bodyOffset = 0
    var stream: Int32 = 0
    var httpStatus = 0
    var grpcStatus: Int?
    var grpcMessage = ""
    var receivedBytes = 0
    private var buffered: [UInt8] = []
    private var bufferedStart = 0

    /// Receives each gRPC message payload with its receive time; returning false cancels.
    var onMessage: ((UnsafeRawBufferPointer, UInt64) -> Bool)?
    /// Receives the raw response body of a plain HTTP/2 call.
    var onBody: ((UnsafeRawBufferPointer, UInt64) -> Void)?
    /// Runs once when the stream closes: nil for a normal close, else the reason.
    var onFinish: ((HTTP2Call, String?) -> Void)?

    init(path: String, body: [UInt8], isGRPC: Bool) {
        self.path = path
        self.body = body
        self.isGRPC = isGRPC
    }

    /// True when the response reports success: grpc-status 0 for gRPC, 200 otherwise.
    var succeeded: Bool {
        isGRPC ? httpStatus == 200 && grpcStatus == 0 : httpStatus == 200
    }

    /// A one-line summary of an unsuccessful response, for error messages.
    var failureSummary: String {
        "\(path): HTTP status \(httpStatus), grpc-status \(grpcStatus.map(String.init) ?? "missing") \(grpcMessage)"
    }

    /// Frames `message` as one uncompressed gRPC message.
    static func frame(_ message: [UInt8]) -> [UInt8] {
        let length = UInt32(message.count)
        return [0, UInt8(length >> 24), UInt8(length >> 16 & 0xff), UInt8(length >> 8 & 0xff), UInt8(length & 0xff)]
            + message
    }

    /// Takes one DATA chunk. Returns false when `onMessage` requested a cancel or the framing
    /// is invalid, which includes compressed messages because these servers send none.
    func receive(_ chunk: UnsafeRawBufferPointer, at time: UInt64) -> Bool {
        receivedBytes += chunk.count
        guard isGRPC else {
            onBody?(chunk, time)
            return true
        }
        if bufferedStart == buffered.count {
            // Nothing is pending, so whole messages are handed out straight from the chunk.
            let used = deliverMessages(in: chunk, at: time)
            guard used >= 0 else { return false }
            buffered.removeAll(keepingCapacity: true)
            bufferedStart = 0
            buffered.append(contentsOf: chunk[used...])
            return true
        }
        buffered.append(contentsOf: chunk)
        let used = buffered.withUnsafeBytes { bytes in
            deliverMessages(in: UnsafeRawBufferPointer(rebasing: bytes[bufferedStart...]), at: time)
        }
        guard used >= 0 else { return false }
        bufferedStart += used
        if bufferedStart == buffered.count || bufferedStart > 1 << 20 {
            buffered.removeFirst(bufferedStart)
            bufferedStart = 0
        }
        return true
    }

    /// Hands out every whole message at the start of `bytes`. Returns the bytes used, or -1
    /// to cancel.
    private func deliverMessages(in bytes: UnsafeRawBufferPointer, at time: UInt64) -> Int {
        var offset = 0
        while bytes.count - offset >= 5 {
            guard bytes[offset] == 0 else { return -1 }
            let length =
                Int(bytes[offset + 1]) << 24 | Int(bytes[offset + 2]) << 16 | Int(bytes[offset + 3]) << 8
                | Int(bytes[offset + 4])
            guard bytes.count - offset - 5 >= length else { break }
            let message = UnsafeRawBufferPointer(rebasing: bytes[(offset + 5)..<(offset + 5 + length)])
            offset += 5 + length
            if let onMessage, !onMessage(message, time) { return -1 }
        }
        return offset
    }
}
