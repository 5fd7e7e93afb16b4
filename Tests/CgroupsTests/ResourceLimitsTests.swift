import Cgroups
import XCTest

/// One row of a parse table: the user strings and, for accepted input, the limits expected.
private struct ParseCase {
    var description: String
    var cpu: String? = nil
    var memory: String? = nil
    var diskIO: String? = nil
    var pids: UInt32? = nil

    func parse() throws -> ResourceLimits {
        try ResourceLimits.parse(cpu: cpu, memory: memory, diskIO: diskIO, maxPids: pids, cpuCount: 2)
    }
}

final class ResourceLimitsTests: XCTestCase {
    private let mebibyte: UInt64 = 1024 * 1024

    func testParseAcceptedValues() throws {
        let cases: [(ParseCase, ResourceLimits)] = [
            (ParseCase(description: "nothing given: no limits, default max_pids"), ResourceLimits(maxPids: 1024)),
            (ParseCase(description: "half a CPU", cpu: "50%"), ResourceLimits(cpuPercent: 50)),
            (ParseCase(description: "1.5 CPUs on a 2-CPU host", cpu: "150%"), ResourceLimits(cpuPercent: 150)),
            (ParseCase(description: "the lowest CPU limit", cpu: "1%"), ResourceLimits(cpuPercent: 1)),
            (ParseCase(description: "every CPU of the host", cpu: "200%"), ResourceLimits(cpuPercent: 200)),
            (ParseCase(description: "M is mebibytes", memory: "256M"), ResourceLimits(memoryBytes: 256 * mebibyte)),
            (
                ParseCase(description: "MB is mebibytes too", memory: "256MB"),
                ResourceLimits(memoryBytes: 256 * mebibyte)
            ),
            (ParseCase(description: "MiB", memory: "256MiB"), ResourceLimits(memoryBytes: 256 * mebibyte)),
            (ParseCase(description: "lowercase suffix", memory: "256m"), ResourceLimits(memoryBytes: 256 * mebibyte)),
            (ParseCase(description: "K is kibibytes", memory: "8192K"), ResourceLimits(memoryBytes: 8 * mebibyte)),
            (ParseCase(description: "G is gibibytes", memory: "2G"), ResourceLimits(memoryBytes: 2048 * mebibyte)),
            (ParseCase(description: "TiB", memory: "1TiB"), ResourceLimits(memoryBytes: 1024 * 1024 * mebibyte)),
            (ParseCase(description: "plain bytes", memory: "4194304"), ResourceLimits(memoryBytes: 4 * mebibyte)),
            (ParseCase(description: "B suffix", memory: "4194304B"), ResourceLimits(memoryBytes: 4 * mebibyte)),
            (
                ParseCase(description: "MB/s is MiB/s", diskIO: "10MB/s"),
                ResourceLimits(ioBytesPerSecond: 10 * mebibyte)
            ),
            (ParseCase(description: "M/s", diskIO: "10M/s"), ResourceLimits(ioBytesPerSecond: 10 * mebibyte)),
            (ParseCase(description: "KiB/s", diskIO: "512KiB/s"), ResourceLimits(ioBytesPerSecond: 512 * 1024)),
            (ParseCase(description: "bytes per second", diskIO: "1000/s"), ResourceLimits(ioBytesPerSecond: 1000)),
            (ParseCase(description: "max_pids given", pids: 64), ResourceLimits(maxPids: 64)),
            (
                ParseCase(description: "all limits together", cpu: "20%", memory: "64M", diskIO: "5MB/s", pids: 100),
                ResourceLimits(cpuPercent: 20, memoryBytes: 64 * mebibyte, ioBytesPerSecond: 5 * mebibyte, maxPids: 100)
            ),
        ]
        for (entry, expected) in cases {
            XCTAssertEqual(try entry.parse(), expected, entry.description)
        }
    }

    func testParseRejectedValues() {
        let memoryForm = "expected bytes with an optional K, M, G or T suffix, e.g. 256M"
        let cpuForm = "expected a whole percentage of one CPU from 1% to 200%, e.g. 50%"
        let rateForm = "expected bytes per second with an optional K, M, G or T suffix, e.g. 10MB/s"
        let pidsForm = "expected a number of processes from 1 to 4194304"
        let cases: [(ParseCase, String)] = [
            (ParseCase(description: "unknown suffix", memory: "256X"), "invalid memory limit \"256X\": \(memoryForm)"),
            (ParseCase(description: "negative memory", memory: "-1"), "invalid memory limit \"-1\": \(memoryForm)"),
            (
                ParseCase(description: "zero memory", memory: "0"),
                "invalid memory limit \"0\": 0 is not a limit; \(memoryForm)"
            ),
            (ParseCase(description: "empty memory", memory: ""), "invalid memory limit \"\": \(memoryForm)"),
            (ParseCase(description: "exponent notation", memory: "1e9"), "invalid memory limit \"1e9\": \(memoryForm)"),
            (
                ParseCase(description: "beyond 64 bits", memory: "99999999999999999999"),
                "invalid memory limit \"99999999999999999999\": too large; \(memoryForm)"
            ),
            (
                ParseCase(description: "overflow through the suffix", memory: "99999999999T"),
                "invalid memory limit \"99999999999T\": too large, the maximum is 9223372036854775807 bytes; "
                    + memoryForm
            ),
            (
                ParseCase(description: "below the minimum", memory: "1M"),
                "invalid memory limit \"1M\": below the minimum of 4M; \(memoryForm)"
            ),
            (
                ParseCase(description: "letters for memory", memory: "abc"),
                "invalid memory limit \"abc\": \(memoryForm)"
            ),
            (
                ParseCase(description: "fractional memory", memory: "1.5G"),
                "invalid memory limit \"1.5G\": \(memoryForm)"
            ),
            (ParseCase(description: "leading space", memory: " 256M"), "invalid memory limit \" 256M\": \(memoryForm)"),
            (ParseCase(description: "zero CPU", cpu: "0%"), "invalid CPU limit \"0%\": below 1%; \(cpuForm)"),
            (ParseCase(description: "negative CPU", cpu: "-50%"), "invalid CPU limit \"-50%\": \(cpuForm)"),
            (ParseCase(description: "CPU without %", cpu: "150"), "invalid CPU limit \"150\": \(cpuForm)"),
            (
                ParseCase(description: "CPU above the host's cores", cpu: "250%"),
                "invalid CPU limit \"250%\": above 200%, all 2 CPUs of this host; \(cpuForm)"
            ),
            (ParseCase(description: "empty CPU", cpu: ""), "invalid CPU limit \"\": \(cpuForm)"),
            (ParseCase(description: "letters for CPU", cpu: "abc"), "invalid CPU limit \"abc\": \(cpuForm)"),
            (ParseCase(description: "fractional CPU", cpu: "12.5%"), "invalid CPU limit \"12.5%\": \(cpuForm)"),
            (
                ParseCase(description: "CPU beyond 64 bits", cpu: "99999999999999999999%"),
                "invalid CPU limit \"99999999999999999999%\": \(cpuForm)"
            ),
            (ParseCase(description: "rate without /s", diskIO: "10MB"), "invalid disk I/O limit \"10MB\": \(rateForm)"),
            (
                ParseCase(description: "zero rate", diskIO: "0/s"),
                "invalid disk I/O limit \"0/s\": 0 is not a limit; \(rateForm)"
            ),
            (ParseCase(description: "empty rate", diskIO: ""), "invalid disk I/O limit \"\": \(rateForm)"),
            (
                ParseCase(description: "unknown rate unit", diskIO: "10XB/s"),
                "invalid disk I/O limit \"10XB/s\": \(rateForm)"
            ),
            (
                ParseCase(description: "negative rate", diskIO: "-1MB/s"),
                "invalid disk I/O limit \"-1MB/s\": \(rateForm)"
            ),
            (ParseCase(description: "zero max_pids", pids: 0), "invalid max_pids \"0\": \(pidsForm)"),
            (
                ParseCase(description: "max_pids above PID_MAX_LIMIT", pids: 5_000_000),
                "invalid max_pids \"5000000\": \(pidsForm)"
            ),
        ]
        for (entry, message) in cases {
            XCTAssertThrowsError(try entry.parse(), entry.description) { error in
                XCTAssertEqual(String(describing: error), message, entry.description)
            }
        }
    }

    func testParseErrorIsLimitError() {
        XCTAssertThrowsError(try ParseCase(description: "", memory: "256X").parse()) { error in
            XCTAssertEqual(
                error as? LimitError,
                LimitError(
                    field: "memory limit", value: "256X",
                    reason: "expected bytes with an optional K, M, G or T suffix, e.g. 256M"))
        }
    }

    func testCPUQuotaInMicroseconds() {
        XCTAssertEqual(ResourceLimits(cpuPercent: 150).cpuQuotaMicroseconds, 150_000)
        XCTAssertEqual(ResourceLimits(cpuPercent: 1).cpuQuotaMicroseconds, 1_000)
        XCTAssertNil(ResourceLimits().cpuQuotaMicroseconds)
    }
}
