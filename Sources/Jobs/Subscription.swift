import Glibc
import Reactor

/// An event returned by `Subscription.next()`.
public enum SubscriptionEvent {
    /// One chunk of output, at most 64 KiB, in the order the job wrote it.
    case output(SharedBytes, OutputStream)
    /// The job's final status, after its last chunk; the subscription is then over.
    case finished(JobStatus)
}

/// A reader of one job's output from byte 0. It is a cursor into the job's log, not a queue,
/// so a subscriber that stops reading keeps no memory beyond this object.
///
/// `next()` returns chunks from the job's ring while they are there, shared by reference,
/// and reads them back from the log file (pread) once the subscriber has fallen behind the
/// ring. Both are indexed by the record's offset in the log, so the hand-off has no gap and
/// no duplicate. Loop thread only.
public final class Subscription {
    private let job: Job
    /// Offset in the log of the next record to return.
    private var cursor = OutputLogFormat.firstRecordOffset
    private var fileFD: Int32 = -1
    private var isOver = false

    /// Runs once on the loop thread when `next()` has returned nil and new output or the
    /// final status is available. Set it before calling `next()`.
    public var onReadable: (() -> Void)?

    init(job: Job) {
        self.job = job
    }

    deinit {
        closeFile()
    }

    /// Returns the next event, or nil when nothing is available yet (then `onReadable`
    /// fires once when something is) or the subscription is over. Throws when the log file
    /// cannot be read or is damaged.
    public func next() throws -> SubscriptionEvent? {
        if isOver { return nil }

        if cursor < job.logEndOffset {
            if let chunk = job.output?.chunks.chunk(at: cursor) {
                cursor = chunk.nextOffset
                return .output(chunk.bytes, chunk.stream)
            }
            return try readFromFile()
        }

        if job.isFinished {
            isOver = true
            closeFile()
            return .finished(job.status)
        }
        job.wakeWhenReadable(self)
        return nil
    }

    /// Ends the subscription: no more events and no more `onReadable`, and its file is
    /// closed at once.
    public func cancel() {
        isOver = true
        onReadable = nil
        job.forget(self)
        closeFile()
    }

    func wake() {
        if isOver { return }
        onReadable?()
    }

    /// Reads the record at the cursor with pread. Records that left the ring are durable in
    /// the file (the ring evicts nothing else), so a missing record means a damaged file.
    private func readFromFile() throws -> SubscriptionEvent {
        if let output = job.output {
            assert(cursor < output.durableOffset, "record at \(cursor) left the ring before it was written")
        }
        if fileFD < 0 {
            let path = job.logPath
            fileFD = try Syscall.call("open", path) { open(path, O_RDONLY | O_CLOEXEC) }
        }
        let reader = OutputLogReader(fd: fileFD, path: job.logPath)
        guard let record = try reader.record(at: cursor) else {
            throw JobError(
                .corruptLog,
                "output log \"\(job.logPath)\" has no complete record at offset \(cursor) of \(job.logEndOffset)")
        }
        cursor = record.nextOffset
        return .output(record.bytes, record.stream)
    }

    private func closeFile() {
        if fileFD >= 0 {
            Syscall.close(fileFD)
            fileFD = -1
        }
    }
}
