/// An incremental reader of the Redis replies a subscriber gets (RESP2, "Redis serialization
/// protocol specification"): arrays of bulk strings and integers. Bytes arrive in any
/// split, and `next` returns a whole top-level array or nil until one is complete.
struct RESPReader {
    enum Element {
        case bulk(ArraySlice<UInt8>)
        case integer(Int)
        case simple(String)
        case error(String)
    }

    private var buffer: [UInt8] = []
    private var start = 0

    mutating func append(_ bytes: UnsafeRawBufferPointer) {
        if start == buffer.count {
            buffer.removeAll(keepingCapacity: true)
            start = 0
        } else if start > 1 << 16 {
            buffer.removeFirst(start)
            start = 0
        }
        buffer.append(contentsOf: bytes)
    }

    /// Returns the next complete top-level reply as a list of elements (a non-array reply
    /// becomes a list of one), or nil when more bytes are needed. Throws on malformed input.
    mutating func next() throws -> [Element]? {
        var position = start
        guard let first = try element(at: &position) else { return nil }
        if case .integer(let count) = first, buffer[start] == UInt8(ascii: "*") {
            var elements: [Element] = []
            for _ in 0..<max(count, 0) {
                guard let item = try element(at: &position) else { return nil }
                elements.append(item)
            }
            start = position
            return elements
        }
        start = position
        return [first]
    }

    /// Reads one element at `position`. An array header reads as its count.
    private func element(at position: inout Int) throws -> Element? {
        guard let lineEnd = lineEnd(from: position) else { return nil }
        let kind = buffer[position]
        let text = String(decoding: buffer[(position + 1)..<lineEnd], as: UTF8.self)
        switch kind {
        case UInt8(ascii: "*"), UInt8(ascii: ":"):
            guard let value = Int(text) else { throw LoadError("invalid RESP number \"\(text)\" from Redis") }
            position = lineEnd + 2
            return .integer(value)
        case UInt8(ascii: "$"):
            guard let length = Int(text) else { throw LoadError("invalid RESP bulk length \"\(text)\" from Redis") }
            let bodyStart = lineEnd + 2
            guard length >= 0 else {
                position = bodyStart
                return .bulk([])
            }
            guard buffer.count >= bodyStart + length + 2 else { return nil }
            position = bodyStart + length + 2
            return .bulk(buffer[bodyStart..<(bodyStart + length)])
        case UInt8(ascii: "+"):
            position = lineEnd + 2
            return .simple(text)
        case UInt8(ascii: "-"):
            position = lineEnd + 2
            return .error(text)
        default:
            throw LoadError("unexpected RESP type byte \(kind) from Redis")
        }
    }

    private func lineEnd(from position: Int) -> Int? {
        var index = position
        while index + 1 < buffer.count {
            if buffer[index] == 0x0D && buffer[index + 1] == 0x0A { return index }
            index += 1
        }
        return nil
    }
}
