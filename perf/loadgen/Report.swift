import Glibc

/// Formats `value` with one decimal place.
func format1(_ value: Double) -> String {
    let tenths = Int((value * 10).rounded())
    return "\(tenths / 10).\(abs(tenths % 10))"
}

/// Prints one result line: the benchmark name and `key=value` fields, for perf/run to parse.
func report(_ name: String, _ fields: [(String, String)]) {
    print((["result", name] + fields.map { "\($0.0)=\($0.1)" }).joined(separator: " "))
}

/// Formats `seconds` with three decimal places.
func formatSeconds(_ seconds: Double) -> String {
    let millis = Int((seconds * 1000).rounded())
    let fraction = String(millis % 1000)
    return "\(millis / 1000)." + String(repeating: "0", count: 3 - fraction.count) + fraction
}

/// CPU time used by the load generator and, when its PID is known, by the server, from the
/// moment of creation until `fields` is called. It shows whether one of them ran out of CPU.
struct CPUMeter {
    private let serverPID: Int?
    private let clientStart: Double
    private let serverStart: Double?

    init(serverPID: Int?) {
        self.serverPID = serverPID
        clientStart = Self.ownSeconds()
        serverStart = serverPID.flatMap(Self.processSeconds)
    }

    /// Returns `client_cpu_s` and, with a server PID, `server_cpu_s` for the interval so far.
    func fields() -> [(String, String)] {
        var fields = [("client_cpu_s", formatSeconds(Self.ownSeconds() - clientStart))]
        if let serverPID, let serverStart, let now = Self.processSeconds(pid: serverPID) {
            fields.append(("server_cpu_s", formatSeconds(now - serverStart)))
        }
        return fields
    }

    /// Returns user plus system time of this process (getrusage(2), RUSAGE_SELF).
    private static func ownSeconds() -> Double {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec)
            + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
    }

    /// Returns utime plus stime of every thread of `pid`, without its children, from
    /// /proc/PID/stat (fields 14 and 15, in clock ticks; proc_pid_stat(5)).
    private static func processSeconds(pid: Int) -> Double? {
        guard let file = fopen("/proc/\(pid)/stat", "r") else { return nil }
        defer { fclose(file) }
        var buffer = [CChar](repeating: 0, count: 1024)
        guard fgets(&buffer, Int32(buffer.count), file) != nil else { return nil }
        let text = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        // The command name in field 2 may contain spaces, so fields are counted after its ')'.
        guard let close = text.lastIndex(of: ")") else { return nil }
        let fields = text[text.index(after: close)...].split(separator: " ")
        guard fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]) else { return nil }
        return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }
}
