import Reactor

/// One chunk of output: a record of the log, held in memory.
struct OutputChunk {
    /// Offset of the record in the log file.
    let offset: UInt64
    let stream: OutputStream
    let bytes: SharedBytes

    /// Offset of the record after this one.
    var nextOffset: UInt64 { offset + UInt64(OutputLogFormat.recordHeaderSize + bytes.count) }
}

/// Recent chunks of one job, oldest first, bounded by payload bytes.
///
/// A chunk is evicted only once its record is durable in the log file, so every record is
/// always either in the ring or readable from the file; the ring may exceed `capacity` by
/// the writes still in flight, which the job bounds separately.
struct OutputRing {
    /// Payload bytes the ring keeps before evicting durable chunks.
    let capacity: Int
    private var chunks: [OutputChunk] = []
    private var head = 0
    /// Payload bytes held.
    private(set) var byteCount = 0

    init(capacity: Int) {
        self.capacity = capacity
    }

    /// The number of chunks held.
    var count: Int { chunks.count - head }

    /// Offset of the oldest chunk held, nil when empty.
    var firstOffset: UInt64? { head < chunks.count ? chunks[head].offset : nil }

    mutating func append(_ chunk: OutputChunk) {
        assert(head == chunks.count || chunks[chunks.count - 1].nextOffset == chunk.offset, "chunks must be contiguous")
        chunks.append(chunk)
        byteCount += chunk.bytes.count
    }

    /// Drops the oldest chunks while over capacity, but only those that end at or before
    /// `durableOffset`.
    mutating func evict(durableOffset: UInt64) {
        while byteCount > capacity, head < chunks.count, chunks[head].nextOffset <= durableOffset {
            byteCount -= chunks[head].bytes.count
            head += 1
        }
        // Compact once the dead prefix dominates, so the array does not grow forever.
        if head == chunks.count {
            chunks.removeAll(keepingCapacity: true)
            head = 0
        } else if head > 64 && head * 2 > chunks.count {
            chunks.removeFirst(head)
            head = 0
        }
    }

    /// Returns the chunk whose record starts at `offset`, or nil when it is not held.
    func chunk(at offset: UInt64) -> OutputChunk? {
        var low = head
        var high = chunks.count
        while low < high {
            let middle = (low + high) / 2
            let candidate = chunks[middle].offset
            if candidate == offset { return chunks[middle] }
            if candidate < offset { low = middle + 1 } else { high = middle }
        }
        return nil
    }

    mutating func removeAll() {
        chunks = []
        head = 0
        byteCount = 0
    }
}
