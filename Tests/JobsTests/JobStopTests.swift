import CSystem
import Cgroups
import Foundation
import Glibc
import Reactor
import XCTest

@testable import Jobs

final class JobStopTests: XCTestCase {
    func testStopKillsEveryProcessOfTheCgroup() throws {
        let harness = try JobHarness.withCgroups()
        defer { harness.close() }
        let pidFile = harness.stateDirectory + "/pids"
        let job = try harness.sh(
            """
            sleep 1000 & echo $! >> \(pidFile)
            setsid sleep 1000 & echo $! >> \(pidFile)
            (trap "" TERM HUP; sleep 1000) & echo $! >> \(pidFile)
            echo ready
            wait
            """)
        let collector = JobHarness.Collector(harness.manager.subscribe(job))
        XCTAssertTrue(
            try harness.loop.run(until: { collector.collected.stdout == Array("ready\n".utf8) }, timeout: .seconds(5)))
        let cgroup = try XCTUnwrap(harness.cgroups?.open(name: job.id))
        let members = try cgroup.members()
        XCTAssertGreaterThanOrEqual(members.count, 4, "sh and three sleeps")

        let status = try XCTUnwrap(try harness.stop(job, grace: .seconds(2)))

        XCTAssertEqual(status.state, .stopped)
        XCTAssertEqual(status.signal, SIGTERM)
        for pid in members {
            XCTAssertFalse(processExists(pid), "process \(pid) of the job survived Stop")
        }
        XCTAssertFalse(try harness.cgroups!.listJobCgroups().contains(job.id), "the job's cgroup survived Stop")
        XCTAssertEqual(job.cleanupErrors, [])
        XCTAssertNil(harness.cgroups?.open(name: job.id))
    }

    func testStopEscalatesToSIGKILLAfterGrace() throws {
        let harness = try JobHarness.withCgroups()
        defer { harness.close() }
        let job = try harness.sh("trap '' TERM; echo ready; while :; do sleep 1; done")
        let collector = JobHarness.Collector(harness.manager.subscribe(job))
        XCTAssertTrue(try harness.loop.run(until: { !collector.collected.stdout.isEmpty }, timeout: .seconds(5)))

        var first: JobStatus?
        var second: JobStatus?
        let stopStarted = MonotonicClock.nanoseconds()
        harness.manager.stop(job, grace: .seconds(2)) { first = $0 }
        XCTAssertTrue(try harness.loop.run(until: { false }, timeout: .milliseconds(500)) == false)
        // Half-way through the grace period: still running, and a second Stop joins the first.
        XCTAssertEqual(job.status.state, .running)
        harness.manager.stop(job, grace: .seconds(30)) { second = $0 }
        XCTAssertNil(first)

        XCTAssertTrue(try harness.loop.run(until: { first != nil && second != nil }, timeout: .seconds(10)))
        let elapsed = Double(MonotonicClock.nanoseconds() - stopStarted) / 1e9
        XCTAssertEqual(first?.state, .stopped)
        XCTAssertEqual(first?.signal, SIGKILL)
        XCTAssertEqual(first, second)
        XCTAssertGreaterThanOrEqual(elapsed, 1.9, "SIGKILL came before the grace period ended")
        XCTAssertLessThan(elapsed, 4.0, "SIGKILL came long after the grace period ended")
        XCTAssertEqual(job.cleanupErrors, [])
    }

    func testStopOfFinishedJobReturnsItsStatus() throws {
        let harness = try JobHarness.withCgroups()
        defer { harness.close() }
        let job = try harness.sh("exit 3")
        let finished = try harness.waitUntilFinished(job)

        var result: JobStatus?
        harness.manager.stop(job, grace: .seconds(1)) { result = $0 }

        XCTAssertEqual(result, finished, "Stop of a finished job completes at once")
        XCTAssertEqual(result?.state, .exited)
        XCTAssertEqual(result?.exitCode, 3)
    }
}
