/// jobctl's exit statuses, one per failure class. The values above 63 follow sysexits.h so they rarely
/// collide with the job exit codes that `stream` and `run` pass through.
enum ExitCode: Int32, CaseIterable {
    case success = 0
    case usage = 2
    case rejected = 65
    case notFound = 66
    case unreachable = 69
    case internalError = 70
    case localIO = 74
    case timedOut = 75
    case permissionDenied = 77
    case certificate = 78

    /// One line of `jobctl --help` per status.
    var summary: String {
        switch self {
        case .success: "success"
        case .usage: "invalid command line"
        case .rejected: "jobd rejected the request: invalid limit or empty command, or the command cannot run"
        case .notFound: "job not found (or owned by another identity)"
        case .unreachable: "cannot reach jobd: connection refused, unreachable, or jobd shutting down"
        case .internalError: "unexpected error inside jobd or jobctl"
        case .localIO: "a local file could not be read or written"
        case .timedOut: "the call timed out"
        case .permissionDenied: "permission denied: the certificate's role does not allow the command"
        case .certificate: "certificate problem: a file is missing or invalid, or the TLS handshake was rejected"
        }
    }
}

/// A failure with the message to print and the exit status to end with.
struct Failure: Error, CustomStringConvertible {
    let exitCode: ExitCode
    let message: String

    var description: String { message }
}
