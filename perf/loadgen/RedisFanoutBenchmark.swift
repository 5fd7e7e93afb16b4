import Glibc
import Reactor

/// The fan-out baseline: N Redis pub/sub subscribers, each on its own connection (plain TCP
/// or TLS), receive records that perf/redis_publisher publishes at the ticker's rate and
/// size. Latency is measured exactly as for jobd. The publisher ends with the message "end".
enum RedisFanoutBenchmark {
    static func run(_ arguments: Arguments) throws {
        let port = UInt16(try arguments.int("port"))
        let subscribers = try arguments.int("subscribers")
        let channel = try arguments.string("channel", default: "ticker")
        let seconds = try arguments.seconds("seconds", default: 5)
        let warmup = try arguments.seconds("warmup", default: 0.5)
        let intervalMicroseconds = try arguments.int("interval-us", default: 1000)
        let useTLS = try arguments.string("tls", default: "no") == "yes"
        let tls = useTLS ? try arguments.tls(alpn: nil) : nil
        let serverPID = try arguments.serverPID()

        let harness = try Harness()
        let expectedRecords = Int(seconds * 1_000_000) / max(intervalMicroseconds, 1)
        let recorder = LatencyRecorder(expected: subscribers * expectedRecords)
        var subscribed = 0
        var ended = 0
        var failures: [String] = []
        var firstRecordTime: UInt64 = 0
        var transports: [ClientTransport] = []
        defer { transports.forEach { $0.close(reason: nil) } }

        let command = "*2\r\n$9\r\nSUBSCRIBE\r\n$\(channel.utf8.count)\r\n\(channel)\r\n"
        for index in 0..<subscribers {
            // At most 32 handshakes are pending at a time, as for jobd, well below Redis's
            // default accept backlog of 511 (tcp-backlog in redis.conf).
            if index - subscribed >= 32 {
                try harness.run(
                    until: { index - subscribed < 32 || !failures.isEmpty }, timeout: 60,
                    what: "subscribing \(index) of \(subscribers)")
            }
            if let failure = failures.first { throw LoadError(failure) }
            let transport = try ClientTransport(
                loop: harness.loop, host: "127.0.0.1", port: port, tls: tls, readBuffer: harness.readBuffer)
            var reader = RESPReader()
            var done = false
            transport.onOpen = { [unowned transport] in
                Array(command.utf8).withUnsafeBytes { transport.send($0) }
            }
            transport.onData = { bytes, time in
                reader.append(bytes)
                do {
                    while let reply = try reader.next() {
                        guard reply.count == 3, case .bulk(let kind) = reply[0] else {
                            failures.append("unexpected reply from Redis: \(reply)")
                            return
                        }
                        if kind.elementsEqual("subscribe".utf8) {
                            subscribed += 1
                        } else if case .bulk(let payload) = reply[2] {
                            if payload.elementsEqual("end".utf8) {
                                if !done {
                                    done = true
                                    ended += 1
                                }
                                continue
                            }
                            payload.withUnsafeBytes { bytes in
                                if firstRecordTime == 0 {
                                    firstRecordTime = time
                                    recorder.measureFrom = time + UInt64(warmup * 1e9)
                                }
                                recorder.record(bytes, receivedAt: time)
                            }
                        }
                    }
                } catch {
                    failures.append("\(error)")
                }
            }
            transport.onClose = { reason in
                if !done { failures.append("Redis connection closed: \(reason ?? "by the client")") }
            }
            transports.append(transport)
        }
        try harness.run(
            until: { subscribed == subscribers || !failures.isEmpty }, timeout: 60,
            what: "subscribing \(subscribers) clients")
        if let failure = failures.first { throw LoadError(failure) }
        let meter = CPUMeter(serverPID: serverPID)

        try harness.run(
            until: { ended == subscribers || !failures.isEmpty }, timeout: seconds + 120,
            what: "waiting for the publisher's end message")
        report(
            "fanout",
            [
                ("system", useTLS ? "redis-tls" : "redis"), ("subscribers", String(subscribers)),
                ("connections", String(subscribers)),
            ]
                + recorder.summary()
                + [
                    (
                        "expected",
                        String(
                            max(0, expectedRecords - Int(warmup * 1_000_000) / max(intervalMicroseconds, 1))
                                * subscribers)
                    ),
                    ("failed", String(failures.count)),
                ]
                + meter.fields())
        if let failure = failures.first { throw LoadError(failure) }
    }
}
