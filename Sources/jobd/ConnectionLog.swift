import GRPCLite
import Reactor

/// Log lines for the server's connection events: accepted, closed, refused (with the reason).
///
/// A failed accept(2) can repeat for as long as its cause lasts, because EMFILE stays until descriptors
/// are freed. Those lines are limited to one per second, with the number suppressed since the last one.
final class ConnectionLog {
    private let logger: Logger
    private var lastAcceptFailureNanoseconds: UInt64?
    private var suppressedAcceptFailures = 0
    private static let acceptFailureInterval: UInt64 = 1_000_000_000

    init(logger: Logger) {
        self.logger = logger
    }

    /// Logs `event`; runs on the loop thread, from the server's connection event callback.
    func log(_ event: ConnectionEvent) {
        switch event {
        case .accepted(let address, let peer):
            logger.info("connection accepted", ["address": address, "peer": peer])
        case .closed(let address, let peer, let reason):
            logger.info("connection closed", ["address": address, "peer": peer, "reason": reason])
        case .refused(let address, let reason, nil) where address == "(not accepted)":
            logAcceptFailure(reason)
        case .refused(let address, let reason, let peer):
            logger.warning("connection refused", ["address": address, "peer": peer, "reason": reason])
        }
    }

    private func logAcceptFailure(_ reason: String) {
        let now = MonotonicClock.nanoseconds()
        if let last = lastAcceptFailureNanoseconds, now - last < Self.acceptFailureInterval {
            suppressedAcceptFailures += 1
            return
        }
        logger.warning(
            "connection refused",
            [
                "address": "(not accepted)", "reason": reason,
                "suppressed": suppressedAcceptFailures > 0 ? suppressedAcceptFailures : nil,
            ])
        lastAcceptFailureNanoseconds = now
        suppressedAcceptFailures = 0
    }
}
