import GRPCLite
import JobAPI
import Reactor

/// Output throughput: one job writes `--bytes` in 64 KiB writes (dd), S subscribers stream
/// it, each on its own connection. The time runs from sending Start until every subscriber
/// has its final status (with 0 subscribers: until Query reports the job ended), and each
/// subscriber must have received exactly `--bytes`.
enum OutputBenchmark {
    static func run(_ arguments: Arguments) throws {
        let server = try arguments.server()
        let tls = try arguments.grpcTLS()
        let subscribers = try arguments.int("subscribers")
        let blockSize = try arguments.int("block", default: 65536)
        let total = try arguments.int("bytes", default: 1 << 30)
        let serverPID = try arguments.serverPID()
        guard blockSize > 0, total % blockSize == 0 else {
            throw LoadError("invalid --bytes \(total): expected a multiple of --block \(blockSize)")
        }

        let harness = try Harness()
        let control = try harness.connectChannels(count: 1, server: server, tls: tls)[0]
        let connections =
            subscribers == 0 ? [] : try harness.connectChannels(count: subscribers, server: server, tls: tls)
        defer {
            control.close()
            connections.forEach { $0.close() }
        }

        let ddArguments = ["if=/dev/zero", "bs=\(blockSize)", "count=\(total / blockSize)", "status=none"]
        let meter = CPUMeter(serverPID: serverPID)
        let started = MonotonicClock.nanoseconds()
        var jobID: String?
        var failures: [String] = []
        JobCalls.start(on: control, command: "/bin/dd", arguments: ddArguments) { result in
            switch result {
            case .success(let id): jobID = id
            case .failure(let error): failures.append(error.description)
            }
        }
        try harness.run(until: { jobID != nil || !failures.isEmpty }, timeout: 30, what: "starting dd")
        if let failure = failures.first { throw LoadError(failure) }

        var finished = 0
        var received = [Int](repeating: 0, count: subscribers)
        for index in 0..<subscribers {
            JobCalls.stream(
                on: connections[index], jobID: jobID!, onOutput: { bytes, _ in received[index] += bytes.count }
            ) { result in
                finished += 1
                switch result {
                case .success(let status?) where status.state == .exited && status.exitCode == 0:
                    break
                case .success(let status):
                    failures.append(
                        "dd ended with \(status.map { "\($0.state) exit code \($0.exitCode)" } ?? "no final status")")
                case .failure(let error):
                    failures.append(error.description)
                }
            }
        }
        if subscribers == 0 {
            try waitUntilEnded(jobID: jobID!, control: control, harness: harness)
        } else {
            try harness.run(
                until: { finished == subscribers }, timeout: 600,
                what: "streaming \(total) bytes to \(subscribers) subscribers")
        }
        let elapsed = Double(MonotonicClock.nanoseconds() - started) / 1e9
        if let short = received.firstIndex(where: { $0 != total }) {
            failures.append("subscriber \(short) received \(received[short]) bytes, expected \(total)")
        }

        report(
            "output",
            [
                ("system", "jobworker"), ("subscribers", String(subscribers)), ("bytes", String(total)),
                ("seconds", formatSeconds(elapsed)), ("mb_per_s", format1(Double(total) / elapsed / 1e6)),
                ("failed", String(failures.count)),
            ]
                + meter.fields())
        if let failure = failures.first { throw LoadError(failure) }
    }

    /// Polls Query every 2 ms until the job is no longer running.
    private static func waitUntilEnded(jobID: String, control: GRPCChannel, harness: Harness) throws {
        var ended = false
        var failure: LoadError?
        while !ended {
            var answered = false
            JobCalls.query(on: control, jobID: jobID) { result in
                answered = true
                switch result {
                case .success(let status):
                    ended = status.state != .running
                    if ended && (status.state != .exited || status.exitCode != 0) {
                        failure = LoadError("dd ended with \(status.state) exit code \(status.exitCode)")
                    }
                case .failure(let error):
                    failure = error
                }
            }
            try harness.run(until: { answered }, timeout: 30, what: "querying \(jobID)")
            if let failure { throw failure }
            if !ended { try harness.run(for: 0.002) }
        }
    }
}
