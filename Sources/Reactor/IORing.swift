import CSystem
import CURing
import Glibc

/// Positional writes through io_uring (liburing), completed on the loop thread.
///
/// Completions are signalled on an eventfd registered in the loop
/// (io_uring_register_eventfd(3)). A short write is resubmitted at the advanced offset until
/// all bytes are written or a write fails. At most `entries` writes are in the kernel at a
/// time; further writes wait in a queue bounded by `maxQueuedWrites`, and `write` throws
/// EAGAIN only when that queue is full too. Submissions are batched: the writes of one loop
/// batch enter the kernel with one io_uring_submit(3) after the batch.
public final class IORing {
    private final class PendingWrite {
        let bytes: SharedBytes
        let fd: Int32
        let offset: UInt64
        var written = 0
        let completion: (Result<Int, SystemError>) -> Void

        init(bytes: SharedBytes, fd: Int32, offset: UInt64, completion: @escaping (Result<Int, SystemError>) -> Void) {
            self.bytes = bytes
            self.fd = fd
            self.offset = offset
            self.completion = completion
        }
    }

    private let loop: EventLoop
    private var ring = io_uring()
    private let eventFD: Int32
    private let entries: Int
    private let maxQueuedWrites: Int
    private var inFlight: [UInt64: PendingWrite] = [:]  // by user_data
    private var waiting: [PendingWrite] = []
    private var waitingHead = 0
    private var nextUserData: UInt64 = 1
    private var submitScheduled = false
    private var unsubmitted = 0
    private var isClosed = false

    /// The largest length put in one submission. Lowering it in tests makes the kernel
    /// complete a write short of the request, which exercises resubmission.
    var maxBytesPerSubmission = Int.max

    /// Sets up a ring with `entries` submission slots (io_uring_queue_init(3)) and registers
    /// its completion eventfd in `loop`.
    public init(loop: EventLoop, entries: UInt32 = 256, maxQueuedWrites: Int = 4096) throws(SystemError) {
        self.loop = loop
        self.entries = Int(entries)
        self.maxQueuedWrites = maxQueuedWrites

        let result = io_uring_queue_init(entries, &ring, 0)
        if result < 0 {
            throw SystemError(errno: -result, call: "io_uring_queue_init")
        }
        do {
            eventFD = try Syscall.call("eventfd") { eventfd(0, Int32(EFD_NONBLOCK | EFD_CLOEXEC)) }
        } catch {
            io_uring_queue_exit(&ring)
            throw error
        }
        let registered = io_uring_register_eventfd(&ring, eventFD)
        if registered < 0 {
            Syscall.close(eventFD)
            io_uring_queue_exit(&ring)
            throw SystemError(errno: -registered, call: "io_uring_register_eventfd")
        }
        do {
            try loop.register(fd: eventFD, interest: .readable) { [unowned self] _ in self.reapCompletions() }
        } catch {
            Syscall.close(eventFD)
            io_uring_queue_exit(&ring)
            throw error
        }
    }

    deinit {
        // Owners close the ring at shutdown; one released on an error path before that is
        // closed here, which still waits for its pending writes.
        close()
    }

    /// The number of writes not yet completed: in the kernel or waiting for a slot.
    public var pendingWrites: Int { inFlight.count + waiting.count - waitingHead }

    /// Writes all of `bytes` to `fd` at `offset` (pwrite semantics, IORING_OP_WRITE).
    /// `completion` runs on the loop thread with the byte count, or with the first error
    /// (errno from the completion's negative result). The ring keeps `bytes` alive until then.
    /// Throws `SystemError` with EAGAIN when the wait queue is full: the caller should slow
    /// down and try again after a completion.
    public func write(
        _ bytes: SharedBytes, to fd: Int32, at offset: UInt64,
        completion: @escaping (Result<Int, SystemError>) -> Void
    ) throws(SystemError) {
        precondition(!isClosed, "IORing.write after close()")
        let write = PendingWrite(bytes: bytes, fd: fd, offset: offset, completion: completion)
        if bytes.count == 0 {
            loop.executeAfterBatch { completion(.success(0)) }
            return
        }
        if inFlight.count < entries {
            submit(write)
            return
        }
        if waiting.count - waitingHead >= maxQueuedWrites {
            throw SystemError(errno: EAGAIN, call: "io_uring write", subject: "fd \(fd)")
        }
        waiting.append(write)
    }

    /// Prepares one SQE for the unwritten rest of `write` and schedules a submit after the
    /// current batch.
    private func submit(_ write: PendingWrite) {
        guard let sqe = io_uring_get_sqe(&ring) else {
            // Unreachable while in-flight writes are capped at `entries`, because each takes
            // one slot. Flush and retry once in case the kernel has not consumed the ring yet.
            io_uring_submit(&ring)
            unsubmitted = 0
            guard let retry = io_uring_get_sqe(&ring) else {
                preconditionFailure("io_uring submission queue full with \(inFlight.count) writes in flight")
            }
            prepare(retry, write)
            return
        }
        prepare(sqe, write)
    }

    private func prepare(_ sqe: UnsafeMutablePointer<io_uring_sqe>, _ write: PendingWrite) {
        let userData = nextUserData
        nextUserData += 1
        let remaining = min(write.bytes.count - write.written, maxBytesPerSubmission)
        let source = write.bytes.baseAddress + write.written
        io_uring_prep_write(sqe, write.fd, source, UInt32(remaining), write.offset + UInt64(write.written))
        io_uring_sqe_set_data64(sqe, userData)
        inFlight[userData] = write
        unsubmitted += 1

        if !submitScheduled {
            submitScheduled = true
            loop.executeAfterBatch { [unowned self] in self.flushSubmissions() }
        }
    }

    private func flushSubmissions() {
        submitScheduled = false
        if unsubmitted == 0 || isClosed { return }
        // A negative result (EBUSY when the completion queue is backed up, EINTR) leaves the
        // entries in the ring. The next submission, due after the next completion, retries.
        let result = io_uring_submit(&ring)
        if result >= 0 {
            unsubmitted = 0
        }
    }

    /// Handles every completion the kernel has posted (io_uring_peek_cqe(3)).
    private func reapCompletions() {
        var counter: UInt64 = 0
        _ = read(eventFD, &counter, 8)  // EAGAIN: drained by an earlier batch

        var cqe: UnsafeMutablePointer<io_uring_cqe>?
        while io_uring_peek_cqe(&ring, &cqe) == 0, let entry = cqe {
            let userData = entry.pointee.user_data
            let result = entry.pointee.res
            io_uring_cqe_seen(&ring, entry)
            guard let write = inFlight.removeValue(forKey: userData) else { continue }
            complete(write, result: result)
        }

        startWaitingWrites()
        if unsubmitted > 0 && !submitScheduled {
            flushSubmissions()
        }
    }

    private func complete(_ write: PendingWrite, result: Int32) {
        if result == -EINTR || result == -EAGAIN {
            submit(write)
            return
        }
        if result < 0 {
            write.completion(.failure(SystemError(errno: -result, call: "io_uring write", subject: "fd \(write.fd)")))
            return
        }
        if result == 0 && write.written < write.bytes.count {
            // A regular file write returns 0 only when no progress is possible; resubmitting
            // would spin, so report it like write(2) reports a full device.
            write.completion(.failure(SystemError(errno: EIO, call: "io_uring write", subject: "fd \(write.fd)")))
            return
        }

        write.written += Int(result)
        if write.written < write.bytes.count {
            submit(write)  // short write: the rest goes at the advanced offset
        } else {
            write.completion(.success(write.written))
        }
    }

    private func startWaitingWrites() {
        while inFlight.count < entries && waitingHead < waiting.count {
            let next = waiting[waitingHead]
            waitingHead += 1
            submit(next)
        }
        if waitingHead == waiting.count {
            waiting.removeAll(keepingCapacity: true)
            waitingHead = 0
        } else if waitingHead > 1024 && waitingHead * 2 > waiting.count {
            waiting.removeFirst(waitingHead)
            waitingHead = 0
        }
    }

    /// Waits for every pending write, running its completion, then unregisters the eventfd
    /// and tears the ring down (io_uring_queue_exit(3)). Waiting blocks the loop thread, which
    /// is right at shutdown: the kernel may still read from the buffers of in-flight writes,
    /// so they cannot be released before their completions arrive.
    public func close() {
        if isClosed { return }
        while pendingWrites > 0 {
            if unsubmitted > 0 {
                io_uring_submit(&ring)
                unsubmitted = 0
            }
            var cqe: UnsafeMutablePointer<io_uring_cqe>?
            let result = io_uring_wait_cqe(&ring, &cqe)
            if result == -EINTR { continue }
            guard result == 0, let entry = cqe else { break }
            let userData = entry.pointee.user_data
            let completed = entry.pointee.res
            io_uring_cqe_seen(&ring, entry)
            if let write = inFlight.removeValue(forKey: userData) {
                complete(write, result: completed)
            }
            startWaitingWrites()
        }
        isClosed = true
        loop.deregister(fd: eventFD)
        Syscall.close(eventFD)
        io_uring_queue_exit(&ring)
        inFlight.removeAll()
        waiting.removeAll()
    }
}
