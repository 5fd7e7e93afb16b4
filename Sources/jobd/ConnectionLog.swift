import GRPCLite

/// Log lines for the server's connection events: accepted, closed, refused (with the reason).
enum ConnectionLog {
    static func log(_ event: ConnectionEvent, to logger: Logger) {
        switch event {
        case .accepted(let address, let peer):
            logger.info("connection accepted", ["address": address, "peer": peer])
        case .closed(let address, let peer, let reason):
            logger.info("connection closed", ["address": address, "peer": peer, "reason": reason])
        case .refused(let address, let reason, let peer):
            logger.warning("connection refused", ["address": address, "peer": peer, "reason": reason])
        }
    }
}
