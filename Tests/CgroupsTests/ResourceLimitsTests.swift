import Cgroups
import XCTest

final class ResourceLimitsTests: XCTestCase {
    private let mebibyte: UInt64 = 1024 * 1024

    func testParseAcceptedValues() throws {
        let cases: [(description: String, cpu: String?, memory: String?, diskIO: String?, pids: UInt32?, expected: ResourceLimits)] = [
            ("nothing given leaves every field unlimited and pids at the default", nil, nil, nil, nil,
             ResourceLimits(maxPids: ResourceLimits.defaultMaxPids)),
            ("half a CPU", "50%", nil, nil, nil, ResourceLimits(cpuPercent: 50)),
            ("1.5 CPUs on a 2-CPU host", "150%", nil, nil, nil, ResourceLimits(cpuPercent: 150)),
            ("the lowest CPU share", "1%", nil, nil, nil, ResourceLimits(cpuPercent: 1)),
            ("every CPU of the host", "200%", nil, nil, nil, ResourceLimits(cpuPercent: 200)),
            ("memory in M is mebibytes", nil, "256M", nil, nil, ResourceLimits(memoryBytes: 256 * mebibyte)),
            ("memory in MB is mebibytes too", nil, "256MB", nil, nil, ResourceLimits(memoryBytes: 256 * mebibyte)),
            ("memory in MiB", nil, "256MiB", nil, nil, ResourceLimits(memoryBytes: 256 * mebibyte)),
            ("lowercase suffix", nil, "256m", nil, nil, ResourceLimits(memoryBytes: 256 * mebibyte)),
            ("memory in K", nil, "8192K", nil, nil, ResourceLimits(memoryBytes: 8 * mebibyte)),
            ("memory in G", nil, "2G", nil, nil, ResourceLimits(memoryBytes: 2 * 1024 * mebibyte)),
            ("memory in TiB", nil, "1TiB", nil, nil, ResourceLimits(memoryBytes: 1024 * 1024 * mebibyte)),
            ("memory in plain bytes", nil, "4194304", nil, nil, ResourceLimits(memoryBytes: 4 * mebibyte)),
            ("memory with a B suffix", nil, "4194304B", nil, nil, ResourceLimits(memoryBytes: 4 * mebibyte)),
            ("disk I/O in MB/s is mebibytes per second", nil, nil, "10MB/s", nil,
             ResourceLimits(ioBytesPerSecond: 10 * mebibyte)),
            ("disk I/O in M/s", nil, nil, "10M/s", nil, ResourceLimits(ioBytesPerSecond: 10 * mebibyte)),
            ("disk I/O in KiB/s", nil, nil, "512KiB/s", nil, ResourceLimits(ioBytesPerSecond: 512 * 1024)),
            ("disk I/O in bytes per second", nil, nil, "1000/s", nil, ResourceLimits(ioBytesPerSecond: 1000)),
            ("max_pids given", nil, nil, nil, 64, ResourceLimits(maxPids: 64)),
            ("all limits together", "20%", "64M", "5MB/s", 100,
             ResourceLimits(cpuPercent: 20, memoryBytes: 64 * mebibyte, ioBytesPerSecond: 5 * mebibyte, maxPids: 100)),
        ]
        for entry in cases {
            let limits = try ResourceLimits.parse(
                cpu: entry.cpu, memory: entry.memory, diskIO: entry.diskIO, maxPids: entry.pids, cpuCount: 2)
            XCTAssertEqual(limits, entry.expected, entry.description)
        }
    }

    func testParseRejectedValues() {
        let memoryForm = "expected bytes with an optional K, M, G or T suffix, e.g. 256M"
        let cpuForm = "expected a whole percentage of one CPU from 1% to 200%, e.g. 50%"
        let rateForm = "expected bytes per second with an optional K, M, G or T suffix, e.g. 10MB/s"
        let cases: [(description: String, cpu: String?, memory: String?, diskIO: String?, pids: UInt32?, message: String)] = [
            ("unknown memory suffix", nil, "256X", nil, nil, "invalid memory limit \"256X\": \(memoryForm)"),
            ("negative memory", nil, "-1", nil, nil, "invalid memory limit \"-1\": \(memoryForm)"),
            ("zero memory", nil, "0", nil, nil, "invalid memory limit \"0\": 0 is not a limit; \(memoryForm)"),
            ("empty memory", nil, "", nil, nil, "invalid memory limit \"\": \(memoryForm)"),
            ("exponent notation", nil, "1e9", nil, nil, "invalid memory limit \"1e9\": \(memoryForm)"),
            ("memory beyond 64 bits", nil, "99999999999999999999", nil, nil,
             "invalid memory limit \"99999999999999999999\": too large; \(memoryForm)"),
            ("memory overflowing with its suffix", nil, "99999999999T", nil, nil,
             "invalid memory limit \"99999999999T\": too large, the maximum is 9223372036854775807 bytes; \(memoryForm)"),
            ("memory below the minimum", nil, "1M", nil, nil,
             "invalid memory limit \"1M\": below the minimum of 4M; \(memoryForm)"),
            ("letters for memory", nil, "abc", nil, nil, "invalid memory limit \"abc\": \(memoryForm)"),
            ("fractional memory", nil, "1.5G", nil, nil, "invalid memory limit \"1.5G\": \(memoryForm)"),
            ("memory with spaces", nil, " 256M", nil, nil, "invalid memory limit \" 256M\": \(memoryForm)"),
            ("zero CPU", "0%", nil, nil, nil, "invalid CPU limit \"0%\": below 1%; \(cpuForm)"),
            ("negative CPU", "-50%", nil, nil, nil, "invalid CPU limit \"-50%\": \(cpuForm)"),
            ("CPU without a percent sign", "150", nil, nil, nil, "invalid CPU limit \"150\": \(cpuForm)"),
            ("CPU above the host's cores", "250%", nil, nil, nil,
             "invalid CPU limit \"250%\": above 200%, all 2 CPUs of this host; \(cpuForm)"),
            ("empty CPU", "", nil, nil, nil, "invalid CPU limit \"\": \(cpuForm)"),
            ("letters for CPU", "abc", nil, nil, nil, "invalid CPU limit \"abc\": \(cpuForm)"),
            ("fractional CPU", "12.5%", nil, nil, nil, "invalid CPU limit \"12.5%\": \(cpuForm)"),
            ("CPU beyond 64 bits", "99999999999999999999%", nil, nil, nil,
             "invalid CPU limit \"99999999999999999999%\": \(cpuForm)"),
            ("rate without /s", nil, nil, "10MB", nil, "invalid disk I/O limit \"10MB\": \(rateForm)"),
            ("zero rate", nil, nil, "0/s", nil, "invalid disk I/O limit \"0/s\": 0 is not a limit; \(rateForm)"),
            ("empty rate", nil, nil, "", nil, "invalid disk I/O limit \"\": \(rateForm)"),
            ("unknown rate unit", nil, nil, "10XB/s", nil, "invalid disk I/O limit \"10XB/s\": \(rateForm)"),
            ("negative rate", nil, nil, "-1MB/s", nil, "invalid disk I/O limit \"-1MB/s\": \(rateForm)"),
            ("zero max_pids", nil, nil, nil, 0, "invalid max_pids \"0\": expected a number of processes from 1 to 4194304"),
            ("max_pids above the kernel's limit", nil, nil, nil, 5_000_000,
             "invalid max_pids \"5000000\": expected a number of processes from 1 to 4194304"),
        ]
        for entry in cases {
            XCTAssertThrowsError(
                try ResourceLimits.parse(
                    cpu: entry.cpu, memory: entry.memory, diskIO: entry.diskIO, maxPids: entry.pids, cpuCount: 2),
                entry.description
            ) { error in
                XCTAssertEqual(String(describing: error), entry.message, entry.description)
            }
        }
    }

    func testCPUQuotaInMicroseconds() {
        XCTAssertEqual(ResourceLimits(cpuPercent: 150).cpuQuotaMicroseconds, 150_000)
        XCTAssertEqual(ResourceLimits(cpuPercent: 1).cpuQuotaMicroseconds, 1_000)
        XCTAssertNil(ResourceLimits().cpuQuotaMicroseconds)
    }
}
