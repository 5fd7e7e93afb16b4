import GRPCLite
import JobAPI
import Jobs
import Reactor

/// One Stream call: moves a job's output from its subscription to the call's writer, then the final status.
///
/// Pull-based both ways: the call takes the next chunk only while the writer is writable, and otherwise
/// waits for `onWritable`. When the subscription has nothing new, it waits for `onReadable`. A slow
/// client therefore holds back only its own cursor, never the job or other subscribers.
final class OutputStreamCall {
    /// The largest `data` field per message, from the API contract.
    static let maxMessageData = 64 * 1024

    private let jobID: String
    private let subscription: Subscription
    private let writer: ServerStreamWriter
    private let logger: Logger
    private var isDone = false

    /// Called once the call has finished or been cancelled, so its owner can drop it.
    var onDone: (() -> Void)?

    init(
        jobID: String, subscription: Subscription, writer: ServerStreamWriter, context: ServerCallContext,
        logger: Logger
    ) {
        self.jobID = jobID
        self.subscription = subscription
        self.writer = writer
        self.logger = logger

        subscription.onReadable = { [weak self] in self?.pump() }
        writer.onWritable = { [weak self] in self?.pump() }
        context.onCancel = { [weak self] in self?.cancel() }
    }

    /// Sends what the subscription has, for as long as the writer accepts more.
    func pump() {
        while !isDone && writer.isWritable {
            let event: SubscriptionEvent?
            do {
                event = try subscription.next()
            } catch {
                logger.error("stream failed", ["id": jobID, "error": error])
                finish(StatusMapping.outputUnreadable(jobID: jobID, error))
                return
            }

            switch event {
            case nil:
                return
            case .output(let chunk, let stream):
                send(chunk, stream: stream == .stderr ? .stderr : .stdout)
            case .finished(let status):
                writer.write(Jobworker_V1_StreamResponse(finalStatus: WireStatus.message(status)).serializedBytes())
                finish(.ok)
            }
        }
    }

    /// Writes a chunk by reference; a chunk above the message limit is split, which copies its parts.
    private func send(_ chunk: SharedBytes, stream: Jobworker_V1_OutputStream) {
        guard chunk.count > 0 else {
            return
        }
        if chunk.count <= Self.maxMessageData {
            writer.write(
                prefix: Jobworker_V1_StreamResponse.serializedPrefix(stream: stream, dataCount: chunk.count),
                payload: chunk)
            return
        }
        chunk.withUnsafeBytes { bytes in
            var offset = 0
            while offset < bytes.count {
                let count = min(Self.maxMessageData, bytes.count - offset)
                let part = SharedBytes(copying: UnsafeRawBufferPointer(rebasing: bytes[offset..<offset + count]))
                writer.write(
                    prefix: Jobworker_V1_StreamResponse.serializedPrefix(stream: stream, dataCount: count),
                    payload: part)
                offset += count
            }
        }
    }

    private func finish(_ status: Status) {
        guard !isDone else {
            return
        }
        writer.finish(status)
        close()
    }

    private func cancel() {
        guard !isDone else {
            return
        }
        logger.debug("stream cancelled by the client", ["id": jobID])
        close()
    }

    private func close() {
        isDone = true
        subscription.onReadable = nil
        subscription.cancel()
        writer.onWritable = nil
        let done = onDone
        onDone = nil
        done?()
    }
}
