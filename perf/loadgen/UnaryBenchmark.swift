import GRPCLite
import Glibc
import JobAPI
import Reactor

/// Unary calls per second: Query calls over C connections with K in flight on each, for
/// `--seconds` after a warm-up. With `--http yes` the same bytes go to a plain HTTP/2 server
/// (nghttpd serving a file for the path), where a 200 status counts as success.
enum UnaryBenchmark {
    static func run(_ arguments: Arguments) throws {
        let server = try arguments.server()
        let tls = try arguments.grpcTLS()
        let connectionCount = max(1, try arguments.int("connections", default: 1))
        let inflight = max(1, try arguments.int("inflight", default: 16))
        let seconds = try arguments.seconds("seconds", default: 5)
        let warmup = try arguments.seconds("warmup", default: 0.5)
        let isGRPC = try arguments.string("http", default: "no") != "yes"
        let jobID = try arguments.string("job-id")
        let saveResponse = try arguments.string("save-response", default: "")

        let harness = try Harness()
        let connections = try harness.connectChannels(count: connectionCount, server: server, tls: tls)
        defer { connections.forEach { $0.close() } }
        let request = Jobworker_V1_QueryRequest(jobID: jobID).serializedBytes()

        if !saveResponse.isEmpty {
            try save(firstResponseOf: request, on: connections[0], to: saveResponse, harness: harness)
        }

        let measureFrom = MonotonicClock.nanoseconds() + UInt64(warmup * 1e9)
        let deadline = measureFrom + UInt64(seconds * 1e9)
        var active = 0
        var succeeded = 0
        var failures: [String] = []

        // CPU time is measured over the counted interval only, like the calls.
        let serverPID = try arguments.serverPID()
        var meter: CPUMeter?
        var cpuFields: [(String, String)] = []
        harness.loop.scheduleTimer(atNanoseconds: measureFrom) { meter = CPUMeter(serverPID: serverPID) }
        harness.loop.scheduleTimer(atNanoseconds: deadline) { cpuFields = meter?.fields() ?? [] }

        func send(on connection: GRPCChannel) {
            active += 1
            JobCalls.unary(
                on: connection, path: JobService.query, request: request, acceptsPlainHTTPResponses: !isGRPC
            ) { failure in
                active -= 1
                let now = MonotonicClock.nanoseconds()
                if let failure {
                    failures.append(failure.description)
                } else if now >= measureFrom && now < deadline {
                    succeeded += 1
                }
                if now < deadline && failures.isEmpty {
                    send(on: connection)
                }
            }
        }
        for connection in connections {
            for _ in 0..<inflight { send(on: connection) }
        }
        try harness.run(until: { active == 0 }, timeout: warmup + seconds + 60, what: "waiting for \(active) calls")

        report(
            "unary",
            [
                ("system", isGRPC ? "jobworker" : "nghttpd"), ("connections", String(connectionCount)),
                ("inflight", String(inflight)), ("calls", String(succeeded)),
                ("rate", format1(Double(succeeded) / seconds)), ("failed", String(failures.count)),
            ]
                + cpuFields)
        if let failure = failures.first { throw LoadError("\(failures.count) calls failed, first: \(failure)") }
    }

    /// Writes the response body of one Query call, the message framed as jobd sends it, to
    /// `path`, so the HTTP/2 baseline can serve the very same bytes.
    private static func save(
        firstResponseOf request: [UInt8], on channel: GRPCChannel, to path: String, harness: Harness
    ) throws {
        var result: Result<[UInt8], Status>?
        channel.startUnary(JobService.query, request: request, timeout: JobCalls.timeout) { result = $0 }
        try harness.run(until: { result != nil }, timeout: 30, what: "fetching one Query response")
        let response: [UInt8]
        switch result! {
        case .success(let message): response = JobCalls.frame(message)
        case .failure(let status): throw LoadError("cannot fetch the Query response to save: \(status)")
        }

        guard let file = fopen(path, "w") else {
            throw LoadError("cannot write \(path): \(String(cString: strerror(errno)))")
        }
        fwrite(response, 1, response.count, file)
        fclose(file)
    }
}
