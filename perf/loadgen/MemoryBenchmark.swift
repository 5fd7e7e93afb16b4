import GRPCLite
import Glibc
import JobAPI
import Reactor

/// jobd's resident memory (VmRSS in /proc/PID/status) per running job and per idle
/// subscriber, each as the growth over the state just before divided by the count.
///
/// Jobs: RSS after one finished warm-up job, then with `--jobs` `sleep` jobs running; they
/// are stopped afterwards. Subscribers: RSS with `--connections` connections open and
/// one Query done on each, then with `--subscribers` Stream calls spread over them, all
/// following one job that printed a line and sleeps, so every stream is idle once that
/// line has arrived.
enum MemoryBenchmark {
    static func run(_ arguments: Arguments) throws {
        let server = try arguments.server()
        let tls = try arguments.grpcTLS()
        let pid = try arguments.int("pid")
        let jobCount = try arguments.int("jobs", default: 1000)
        let subscriberCount = try arguments.int("subscribers", default: 10000)
        let connectionCount = max(1, try arguments.int("connections", default: 100))
        let inflight = max(1, try arguments.int("inflight", default: 16))
        let settle = try arguments.seconds("settle", default: 1)

        let harness = try Harness()
        let control = try harness.connectChannels(count: 1, server: server, tls: tls)[0]
        defer { control.close() }

        _ = try startJobs(1, command: "/bin/true", on: control, inflight: 1, harness: harness)
        try harness.run(for: settle)
        let idle = try residentBytes(pid: pid)

        let sleepers = try startJobs(
            jobCount, command: "/bin/sleep", arguments: ["600"], on: control, inflight: inflight, harness: harness)
        try harness.run(for: settle)
        let withJobs = try residentBytes(pid: pid)
        try stopJobs(sleepers, on: control, inflight: inflight, harness: harness)
        report(
            "memory-jobs",
            [
                ("jobs", String(jobCount)), ("idle_rss", String(idle)), ("rss", String(withJobs)),
                ("bytes_per_job", String((withJobs - idle) / max(jobCount, 1))),
            ])

        try measureSubscribers(
            subscriberCount, connections: connectionCount, pid: pid, control: control, server: server, tls: tls,
            settle: settle,
            harness: harness)
    }

    private static func measureSubscribers(
        _ count: Int, connections connectionCount: Int, pid: Int, control: GRPCChannel,
        server: (host: String, port: UInt16),
        tls: TLSConfiguration, settle: Double, harness: Harness
    ) throws {
        let job = try startJobs(
            1, command: "/bin/sh", arguments: ["-c", "echo ready; exec sleep 600"], on: control, inflight: 1,
            harness: harness)[0]
        let beforeConnections = try residentBytes(pid: pid)
        let connections = try harness.connectChannels(count: connectionCount, server: server, tls: tls)
        defer { connections.forEach { $0.close() } }
        var answered = 0
        for connection in connections {
            JobCalls.query(on: connection, jobID: job) { _ in answered += 1 }
        }
        try harness.run(
            until: { answered == connectionCount }, timeout: 60, what: "querying on \(connectionCount) connections")
        try harness.run(for: settle)
        let withConnections = try residentBytes(pid: pid)

        var following = 0
        var failures: [String] = []
        for index in 0..<count {
            var sawOutput = false
            JobCalls.stream(
                on: connections[index % connectionCount], jobID: job,
                onOutput: { _, _ in
                    if !sawOutput {
                        sawOutput = true
                        following += 1
                    }
                },
                completion: { result in
                    if case .failure(let error) = result { failures.append(error.description) }
                })
        }
        try harness.run(
            until: { following == count || !failures.isEmpty }, timeout: 120, what: "opening \(count) streams")
        if let failure = failures.first { throw LoadError(failure) }
        try harness.run(for: settle)
        let withSubscribers = try residentBytes(pid: pid)
        try stopJobs([job], on: control, inflight: 1, harness: harness)

        report(
            "memory-subscribers",
            [
                ("subscribers", String(count)), ("connections", String(connectionCount)),
                ("rss_before_connections", String(beforeConnections)), ("rss_connections", String(withConnections)),
                ("rss", String(withSubscribers)),
                ("bytes_per_connection", String((withConnections - beforeConnections) / connectionCount)),
                ("bytes_per_subscriber", String((withSubscribers - withConnections) / max(count, 1))),
            ])
    }

    /// Starts `count` jobs with at most `inflight` Start calls outstanding; returns their ids.
    private static func startJobs(
        _ count: Int, command: String, arguments: [String] = [], on connection: GRPCChannel, inflight: Int,
        harness: Harness
    ) throws -> [String] {
        var ids: [String] = []
        var failures: [String] = []
        var issued = 0
        var active = 0
        func launch() {
            issued += 1
            active += 1
            JobCalls.start(on: connection, command: command, arguments: arguments) { result in
                active -= 1
                switch result {
                case .success(let id): ids.append(id)
                case .failure(let error): failures.append(error.description)
                }
                if issued < count && failures.isEmpty { launch() }
            }
        }
        for _ in 0..<min(inflight, count) { launch() }
        try harness.run(until: { active == 0 }, timeout: 300, what: "starting \(count) \(command) jobs")
        if let failure = failures.first { throw LoadError(failure) }
        return ids
    }

    /// Stops `jobs`, at most `inflight` Stop calls outstanding, and waits for every reply.
    private static func stopJobs(
        _ jobs: [String], on connection: GRPCChannel, inflight: Int, harness: Harness
    ) throws {
        var next = 0
        var active = 0
        var failed = 0
        func launch() {
            let job = jobs[next]
            next += 1
            active += 1
            JobCalls.stop(on: connection, jobID: job) { ok in
                active -= 1
                if !ok { failed += 1 }
                if next < jobs.count { launch() }
            }
        }
        for _ in 0..<min(inflight, jobs.count) { launch() }
        try harness.run(until: { active == 0 }, timeout: 300, what: "stopping \(jobs.count) jobs")
        if failed > 0 { throw LoadError("\(failed) of \(jobs.count) Stop calls failed") }
    }

    /// Returns VmRSS of process `pid` in bytes (proc_pid_status(5)).
    static func residentBytes(pid: Int) throws -> Int {
        guard let file = fopen("/proc/\(pid)/status", "r") else {
            throw LoadError(
                "cannot read /proc/\(pid)/status: \(String(cString: strerror(errno))): is jobd still running?")
        }
        defer { fclose(file) }
        var line = [CChar](repeating: 0, count: 256)
        while fgets(&line, Int32(line.count), file) != nil {
            let text = String(decoding: line.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            if text.hasPrefix("VmRSS:") {
                // The line reads "VmRSS:", blanks, the size, then "kB".
                let fields = text.dropFirst(6).split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" })
                guard let kilobytes = fields.first.flatMap({ Int($0) }) else {
                    throw LoadError("invalid VmRSS line in /proc/\(pid)/status: \(text)")
                }
                return kilobytes * 1024
            }
        }
        throw LoadError("no VmRSS line in /proc/\(pid)/status")
    }
}
