import CSystem
import Cgroups
import Foundation
import Glibc
import Reactor
import XCTest

@testable import Jobs

final class JobOutputTests: XCTestCase {
    func testEverySubscriberGetsTheWholeOutput() throws {
        let harness = try JobHarness.withCgroups()
        defer { harness.close() }
        let job = try harness.sh("echo hello; sleep 1; printf world")
        let live = JobHarness.Collector(harness.manager.subscribe(job))
        XCTAssertTrue(try harness.loop.run(until: { !live.collected.stdout.isEmpty }, timeout: .seconds(5)))
        let midway = JobHarness.Collector(harness.manager.subscribe(job))
        XCTAssertTrue(try harness.loop.run(until: { live.isDone && midway.isDone }, timeout: .seconds(5)))
        let afterEnd = try harness.collect(job)

        for (name, collected) in [("live", live.collected), ("midway", midway.collected), ("after the end", afterEnd)] {
            XCTAssertEqual(text(collected.stdout), "hello\nworld", name)
            XCTAssertEqual(collected.stderr, [], name)
            XCTAssertEqual(collected.status?.exitCode, 0, name)
        }
    }

    func testRingChunksAreSharedNotCopied() throws {
        let harness = try JobHarness.withoutCgroups()
        defer { harness.close() }
        let job = try harness.sh("printf abc; sleep 5")
        let first = harness.manager.subscribe(job)
        let second = harness.manager.subscribe(job)
        var readable = false
        first.onReadable = { readable = true }
        XCTAssertNil(try first.next())
        XCTAssertTrue(try harness.loop.run(until: { readable }, timeout: .seconds(5)))

        guard case .output(let a, .stdout)? = try first.next(), case .output(let b, .stdout)? = try second.next() else {
            return XCTFail("expected a stdout chunk for both subscribers")
        }
        XCTAssertTrue(a === b, "subscribers must share the chunk object")
        XCTAssertEqual(a.array, Array("abc".utf8))
        first.cancel()
        second.cancel()
        _ = try harness.stop(job, grace: .seconds(1))
    }

    func testCancelFreesSubscriptionAtOnce() throws {
        let harness = try JobHarness.withoutCgroups()
        defer { harness.close() }
        let job = try harness.sh("sleep 0.2; echo late")
        var fired = false
        weak var released: Subscription?
        do {
            let subscription = harness.manager.subscribe(job)
            released = subscription
            subscription.onReadable = { fired = true }
            XCTAssertNil(try subscription.next(), "nothing written yet")
            subscription.cancel()
        }

        XCTAssertNil(released, "the job still references a cancelled subscription")
        try harness.waitUntilFinished(job)
        XCTAssertFalse(fired, "onReadable fired after cancel")
    }

    func testStderrAndStdoutKeepTheirOrder() throws {
        let harness = try JobHarness.withCgroups()
        defer { harness.close() }
        let job = try harness.sh("echo one; sleep 0.1; echo two >&2; sleep 0.1; echo three")
        var events: [String] = []
        let subscription = harness.manager.subscribe(job)
        var done = false
        func drain() {
            while let event = try? subscription.next() {
                switch event {
                case .output(let bytes, let stream): events.append("\(stream):\(text(bytes.array))")
                case .finished: done = true
                }
            }
        }
        subscription.onReadable = { drain() }
        drain()
        XCTAssertTrue(try harness.loop.run(until: { done }, timeout: .seconds(5)))
        XCTAssertEqual(events, ["stdout:one\n", "stderr:two\n", "stdout:three\n"])
    }

    /// A job writes 200 MB to stdout and stderr in pieces of random size and copies both
    /// streams to files. Every subscriber must receive exactly those bytes.
    func testLargeOutputWithManySubscribers() throws {
        let harness = try JobHarness.withCgroups()
        defer { harness.close() }
        let script = """
            import os, random, sys
            rng = random.Random(int(sys.argv[3]))
            pool = rng.randbytes(1 << 20)
            total = 200 * 1000 * 1000
            copies = {1: open(sys.argv[1], "wb"), 2: open(sys.argv[2], "wb")}
            written = 0
            while written < total:
                size = rng.randint(1, 150000)
                start = rng.randint(0, len(pool) - size)
                piece = pool[start:start + size]
                fd = 1 if rng.random() < 0.6 else 2
                view = memoryview(piece)
                while view:
                    view = view[os.write(fd, view):]
                copies[fd].write(piece)
                written += size
            for f in copies.values():
                f.close()
            """
        let scriptPath = harness.stateDirectory + "/writer.py"
        try script.write(toFile: scriptPath, atomically: true, encoding: .utf8)

        func run(
            _ name: String, attach: (Job) -> Void
        ) throws -> (job: Job, seconds: Double, stdout: String, stderr: String) {
            let stdoutCopy = harness.stateDirectory + "/\(name).stdout"
            let stderrCopy = harness.stateDirectory + "/\(name).stderr"
            let started = MonotonicClock.nanoseconds()
            let job = try harness.start("/usr/bin/python3", [scriptPath, stdoutCopy, stderrCopy, "7"], id: name)
            attach(job)
            try harness.waitUntilFinished(job, timeout: .seconds(300))
            return (job, Double(MonotonicClock.nanoseconds() - started) / 1e9, stdoutCopy, stderrCopy)
        }

        // Run time alone, then with one subscriber that never reads. It keeps a cursor, not a
        // queue, so the job must not slow down.
        let baseline = try run("baseline") { _ in }
        var stalled: Subscription?
        let withStalled = try run("stalled") { job in
            stalled = harness.manager.subscribe(job)
            XCTAssertNil(try? stalled?.next())
        }
        XCTAssertLessThan(
            withStalled.seconds, baseline.seconds * 3 + 2,
            "the job ran \(withStalled.seconds) s with a stalled subscriber, \(baseline.seconds) s alone")
        stalled?.cancel()

        // Ten readers attach at random moments within the baseline's run time.
        var collectors: [JobHarness.Collector] = []
        var maxRingBytes = 0
        var maxPendingBytes = 0
        var maxPendingRecords = 0
        var generator = SystemRandomNumberGenerator()
        let observed = try run("observed") { job in
            for _ in 0..<10 {
                let delay = Double.random(in: 0...max(baseline.seconds, 0.1), using: &generator)
                harness.loop.scheduleTimer(after: .milliseconds(Int(delay * 1000))) {
                    collectors.append(JobHarness.Collector(harness.manager.subscribe(job)))
                }
            }
            // Sample the job's buffers every few milliseconds while it runs.
            func sample() {
                guard let output = job.output else { return }
                maxRingBytes = max(maxRingBytes, output.chunks.byteCount)
                maxPendingBytes = max(maxPendingBytes, output.pendingBytes)
                maxPendingRecords = max(maxPendingRecords, output.pendingRecordCount)
                harness.loop.scheduleTimer(after: .milliseconds(5)) { sample() }
            }
            sample()
        }
        XCTAssertTrue(
            try harness.loop.run(
                until: { collectors.count == 10 && collectors.allSatisfy(\.isDone) },
                timeout: .seconds(300)))

        let expectedStdout = try Data(contentsOf: URL(fileURLWithPath: observed.stdout))
        let expectedStderr = try Data(contentsOf: URL(fileURLWithPath: observed.stderr))
        XCTAssertGreaterThanOrEqual(expectedStdout.count + expectedStderr.count, 200_000_000)
        for (index, collector) in collectors.enumerated() {
            XCTAssertNil(collector.collected.error, "subscriber \(index)")
            XCTAssertEqual(
                collector.collected.stdoutData.count, expectedStdout.count, "subscriber \(index) stdout size")
            XCTAssertEqual(
                collector.collected.stderrData.count, expectedStderr.count, "subscriber \(index) stderr size")
            XCTAssertTrue(collector.collected.stdoutData == expectedStdout, "subscriber \(index) stdout bytes")
            XCTAssertTrue(collector.collected.stderrData == expectedStderr, "subscriber \(index) stderr bytes")
            XCTAssertEqual(collector.collected.status?.exitCode, 0, "subscriber \(index)")
        }
        XCTAssertEqual(observed.job.status.exitCode, 0)

        // Memory per job stays within the ring's capacity plus the writes allowed in flight.
        let slack = OutputLogFormat.maxPayloadSize * 2  // one read per pipe past the threshold
        XCTAssertLessThanOrEqual(
            maxRingBytes, harness.manager.outputBufferBytes + harness.manager.maxPendingWriteBytes + slack)
        XCTAssertLessThanOrEqual(maxPendingBytes, harness.manager.maxPendingWriteBytes + slack)
        // The final drain after the leader exits may add a few records past the cap.
        XCTAssertLessThanOrEqual(maxPendingRecords, OutputLog.maxPendingRecords + 8)
    }

    func testFullWriteQueuePausesThePipeWithoutLoss() throws {
        // Two ring slots and two queued writes: most appends meet a full queue (EAGAIN).
        let harness = try JobHarness.withCgroups(ringEntries: 2, maxQueuedWrites: 2)
        defer { harness.close() }
        harness.manager.maxPendingWriteBytes = 8 << 20  // the queue, not this, must stop the reads
        harness.manager.outputBufferBytes = 64 * 1024
        let copy = harness.stateDirectory + "/copy"
        let job = try harness.sh("head -c 20000000 /dev/urandom | tee \(copy)")
        let collector = JobHarness.Collector(harness.manager.subscribe(job))

        XCTAssertTrue(try harness.loop.run(until: { collector.isDone }, timeout: .seconds(60)))
        let expected = try Data(contentsOf: URL(fileURLWithPath: copy))
        XCTAssertEqual(expected.count, 20_000_000)
        XCTAssertEqual(collector.collected.stdoutData.count, expected.count)
        XCTAssertTrue(collector.collected.stdoutData == expected, "stdout bytes differ")
        XCTAssertEqual(job.cleanupErrors, [])
    }
}
