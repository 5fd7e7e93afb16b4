import Glibc
import Reactor

/// The writing side of one running job's output: appends each chunk as a record to the log
/// file through io_uring and keeps recent chunks in an `OutputRing` for subscribers.
///
/// Owns the log file's fd until `close()`. Loop thread only.
final class OutputLog {
    private struct PendingRecord {
        let end: UInt64
        let payloadCount: Int
        var isDurable = false
    }

    let path: String
    private let loop: EventLoop
    private let ioRing: IORing
    private var fd: Int32
    /// Recent chunks; empty once the log is closed.
    private(set) var chunks: OutputRing
    /// Offset after the last record appended (written or not).
    private(set) var endOffset = OutputLogFormat.firstRecordOffset
    /// Every record below this offset is complete in the file and can be read with pread.
    private(set) var durableOffset = OutputLogFormat.firstRecordOffset
    /// Payload bytes appended but not yet durable.
    private(set) var pendingBytes = 0
    /// Above this many pending bytes the job stops reading its pipes.
    let maxPendingBytes: Int
    /// The first failed write; later records are kept in memory only until evicted.
    private(set) var writeError: SystemError?
    /// Runs after records became durable or blocked writes were submitted, so the job can
    /// resume reading its pipes or finish.
    var onProgress: (() -> Void)?

    private var pendingRecords: [PendingRecord] = []
    private var pendingHead = 0
    private var firstPendingSequence = 0
    // Writes the ring rejected with EAGAIN (its wait queue full), retried from a timer.
    private var blockedWrites: [() -> Void] = []
    private var retryTimer: TimerID?

    /// Creates the log file at `path` with its magic (O_EXCL: a job id is never reused).
    init(path: String, loop: EventLoop, ioRing: IORing, ringCapacity: Int, maxPendingBytes: Int) throws {
        self.path = path
        self.loop = loop
        self.ioRing = ioRing
        self.chunks = OutputRing(capacity: ringCapacity)
        self.maxPendingBytes = maxPendingBytes
        fd = try Syscall.call("open", path) { open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0o640) }
        do {
            let written = try OutputLogFormat.magic.withUnsafeBytes { magic in
                try Syscall.call("pwrite", path) { pwrite(fd, magic.baseAddress, magic.count, 0) }
            }
            if written != OutputLogFormat.magic.count {
                throw SystemError(errno: EIO, call: "pwrite", subject: path)
            }
        } catch {
            Syscall.close(fd)
            unlink(path)
            throw error
        }
    }

    deinit {
        assert(fd < 0, "OutputLog released without close()")
    }

    /// Maximum records whose writes are in flight, so a job writing tiny chunks cannot fill
    /// the ring's shared queue (each record takes two writes).
    static let maxPendingRecords = 64

    /// True when the job should stop reading its pipes until `onProgress` runs.
    var isBackpressured: Bool {
        pendingBytes >= maxPendingBytes || pendingRecordCount >= Self.maxPendingRecords || !blockedWrites.isEmpty
    }

    /// The number of records appended but not yet durable.
    var pendingRecordCount: Int { pendingRecords.count - pendingHead }

    /// True when no write is pending or blocked.
    var isIdle: Bool { pendingHead == pendingRecords.count && blockedWrites.isEmpty }

    /// Appends one chunk: it joins the ring now and is written to the file at `endOffset`.
    func append(_ bytes: SharedBytes, stream: OutputStream) {
        precondition(fd >= 0, "append after close")
        let chunk = OutputChunk(offset: endOffset, stream: stream, bytes: bytes)
        let sequence = firstPendingSequence + pendingRecords.count - pendingHead
        chunks.append(chunk)
        endOffset = chunk.nextOffset
        pendingBytes += bytes.count
        pendingRecords.append(PendingRecord(end: chunk.nextOffset, payloadCount: bytes.count))
        writePayload(chunk, sequence: sequence)
    }

    /// Closes the file and drops the ring. Call once `isIdle`.
    func close() {
        precondition(isIdle, "OutputLog closed with writes pending")
        if let retryTimer { loop.cancelTimer(retryTimer) }
        chunks.removeAll()
        if fd >= 0 {
            Syscall.close(fd)
            fd = -1
        }
    }

    // MARK: - Writes

    // The payload goes first; the header follows once the payload is in the file, so a
    // header always describes bytes that exist (see OutputLogFormat).
    private func writePayload(_ chunk: OutputChunk, sequence: Int) {
        let payloadOffset = chunk.offset + UInt64(OutputLogFormat.recordHeaderSize)
        submit(chunk.bytes, at: payloadOffset, sequence: sequence) { [self] in
            writeHeader(chunk, sequence: sequence)
        }
    }

    private func writeHeader(_ chunk: OutputChunk, sequence: Int) {
        let header = SharedBytes(OutputLogFormat.header(stream: chunk.stream, length: chunk.bytes.count))
        submit(header, at: chunk.offset, sequence: sequence) { [self] in
            markDurable(sequence)
        }
    }

    private func submit(_ bytes: SharedBytes, at offset: UInt64, sequence: Int, then next: @escaping () -> Void) {
        if writeError != nil {
            markDurable(sequence)
            return
        }
        do {
            try ioRing.write(bytes, to: fd, at: offset) { [self] result in
                switch result {
                case .success:
                    next()
                case .failure(let error):
                    if writeError == nil { writeError = error }
                    markDurable(sequence)
                }
            }
        } catch let error where error.errno == EAGAIN {
            blockedWrites.append { [self] in submit(bytes, at: offset, sequence: sequence, then: next) }
            scheduleRetry()
        } catch {
            if writeError == nil { writeError = error }
            markDurable(sequence)
        }
    }

    private func scheduleRetry() {
        if retryTimer != nil { return }
        // Every job shares the ring's queue, so this job may have no write left to complete.
        // A short timer retries instead of waiting for a completion.
        retryTimer = loop.scheduleTimer(after: .milliseconds(2)) { [self] in
            retryTimer = nil
            let writes = blockedWrites
            blockedWrites.removeAll()
            for write in writes { write() }
            onProgress?()
        }
    }

    /// Marks a record complete (or abandoned after a write error) and advances
    /// `durableOffset` over the complete prefix.
    private func markDurable(_ sequence: Int) {
        pendingRecords[pendingHead + sequence - firstPendingSequence].isDurable = true

        var advanced = false
        while pendingHead < pendingRecords.count && pendingRecords[pendingHead].isDurable {
            durableOffset = pendingRecords[pendingHead].end
            pendingBytes -= pendingRecords[pendingHead].payloadCount
            pendingHead += 1
            firstPendingSequence += 1
            advanced = true
        }
        if pendingHead == pendingRecords.count {
            pendingRecords.removeAll(keepingCapacity: true)
            pendingHead = 0
        } else if pendingHead > 256 && pendingHead * 2 > pendingRecords.count {
            pendingRecords.removeFirst(pendingHead)
            pendingHead = 0
        }

        if advanced {
            chunks.evict(durableOffset: durableOffset)
            onProgress?()
        }
    }
}
