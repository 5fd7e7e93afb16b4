import Foundation

/// Severity of a log line; lines below the configured level are dropped.
enum LogLevel: String, Comparable, CaseIterable {
    case debug, info, warning, error

    private var rank: Int {
        switch self {
        case .debug: 0
        case .info: 1
        case .warning: 2
        case .error: 3
        }
    }

    static func < (lhs: LogLevel, rhs: LogLevel) -> Bool { lhs.rank < rhs.rank }
}

/// Writes one line per event to a file descriptor (stderr by default):
/// `2026-12-04T20:01:02.345Z info job started id=... owner=alice command=bash`.
///
/// Each line goes out unbuffered, normally in one write(2), so a line logged before jobd is killed is not
/// lost. Lines up to PIPE_BUF (4096 bytes) written to a pipe are atomic, so they do not interleave with
/// other writers.
/// NOTE: the write blocks the reactor thread if stderr is a full pipe; run jobd with stderr on a
/// terminal, a file, or a reader that keeps up (journald does).
final class Logger {
    var level: LogLevel
    private let fd: Int32

    init(level: LogLevel, fd: Int32 = STDERR_FILENO) {
        self.level = level
        self.fd = fd
    }

    func debug(_ message: String, _ fields: KeyValuePairs<String, Any?> = [:]) { log(.debug, message, fields) }
    func info(_ message: String, _ fields: KeyValuePairs<String, Any?> = [:]) { log(.info, message, fields) }
    func warning(_ message: String, _ fields: KeyValuePairs<String, Any?> = [:]) { log(.warning, message, fields) }
    func error(_ message: String, _ fields: KeyValuePairs<String, Any?> = [:]) { log(.error, message, fields) }

    /// Writes one line when `level` is at or above the configured level; nil fields are left out.
    func log(_ level: LogLevel, _ message: String, _ fields: KeyValuePairs<String, Any?>) {
        guard level >= self.level else {
            return
        }
        var line = Self.timestamp() + " " + level.rawValue + " " + message
        for (key, value) in fields {
            guard let value else {
                continue
            }
            line += " " + key + "=" + Self.quoteIfNeeded(String(describing: value))
        }
        line += "\n"

        var bytes = Array(line.utf8)
        var written = 0
        while written < bytes.count {
            let result = bytes.withUnsafeMutableBytes { buffer in
                Glibc.write(fd, buffer.baseAddress! + written, buffer.count - written)
            }
            if result < 0 && errno == EINTR {
                continue
            }
            // A log that cannot be written has nowhere to report the failure, so the line is dropped.
            guard result > 0 else {
                return
            }
            written += result
        }
        bytes.removeAll()
    }

    /// Quotes a value that contains a space, a quote, `=`, a backslash or a control character, so each line
    /// splits into fields unambiguously. Inside the quotes, `"`, `\` and control characters are escaped.
    static func quoteIfNeeded(_ value: String) -> String {
        let needsQuotes =
            value.isEmpty
            || value.unicodeScalars.contains {
                $0 == " " || $0 == "\"" || $0 == "=" || $0 == "\\" || $0.value < 0x20 || $0.value == 0x7F
            }
        guard needsQuotes else {
            return value
        }
        var quoted = "\""
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\"": quoted += "\\\""
            case "\\": quoted += "\\\\"
            case "\n": quoted += "\\n"
            case "\t": quoted += "\\t"
            case "\r": quoted += "\\r"
            default:
                if scalar.value < 0x20 || scalar.value == 0x7F {
                    quoted += String(format: "\\x%02x", scalar.value)
                } else {
                    quoted.unicodeScalars.append(scalar)
                }
            }
        }
        return quoted + "\""
    }

    /// Returns the current UTC time as RFC 3339 with milliseconds (clock_gettime(2) CLOCK_REALTIME).
    static func timestamp() -> String {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        var seconds = now.tv_sec
        var parts = tm()
        gmtime_r(&seconds, &parts)
        return String(
            format: "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", parts.tm_year + 1900, parts.tm_mon + 1, parts.tm_mday,
            parts.tm_hour, parts.tm_min, parts.tm_sec, Int(now.tv_nsec / 1_000_000))
    }
}
