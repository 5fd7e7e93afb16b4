import Cgroups
import Foundation
import Glibc
import Reactor
import XCTest

@testable import Jobs

/// A loop, an io_uring, a temporary state directory and a JobManager, driven on the test
/// thread. Tear down with `close()`.
final class JobHarness {
    let loop: EventLoop
    let ring: IORing
    let stateDirectory: String
    let cgroups: CgroupManager?
    private(set) var manager: JobManager

    /// Makes a harness with real cgroups. Without root or writable cgroups the test is
    /// skipped, except under CI=true, where that is a failure.
    static func withCgroups(ringEntries: UInt32 = 256, maxQueuedWrites: Int = 4096) throws -> JobHarness {
        let directory = try makeStateDirectory()
        guard getuid() == 0 else {
            try skipOrFail("cgroups need root; run the tests as root (CI=true makes this a failure)")
        }
        let cgroups: CgroupManager
        do {
            // One subtree per test process: concurrent runs (other worktrees, CI) must not
            // see or remove each other's job cgroups.
            cgroups = try CgroupManager.detect(
                subtreeName: "jobworker-jobs-tests-\(getpid())", stateDirectory: directory, ioDevice: nil)
        } catch {
            try skipOrFail("cgroups are not writable here: \(error)")
        }
        return try JobHarness(
            stateDirectory: directory, cgroups: cgroups, ringEntries: ringEntries, maxQueuedWrites: maxQueuedWrites)
    }

    /// Makes a harness whose jobs run without cgroups.
    static func withoutCgroups() throws -> JobHarness {
        try JobHarness(stateDirectory: try makeStateDirectory(), cgroups: nil)
    }

    private init(
        stateDirectory: String, cgroups: CgroupManager?, ringEntries: UInt32 = 256, maxQueuedWrites: Int = 4096
    ) throws {
        self.loop = try EventLoop()
        self.ring = try IORing(loop: loop, entries: ringEntries, maxQueuedWrites: maxQueuedWrites)
        self.stateDirectory = stateDirectory
        self.cgroups = cgroups
        self.manager = try JobManager(loop: loop, ring: ring, cgroups: cgroups, stateDirectory: stateDirectory)
    }

    private static func makeStateDirectory() throws -> String {
        let path = NSTemporaryDirectory() + "jobs-tests-\(getpid())-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    private static func skipOrFail(_ reason: String) throws -> Never {
        if ProcessInfo.processInfo.environment["CI"] == "true" {
            XCTFail(reason)
            throw XCTSkip("failed: \(reason)")
        }
        throw XCTSkip(reason)
    }

    /// Replaces the manager with a new one on the same state directory, as after a restart.
    func restartManager() throws -> JobManager {
        manager = try JobManager(loop: loop, ring: ring, cgroups: cgroups, stateDirectory: stateDirectory)
        return manager
    }

    /// Stops jobs a failed test left running, so no process outlives the test, then closes
    /// the ring and removes the state directory.
    func close() {
        for job in manager.allJobs where !job.isFinished {
            manager.stop(job, grace: .zero) { _ in }
        }
        _ = try? loop.run(until: { self.manager.allJobs.allSatisfy(\.isFinished) }, timeout: .seconds(10))
        ring.close()
        try? FileManager.default.removeItem(atPath: stateDirectory)
        // Empty once every job finished. On v2 the subtree keeps the leaf this process was
        // moved into, which cannot be removed while the process lives.
        for directory in cgroups?.jobsDirectories ?? [] {
            rmdir(directory)
        }
    }

    func start(_ command: String, _ arguments: [String] = [], id: String? = nil) throws -> Job {
        try manager.start(JobSpec(id: id, owner: "test", command: command, arguments: arguments))
    }

    func sh(_ script: String, id: String? = nil) throws -> Job {
        try start("/bin/sh", ["-c", script], id: id)
    }

    /// Runs the loop until `job` finished; fails the test on timeout.
    @discardableResult
    func waitUntilFinished(
        _ job: Job, timeout: Duration = .seconds(10), file: StaticString = #filePath,
        line: UInt = #line
    ) throws -> JobStatus {
        let finished = try loop.run(until: { job.isFinished }, timeout: timeout)
        XCTAssertTrue(finished, "job \(job.id) did not finish within \(timeout)", file: file, line: line)
        return job.status
    }

    /// Output and final status collected by a `Collector`.
    struct Collected {
        // Data, whose append and == are memcpy and memcmp even in debug builds.
        var stdoutData = Data()
        var stderrData = Data()
        var stdout: [UInt8] { [UInt8](stdoutData) }
        var stderr: [UInt8] { [UInt8](stderrData) }
        var chunks = 0
        var status: JobStatus?
        var error: Error?
    }

    /// Reads a subscription whenever it is readable, on the loop thread.
    final class Collector {
        let subscription: Subscription
        var collected = Collected()
        var isDone: Bool { collected.status != nil || collected.error != nil }

        init(_ subscription: Subscription) {
            self.subscription = subscription
            subscription.onReadable = { [unowned self] in self.drain() }
            drain()
        }

        func drain() {
            do {
                while let event = try subscription.next() {
                    switch event {
                    case .output(let bytes, .stdout):
                        collected.stdoutData.append(
                            bytes.baseAddress.assumingMemoryBound(to: UInt8.self), count: bytes.count)
                        collected.chunks += 1
                    case .output(let bytes, .stderr):
                        collected.stderrData.append(
                            bytes.baseAddress.assumingMemoryBound(to: UInt8.self), count: bytes.count)
                        collected.chunks += 1
                    case .finished(let status):
                        collected.status = status
                        return
                    }
                }
            } catch {
                collected.error = error
            }
        }
    }

    /// Subscribes to `job` and runs the loop until the subscription ends.
    func collect(
        _ job: Job, timeout: Duration = .seconds(10), file: StaticString = #filePath,
        line: UInt = #line
    ) throws -> Collected {
        let collector = Collector(manager.subscribe(job))
        let done = try loop.run(until: { collector.isDone }, timeout: timeout)
        XCTAssertTrue(done, "stream of job \(job.id) did not end within \(timeout)", file: file, line: line)
        if let error = collector.collected.error { throw error }
        return collector.collected
    }

    /// Stops `job` and runs the loop until the Stop completes.
    func stop(_ job: Job, grace: Duration, timeout: Duration = .seconds(15)) throws -> JobStatus? {
        var result: JobStatus?
        manager.stop(job, grace: grace) { result = $0 }
        _ = try loop.run(until: { result != nil }, timeout: timeout)
        return result
    }
}

/// Returns the text of `bytes` as UTF-8, for readable asserts.
func text(_ bytes: [UInt8]) -> String {
    String(decoding: bytes, as: UTF8.self)
}

/// Returns whether a process with `pid` exists (a zombie counts as gone).
func processExists(_ pid: Int32) -> Bool {
    guard let state = processState(pid) else { return false }
    return state != "Z" && state != "X"
}
