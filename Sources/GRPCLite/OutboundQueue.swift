import Reactor

/// The bytes a stream has queued for DATA frames: copied arrays and shared chunks held by
/// reference, consumed front to back as nghttp2 requests frames.
struct OutboundQueue {
    private enum Piece {
        case owned([UInt8])
        case shared(SharedBytes)

        var count: Int {
            switch self {
            case .owned(let bytes): bytes.count
            case .shared(let bytes): bytes.count
            }
        }
    }

    private var pieces: [Piece] = []
    private var head = 0
    /// Bytes of `pieces[head]` already sent.
    private var headOffset = 0
    /// Bytes queued and not yet sent.
    private(set) var count = 0

    var isEmpty: Bool { count == 0 }

    mutating func append(_ bytes: [UInt8]) {
        guard !bytes.isEmpty else { return }
        pieces.append(.owned(bytes))
        count += bytes.count
    }

    mutating func append(_ bytes: SharedBytes) {
        guard bytes.count > 0 else { return }
        pieces.append(.shared(bytes))
        count += bytes.count
    }

    /// Hands the next `length` bytes to `sink` as one or more contiguous buffers, in order,
    /// and drops them from the queue.
    mutating func consume(_ length: Int, into sink: (UnsafeRawBufferPointer) -> Bool) -> Bool {
        precondition(length <= count, "consume(\(length)) with \(count) bytes queued")
        var remaining = length
        while remaining > 0 {
            let piece = pieces[head]
            let take = min(remaining, piece.count - headOffset)
            let ok: Bool
            switch piece {
            case .owned(let bytes):
                ok = bytes.withUnsafeBytes {
                    sink(UnsafeRawBufferPointer(rebasing: $0[headOffset..<headOffset + take]))
                }
            case .shared(let bytes):
                ok = sink(UnsafeRawBufferPointer(start: bytes.baseAddress + headOffset, count: take))
            }
            guard ok else { return false }

            remaining -= take
            count -= take
            headOffset += take
            if headOffset == piece.count {
                // Release the reference now, so a shared chunk is freed as soon as it is sent.
                pieces[head] = .owned([])
                head += 1
                headOffset = 0
            }
        }
        if head > 64 && head * 2 > pieces.count {
            pieces.removeFirst(head)
            head = 0
        }
        return true
    }

    mutating func removeAll() {
        pieces.removeAll()
        head = 0
        headOffset = 0
        count = 0
    }
}
