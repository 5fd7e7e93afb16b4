/// The gRPC length-prefixed message: a 1-byte compressed flag, a 4-byte big-endian length,
/// then the message (gRPC over HTTP/2 protocol, "Length-Prefixed-Message").
enum MessageFraming {
    static let prefixLength = 5

    /// Returns the 5-byte prefix of an uncompressed message of `length` bytes.
    static func prefix(length: Int) -> [UInt8] {
        let length = UInt32(length)
        return [0, UInt8(length >> 24), UInt8(length >> 16 & 0xFF), UInt8(length >> 8 & 0xFF), UInt8(length & 0xFF)]
    }

    /// Returns the message with its prefix, in one array.
    static func frame(_ message: [UInt8]) -> [UInt8] {
        var out = prefix(length: message.count)
        out.append(contentsOf: message)
        return out
    }
}

/// Reassembles length-prefixed messages from DATA frame payloads, which may split a
/// message anywhere or carry several.
struct MessageDeframer {
    /// The largest message accepted; a prefix announcing more fails before its bytes arrive.
    let maxMessageSize: Int

    private var buffer: [UInt8] = []
    private var readIndex = 0

    init(maxMessageSize: Int) {
        self.maxMessageSize = maxMessageSize
    }

    /// Bytes received but not yet returned as messages.
    var bufferedBytes: Int { buffer.count - readIndex }

    mutating func append(_ bytes: UnsafeRawBufferPointer) {
        buffer.append(contentsOf: bytes)
    }

    mutating func append(_ bytes: [UInt8]) {
        buffer.append(contentsOf: bytes)
    }

    /// Returns the next complete message, nil when more bytes are needed, or throws a
    /// Status: RESOURCE_EXHAUSTED above the size limit, UNIMPLEMENTED for a compressed
    /// message (this implementation accepts only the identity encoding).
    mutating func next() throws(Status) -> [UInt8]? {
        guard bufferedBytes >= MessageFraming.prefixLength else { return nil }

        let flag = buffer[readIndex]
        var length = 0
        for offset in 1...4 {
            length = length << 8 | Int(buffer[readIndex + offset])
        }
        if flag & 1 != 0 {
            throw Status(
                .unimplemented, "compressed messages are not supported: send messages with the identity encoding")
        }
        if length > maxMessageSize {
            throw Status(
                .resourceExhausted,
                "message of \(length) bytes exceeds the maximum receive size of \(maxMessageSize) bytes")
        }
        guard bufferedBytes >= MessageFraming.prefixLength + length else { return nil }

        let start = readIndex + MessageFraming.prefixLength
        let message = Array(buffer[start..<start + length])
        readIndex = start + length

        // Compact once the consumed part dominates, so a long stream does not keep old bytes.
        if readIndex == buffer.count {
            buffer.removeAll(keepingCapacity: buffer.count <= 65536)
            readIndex = 0
        } else if readIndex > 65536 && readIndex * 2 > buffer.count {
            buffer.removeFirst(readIndex)
            readIndex = 0
        }
        return message
    }
}
