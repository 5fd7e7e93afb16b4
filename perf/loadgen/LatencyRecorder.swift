/// Receive-minus-write latencies of ticker records, split out of each subscriber's byte
/// stream. A record is the CLOCK_MONOTONIC write time in decimal nanoseconds, padding and
/// '\n' (see perf/ticker.c). Lines that do not start with a digit, such as the job's
/// "ready" line, are not records.
final class LatencyRecorder {
    /// Records written before this CLOCK_MONOTONIC time are not measured (warm-up).
    var measureFrom: UInt64 = 0
    private(set) var latencies: [UInt64] = []
    private(set) var skipped = 0

    init(expected: Int) {
        latencies.reserveCapacity(expected)
    }

    /// Takes one record (without its '\n') received at `time`; returns false when the line
    /// is not a record.
    @discardableResult
    func record(_ line: UnsafeRawBufferPointer, receivedAt time: UInt64) -> Bool {
        var written: UInt64 = 0
        var digits = 0
        for byte in line {
            guard byte >= 0x30 && byte <= 0x39 else { break }
            written = written &* 10 &+ UInt64(byte - 0x30)
            digits += 1
        }
        guard digits > 0 else { return false }
        if written < measureFrom {
            skipped += 1
        } else {
            latencies.append(time >= written ? time - written : 0)
        }
        return true
    }

    /// Returns the nearest-rank percentiles of the recorded latencies in microseconds.
    func summary() -> [(String, String)] {
        let sorted = latencies.sorted()
        func percentile(_ fraction: Double) -> String {
            guard !sorted.isEmpty else { return "-" }
            let rank = max(1, Int((fraction * Double(sorted.count)).rounded(.up)))
            return String(format1(Double(sorted[min(rank, sorted.count) - 1]) / 1000))
        }
        return [
            ("records", String(sorted.count)), ("p50_us", percentile(0.50)), ("p99_us", percentile(0.99)),
            ("p999_us", percentile(0.999)), ("max_us", percentile(1.0)),
        ]
    }
}

/// Splits a byte stream into '\n'-terminated lines, keeping a partial line for the next chunk.
struct LineSplitter {
    private var partial: [UInt8] = []

    mutating func feed(_ bytes: UnsafeRawBufferPointer, _ body: (UnsafeRawBufferPointer) -> Void) {
        var start = 0
        for index in 0..<bytes.count where bytes[index] == 0x0A {
            if partial.isEmpty {
                body(UnsafeRawBufferPointer(rebasing: bytes[start..<index]))
            } else {
                partial.append(contentsOf: bytes[start..<index])
                partial.withUnsafeBytes(body)
                partial.removeAll(keepingCapacity: true)
            }
            start = index + 1
        }
        if start < bytes.count {
            partial.append(contentsOf: bytes[start...])
        }
    }
}
