import Foundation

/// The parts of a job's status that jobctl prints, independent of the wire message.
struct JobView: Equatable {
    enum State: String {
        case unspecified, running, exited, stopped

        /// The proto enum value name, used in `--json` output as the proto3 JSON mapping does.
        var protoName: String { "JOB_STATE_" + rawValue.uppercased() }
    }

    var id: String
    var state: State
    var exitCode: Int32
    var signal: Int32
    var oomKilled: Bool
    var owner: String
    var command: [String] = []
    /// Unix time in seconds; nil when jobd did not send it.
    var startedAt: Double?
    var endedAt: Double?

    /// Returns the state with its outcome, e.g. "exited (code 7)" or "stopped (signal 15, SIGTERM)".
    var outcome: String {
        var text = state.rawValue
        switch state {
        case .exited, .stopped:
            text +=
                signal != 0
                ? " (signal \(signal)\(Self.signalName(signal).map { ", " + $0 } ?? ""))" : " (code \(exitCode))"
        case .running, .unspecified:
            break
        }
        return oomKilled ? text + ", killed by the OOM killer" : text
    }

    /// Returns the shell status a job maps to: its exit code, or 128 + signal when a signal ended it.
    var shellExitStatus: Int32 {
        signal != 0 ? 128 + signal : exitCode
    }

    static func signalName(_ signal: Int32) -> String? {
        let names: [Int32: String] = [
            SIGHUP: "SIGHUP", SIGINT: "SIGINT", SIGQUIT: "SIGQUIT", SIGILL: "SIGILL", SIGABRT: "SIGABRT",
            SIGBUS: "SIGBUS", SIGFPE: "SIGFPE", SIGKILL: "SIGKILL", SIGSEGV: "SIGSEGV", SIGPIPE: "SIGPIPE",
            SIGALRM: "SIGALRM", SIGTERM: "SIGTERM", SIGUSR1: "SIGUSR1", SIGUSR2: "SIGUSR2",
        ]
        return names[signal]
    }
}

/// Text and JSON renderings of jobs for `query` and `list`.
enum JobFormatter {
    /// Returns `key  value` lines for `jobctl query`.
    static func details(_ job: JobView) -> String {
        var rows: [(String, String)] = [("job", job.id), ("state", job.outcome), ("owner", job.owner)]
        if !job.command.isEmpty {
            rows.append(("command", shellQuoted(job.command)))
        }
        if let startedAt = job.startedAt {
            rows.append(("started", timestamp(startedAt)))
        }
        if let endedAt = job.endedAt {
            rows.append(("ended", timestamp(endedAt)))
        }
        return rows.map { $0.0.padding(toLength: 9, withPad: " ", startingAt: 0) + $0.1 }.joined(separator: "\n")
    }

    /// Returns an aligned table with a header row for `jobctl list`.
    static func table(_ jobs: [JobView]) -> String {
        let header = ["JOB", "STATE", "OWNER", "COMMAND"]
        let rows = jobs.map { [$0.id, $0.outcome, $0.owner, shellQuoted($0.command)] }
        var widths = header.map(\.count)
        for row in rows {
            for (column, cell) in row.enumerated() {
                widths[column] = max(widths[column], cell.count)
            }
        }
        return ([header] + rows).map { row in
            row.enumerated().map { column, cell in
                column == row.count - 1 ? cell : cell.padding(toLength: widths[column] + 2, withPad: " ", startingAt: 0)
            }.joined()
        }.joined(separator: "\n")
    }

    /// Returns one JSON object with the proto3 JSON field names, every field present.
    static func jsonObject(_ job: JobView) -> [String: Any] {
        var object: [String: Any] = [
            "jobId": job.id, "state": job.state.protoName, "exitCode": job.exitCode, "signal": job.signal,
            "oomKilled": job.oomKilled, "owner": job.owner,
        ]
        if !job.command.isEmpty {
            object["command"] = job.command
        }
        if let startedAt = job.startedAt {
            object["startedAt"] = timestamp(startedAt)
        }
        if let endedAt = job.endedAt {
            object["endedAt"] = timestamp(endedAt)
        }
        return object
    }

    /// Serialises `value` (an object or an array of objects) with sorted keys and a trailing newline.
    static func json(_ value: Any) -> String {
        let data =
            (try? JSONSerialization.data(withJSONObject: value, options: [.sortedKeys, .prettyPrinted])) ?? Data()
        return String(decoding: data, as: UTF8.self)
    }

    /// Quotes arguments for display the way a POSIX shell would need them.
    static func shellQuoted(_ words: [String]) -> String {
        words.map { word in
            let safe =
                !word.isEmpty
                && word.unicodeScalars.allSatisfy {
                    CharacterSet.alphanumerics.contains($0) || "-_./=:,%@+".unicodeScalars.contains($0)
                }
            if safe {
                return word
            }
            if word.unicodeScalars.contains(where: isControl) {
                return ansiCQuoted(word)
            }
            return "'" + word.replacingOccurrences(of: "'", with: "'\\''") + "'"
        }.joined(separator: " ")
    }

    private static func isControl(_ scalar: Unicode.Scalar) -> Bool {
        scalar.value < 0x20 || (0x7F...0x9F).contains(scalar.value)
    }

    /// Quotes a word with control characters in bash's `$'...'` form, so a newline cannot break a
    /// table row and an escape sequence in a job's command cannot reach the terminal.
    private static func ansiCQuoted(_ word: String) -> String {
        var out = "$'"
        for scalar in word.unicodeScalars {
            switch scalar {
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            case "\r": out += "\\r"
            case "\\": out += "\\\\"
            case "'": out += "\\'"
            case _ where isControl(scalar):
                for byte in String(scalar).utf8 {
                    out += "\\x" + String(byte, radix: 16, uppercase: true).leftPadded(to: 2)
                }
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "'"
    }

    /// Returns RFC 3339 UTC time with seconds.
    static func timestamp(_ seconds: Double) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        return formatter.string(from: Date(timeIntervalSince1970: seconds))
    }
}

extension String {
    fileprivate func leftPadded(to length: Int) -> String {
        count >= length ? self : String(repeating: "0", count: length - count) + self
    }
}
