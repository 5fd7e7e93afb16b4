import GRPCLite
import JobAPI
import Reactor

/// Job throughput: jobs of `true` with a CPU and a memory limit, K kept in flight on one
/// connection. A job counts once its Stream call has delivered the final status with exit
/// code 0. New jobs start until `--seconds` have passed; the rate divides every finished
/// job by the time until the last one finished.
enum ThroughputBenchmark {
    static func run(_ arguments: Arguments) throws {
        let server = try arguments.server()
        let tls = try arguments.grpcTLS()
        let inflight = max(1, try arguments.int("inflight", default: 8))
        let seconds = try arguments.seconds("seconds", default: 5)
        let cpu = try arguments.string("cpu", default: "50%")
        let memory = try arguments.string("memory", default: "256M")
        let command = try arguments.string("command", default: "/bin/true")

        let harness = try Harness()
        let connection = try harness.connectChannels(count: 1, server: server, tls: tls)[0]
        defer { connection.close() }

        let meter = CPUMeter(serverPID: try arguments.serverPID())
        var active = 0
        var completed = 0
        var failures: [String] = []
        let started = MonotonicClock.nanoseconds()
        let deadline = started + UInt64(seconds * 1e9)
        var lastFinish = started

        func launch() {
            active += 1
            JobCalls.start(on: connection, command: command, arguments: [], cpu: cpu, memory: memory) { result in
                switch result {
                case .failure(let error):
                    finish(error.description)
                case .success(let jobID):
                    JobCalls.stream(on: connection, jobID: jobID, onOutput: { _, _ in }) { result in
                        switch result {
                        case .success(let status?) where status.state == .exited && status.exitCode == 0:
                            finish(nil)
                        case .success(let status):
                            finish(
                                "job \(jobID) ended with \(status.map { "\($0.state) exit code \($0.exitCode)" } ?? "no final status")"
                            )
                        case .failure(let error):
                            finish(error.description)
                        }
                    }
                }
            }
        }
        func finish(_ failure: String?) {
            active -= 1
            lastFinish = MonotonicClock.nanoseconds()
            if let failure {
                failures.append(failure)
            } else {
                completed += 1
            }
            if lastFinish < deadline && failures.isEmpty {
                launch()
            }
        }

        for _ in 0..<inflight { launch() }
        try harness.run(until: { active == 0 }, timeout: seconds + 60, what: "waiting for \(active) jobs to finish")

        let elapsed = Double(lastFinish - started) / 1e9
        report(
            "throughput",
            [
                ("system", "jobworker"), ("inflight", String(inflight)), ("jobs", String(completed)),
                ("seconds", formatSeconds(elapsed)),
                ("rate", format1(Double(completed) / elapsed)), ("failed", String(failures.count)),
            ]
                + meter.fields())
        if let failure = failures.first { throw LoadError("\(failures.count) jobs failed, first: \(failure)") }
    }
}
