import GRPCLite
import JobAPI

/// One jobworker.v1 message built in Swift under the name jobapi_fixtures.py gives it.
struct APICase {
    let name: String
    /// The Swift encoding of the value.
    let encoded: [UInt8]
    /// Decodes bytes as the case's type; returns nil when they decode to the case's value,
    /// else a description of the difference.
    let mismatch: @Sendable ([UInt8]) throws -> String?

    init<Message: ProtobufMessage & Equatable & Sendable>(_ name: String, _ value: Message) {
        self.name = name
        self.encoded = value.serializedBytes()
        self.mismatch = { bytes in
            let decoded = try Message(serializedBytes: bytes)
            return decoded == value ? nil : "decoded \(decoded)\nexpected \(value)"
        }
    }
}

/// The cases of jobapi_fixtures.py.
enum APICases {
    static let exited: Jobworker_V1_JobStatus = {
        var status = Jobworker_V1_JobStatus()
        status.jobID = "job-1"
        status.state = .exited
        status.exitCode = 3
        status.owner = "alice"
        status.command = "/bin/sh"
        status.args = ["-c", "exit 3"]
        status.startedAt = 1_700_000_000_123_456_789
        status.endedAt = 1_700_000_001_000_000_000
        status.resources = Jobworker_V1_ResourceConfig(
            cpuQuota: "50%", memoryLimit: "256M", diskIO: "10MB/s", maxPids: 64)
        status.usage = Jobworker_V1_ResourceUsage(
            cpuTimeNanoseconds: 12_345_678, memoryPeakBytes: 4 << 20, ioReadBytes: 4096, ioWriteBytes: 8192,
            oomKillCount: 0)
        status.exitReason = "exited with status 3"
        status.workingDirectory = "/tmp"
        return status
    }()

    static let killed: Jobworker_V1_JobStatus = {
        var status = Jobworker_V1_JobStatus()
        status.jobID = "job-2"
        status.state = .stopped
        status.signal = 9
        status.oomKilled = true
        status.owner = "bob"
        status.command = "sleep"
        status.args = ["1000"]
        status.startedAt = 1
        status.endedAt = 2
        status.usage = Jobworker_V1_ResourceUsage(oomKillCount: 1)
        return status
    }()

    static let running: Jobworker_V1_JobStatus = {
        var status = Jobworker_V1_JobStatus()
        status.jobID = "job-3"
        status.state = .running
        status.owner = "alice"
        status.command = "yes"
        status.startedAt = 5
        return status
    }()

    static let all: [APICase] = {
        var unknownEnums = Jobworker_V1_StreamResponse()
        unknownEnums.stream = .unrecognized(7)
        var unknownState = Jobworker_V1_JobStatus()
        unknownState.state = .unrecognized(42)
        unknownEnums.finalStatus = unknownState

        return [
            APICase("start_minimal", Jobworker_V1_StartRequest(name: "/bin/echo", args: ["hello"])),
            APICase(
                "start_full",
                Jobworker_V1_StartRequest(
                    name: "/usr/bin/env", args: ["", "a b", "\u{fc}nicode", "--flag=1"],
                    resources: Jobworker_V1_ResourceConfig(cpuQuota: "150%", memoryLimit: "1G"),
                    workingDirectory: "/srv/work", env: ["PATH": "/usr/bin:/bin", "EMPTY": "", "LANG": "C.UTF-8"])),
            APICase(
                "start_empty_resources",
                Jobworker_V1_StartRequest(name: "true", resources: Jobworker_V1_ResourceConfig())),
            APICase("start_response", Jobworker_V1_StartResponse(jobID: "0f8e2c1a-job")),
            APICase("stop_request", Jobworker_V1_StopRequest(jobID: "job-1")),
            APICase("stop_response", Jobworker_V1_StopResponse(status: killed)),
            APICase("query_request", Jobworker_V1_QueryRequest(jobID: "job-3")),
            APICase("query_response", Jobworker_V1_QueryResponse(status: running)),
            APICase("list_request", Jobworker_V1_ListRequest()),
            APICase(
                "list_response", Jobworker_V1_ListResponse(jobs: [exited, killed, running, Jobworker_V1_JobStatus()])),
            APICase("stream_request", Jobworker_V1_StreamRequest(jobID: "job-1")),
            APICase("stream_stdout", Jobworker_V1_StreamResponse(data: stdoutChunk, stream: .stdout)),
            APICase(
                "stream_stderr_small", Jobworker_V1_StreamResponse(data: [0x00] + Array("err\n".utf8), stream: .stderr)),
            APICase("stream_final", Jobworker_V1_StreamResponse(finalStatus: exited)),
            APICase("status_unknown_enums", unknownEnums),
        ]
    }()

    /// 64 KiB, the largest output chunk the service sends, covering every byte value.
    static let stdoutChunk: [UInt8] = (0..<65536).map { UInt8($0 & 0xFF) }

    /// Cases whose Swift encoding must equal Python's byte for byte. Python writes map
    /// entries with empty values explicitly and Swift omits them, which both parse alike.
    static let byteExactNames = Set(all.map(\.name)).subtracting(["start_full"])
}
