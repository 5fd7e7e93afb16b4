import GRPCLite

/// Turns transport and RPC errors into plain-worded failures with jobctl's exit statuses.
enum ClientErrors {
    /// Runs `body`, translating any gRPC status or TLS error it throws.
    static func translating<T>(_ settings: ClientSettings, _ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let failure as Failure {
            throw failure
        } catch let status as Status {
            throw failure(for: status, settings: settings)
        } catch let error as TLSError {
            throw Failure(
                exitCode: .certificate,
                message: "cannot use the client certificate \"\(settings.certificateFile)\", key "
                    + "\"\(settings.keyFile)\" or CA \"\(settings.caFile)\": \(error)")
        } catch let error as ProtobufError {
            throw Failure(exitCode: .internalError, message: "jobd sent a malformed response: \(error)")
        }
    }

    /// Returns the failure for a status jobd (or the client transport) ended a call with.
    static func failure(for status: Status, settings: ClientSettings) -> Failure {
        let server = "\(settings.host):\(settings.port)"
        let message = status.message
        let lowered = message.lowercased()

        switch status.code {
        case .unavailable where lowered.contains("refused"):
            return Failure(
                exitCode: .unreachable,
                message: "cannot connect to jobd at \(server): connection refused: is jobd running? "
                    + "start it with `make run`, or point --server (JOBCTL_SERVER) at it")
        case .unavailable where lowered.contains("timed out") || lowered.contains("cannot reach"):
            return Failure(
                exitCode: .unreachable,
                message: "cannot reach jobd at \(server): \(message)")
        case .unavailable,
            .unauthenticated
        where lowered.contains("certificate") || lowered.contains("tls") || lowered.contains("handshake")
            || lowered.contains("alert"):
            // The transport's message already names the failing side and the fix; add the files in use.
            return Failure(
                exitCode: .certificate,
                message: "certificate rejected: \(message) (CA \"\(settings.caFile)\", client certificate "
                    + "\"\(settings.certificateFile)\")")
        case .unavailable:
            return Failure(exitCode: .unreachable, message: "jobd at \(server) is unavailable: \(message)")
        case .unauthenticated:
            return Failure(exitCode: .certificate, message: "jobd rejected the client certificate: \(message)")
        case .permissionDenied:
            return Failure(exitCode: .permissionDenied, message: "permission denied: \(message)")
        case .notFound:
            return Failure(exitCode: .notFound, message: message)
        case .invalidArgument, .failedPrecondition:
            return Failure(exitCode: .rejected, message: message)
        case .deadlineExceeded:
            return Failure(exitCode: .timedOut, message: "the call to jobd at \(server) timed out: \(message)")
        default:
            return Failure(exitCode: .internalError, message: "jobd failed the call with \(status.code): \(message)")
        }
    }
}
