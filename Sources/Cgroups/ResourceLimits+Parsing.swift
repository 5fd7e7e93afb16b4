import Glibc

extension ResourceLimits {
    static func parseCPU(_ text: String, cpuCount: Int) throws -> UInt32 {
        let maximum = max(cpuCount, 1) * 100
        let expected = "expected a whole percentage of one CPU from 1% to \(maximum)%, e.g. 50%"
        func reject(_ reason: String) -> LimitError {
            LimitError(field: "CPU limit", value: text, reason: reason)
        }

        guard text.hasSuffix("%") else {
            throw reject(expected)
        }
        guard let percent = parseDigits(text.dropLast()) else {
            throw reject(expected)
        }
        guard percent >= 1 else {
            throw reject("below 1%; \(expected)")
        }
        guard percent <= UInt64(maximum) else {
            throw reject("above \(maximum)%, all \(maximum / 100) CPUs of this host; \(expected)")
        }
        return UInt32(percent)
    }

    static func parseMemory(_ text: String) throws -> UInt64 {
        let expected = "expected bytes with an optional K, M, G or T suffix, e.g. 256M"
        func reject(_ reason: String) -> LimitError {
            LimitError(field: "memory limit", value: text, reason: reason)
        }

        let bytes = try parseBytes(Substring(text), reject: { reject($0.isEmpty ? expected : "\($0); \(expected)") })
        guard bytes >= minimumMemoryBytes else {
            throw reject("below the minimum of 4M; \(expected)")
        }
        return bytes
    }

    static func parseRate(_ text: String) throws -> UInt64 {
        let expected = "expected bytes per second with an optional K, M, G or T suffix, e.g. 10MB/s"
        func reject(_ reason: String) -> LimitError {
            LimitError(field: "disk I/O limit", value: text, reason: reason)
        }

        guard text.lowercased().hasSuffix("/s") else {
            throw reject(expected)
        }
        let bytes = try parseBytes(text.dropLast(2), reject: { reject($0.isEmpty ? expected : "\($0); \(expected)") })
        guard bytes >= 1 else {
            throw reject("a rate of 0 blocks all I/O; \(expected)")
        }
        return bytes
    }

    static func validatePids(_ count: UInt32) throws -> UInt32 {
        let expected = "expected a number of processes from 1 to \(maximumPids)"
        guard count >= 1, count <= maximumPids else {
            throw LimitError(field: "max_pids", value: String(count), reason: expected)
        }
        return count
    }

    /// Parses `<digits>[K|M|G|T][i][B]`, case-insensitive, 1024-based; `reject` gets "" for a
    /// malformed string or a short reason for a well-formed one out of range.
    private static func parseBytes(_ text: Substring, reject: (String) -> LimitError) throws -> UInt64 {
        let digits = text.prefix { $0.isASCII && $0.isNumber }
        let suffix = text.dropFirst(digits.count).lowercased()
        guard let multiplier = byteMultipliers[suffix] else {
            throw reject("")
        }
        guard let number = parseDigits(digits) else {
            throw reject(digits.isEmpty ? "" : "too large")
        }
        guard number >= 1 else {
            throw reject("0 is not a limit")
        }
        let (bytes, overflow) = number.multipliedReportingOverflow(by: multiplier)
        guard !overflow, bytes <= maximumBytes else {
            throw reject("too large, the maximum is \(maximumBytes) bytes")
        }
        return bytes
    }

    private static let byteMultipliers: [String: UInt64] = {
        var table: [String: UInt64] = ["": 1, "b": 1]
        for (power, letter) in ["k", "m", "g", "t"].enumerated() {
            let multiplier = UInt64(1) << (10 * (power + 1))
            for form in [letter, letter + "b", letter + "ib"] {
                table[form] = multiplier
            }
        }
        return table
    }()

    /// Returns the value of a non-empty string of ASCII digits, or nil for anything else or an
    /// overflow of UInt64.
    private static func parseDigits(_ text: Substring) -> UInt64? {
        guard !text.isEmpty, text.allSatisfy({ $0.isASCII && $0.isNumber }) else {
            return nil
        }
        return UInt64(text)
    }
}
