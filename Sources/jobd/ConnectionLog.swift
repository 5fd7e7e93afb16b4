import GRPCLite
import Reactor

/// Log lines for the server's connection events: accepted, closed, refused (with the reason).
///
/// Refusals repeat for as long as their cause lasts: a failed accept(2) with EMFILE until
/// descriptors are freed, failed handshakes for as long as a scanner or a misconfigured client
/// keeps trying. Those lines are rate-limited, and the next line written counts the ones left out.
final class ConnectionLog {
    private let logger: Logger
    private var acceptFailures = RepeatLimiter(maxPerSecond: 1)
    private var refusals = RepeatLimiter(maxPerSecond: 20)

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
            guard let suppressed = acceptFailures.admit() else { return }
            logger.warning(
                "connection refused",
                ["address": address, "reason": reason, "suppressed": suppressed > 0 ? suppressed : nil])
        case .refused(let address, let reason, let peer):
            guard let suppressed = refusals.admit() else { return }
            logger.warning(
                "connection refused",
                ["address": address, "peer": peer, "reason": reason, "suppressed": suppressed > 0 ? suppressed : nil])
        }
    }
}

/// A per-second budget for one kind of repeated log line.
struct RepeatLimiter {
    let maxPerSecond: Int
    private var windowStart: UInt64 = 0
    private var admittedInWindow = 0
    private var suppressed = 0

    init(maxPerSecond: Int) {
        self.maxPerSecond = maxPerSecond
    }

    /// Returns nil when the line should be left out, else the number left out since the last
    /// line written.
    mutating func admit(now: UInt64 = MonotonicClock.nanoseconds()) -> Int? {
        if windowStart == 0 || now - windowStart >= 1_000_000_000 {
            windowStart = now
            admittedInWindow = 0
        }
        guard admittedInWindow < maxPerSecond else {
            suppressed += 1
            return nil
        }
        admittedInWindow += 1
        defer { suppressed = 0 }
        return suppressed
    }
}
