import GRPCLite
import Glibc
import JobAPI
import Reactor

/// Fan-out latency against jobd: one job runs perf/ticker, N subscribers stream it, and each
/// record's receive time minus its write time is recorded per subscriber.
///
/// The job prints "ready", then blocks reading a FIFO; once every subscriber has received
/// "ready" (so each one follows live output), the load generator writes to the FIFO and
/// the job execs the ticker. Records written in the first `--warmup` seconds are skipped.
enum FanoutBenchmark {
    static func run(_ arguments: Arguments) throws {
        let server = try arguments.server()
        let tls = try arguments.grpcTLS()
        let subscribers = try arguments.int("subscribers")
        let connectionCount = min(subscribers, try arguments.int("connections", default: subscribers))
        let ticker = try arguments.string("ticker")
        let seconds = try arguments.seconds("seconds", default: 5)
        let payload = try arguments.int("payload", default: 128)
        let intervalMicroseconds = try arguments.int("interval-us", default: 1000)
        let warmup = try arguments.seconds("warmup", default: 0.5)
        let fifo = try arguments.string("fifo")
        let serverPID = try arguments.serverPID()
        guard subscribers > 0, connectionCount > 0 else {
            throw LoadError("invalid --subscribers \(subscribers): expected at least 1")
        }

        guard mkfifo(fifo, 0o600) == 0 else {
            throw LoadError(
                "cannot create FIFO \(fifo): \(String(cString: strerror(errno))): pass a path in an empty directory")
        }
        defer { unlink(fifo) }

        let harness = try Harness()
        let control = try harness.connectChannels(count: 1, server: server, tls: tls)[0]
        let connections = try harness.connectChannels(count: connectionCount, server: server, tls: tls)
        defer {
            control.close()
            connections.forEach { $0.close() }
        }

        let script = "echo ready; read go < \(fifo); exec \(ticker) \(seconds) \(payload) \(intervalMicroseconds)"
        var jobID: String?
        var startError: LoadError?
        JobCalls.start(on: control, command: "/bin/sh", arguments: ["-c", script]) { result in
            switch result {
            case .success(let id): jobID = id
            case .failure(let error): startError = error
            }
        }
        try harness.run(until: { jobID != nil || startError != nil }, timeout: 30, what: "starting the ticker job")
        if let startError { throw startError }

        let expectedRecords = Int(seconds * 1_000_000) / max(intervalMicroseconds, 1)
        let recorder = LatencyRecorder(expected: subscribers * expectedRecords)
        var ready = 0
        var finished = 0
        var messages = 0
        var failures: [String] = []
        for index in 0..<subscribers {
            var splitter = LineSplitter()
            var sawReady = false
            JobCalls.stream(
                on: connections[index % connectionCount], jobID: jobID!,
                onOutput: { bytes, time in
                    messages += 1
                    splitter.feed(bytes) { line in
                        if !recorder.record(line, receivedAt: time) && !sawReady {
                            sawReady = true
                            ready += 1
                        }
                    }
                },
                completion: { result in
                    finished += 1
                    if case .failure(let error) = result { failures.append(error.description) }
                })
        }
        try harness.run(
            until: { ready == subscribers || !failures.isEmpty }, timeout: 120,
            what: "waiting for \(subscribers) subscribers to follow the job")
        if let failure = failures.first { throw LoadError(failure) }

        try releaseTicker(fifo: fifo, harness: harness)
        let meter = CPUMeter(serverPID: serverPID)
        let started = MonotonicClock.nanoseconds()
        recorder.measureFrom = started + UInt64(warmup * 1e9)
        try harness.run(
            until: { finished == subscribers }, timeout: seconds + 120, what: "waiting for the ticker job to end")

        report(
            "fanout",
            [("system", "jobworker"), ("subscribers", String(subscribers)), ("connections", String(connectionCount))]
                + recorder.summary()
                + [
                    (
                        "expected",
                        String(
                            max(0, expectedRecords - Int(warmup * 1_000_000) / max(intervalMicroseconds, 1))
                                * subscribers)
                    ),
                    ("messages", String(messages)), ("failed", String(failures.count)),
                ]
                + meter.fields())
        if let failure = failures.first { throw LoadError("\(failures.count) streams failed, first: \(failure)") }
    }

    /// Opens the FIFO for writing once the job's shell has opened it for reading (ENXIO
    /// until then, fifo(7)), and writes the line that lets the job exec the ticker.
    private static func releaseTicker(fifo: String, harness: Harness) throws {
        let deadline = MonotonicClock.nanoseconds() + 10_000_000_000
        while true {
            let fd = open(fifo, O_WRONLY | O_NONBLOCK | O_CLOEXEC)
            if fd >= 0 {
                _ = write(fd, "go\n", 3)
                close(fd)
                return
            }
            guard errno == ENXIO, MonotonicClock.nanoseconds() < deadline else {
                throw LoadError("cannot open FIFO \(fifo) for writing: \(String(cString: strerror(errno)))")
            }
            try harness.run(for: 0.002)
        }
    }
}
