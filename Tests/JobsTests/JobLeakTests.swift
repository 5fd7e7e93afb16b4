import Foundation
import Glibc
import Reactor
import XCTest

@testable import Jobs

final class JobLeakTests: XCTestCase {
    func testThousandShortJobsLeaveNothingBehind() throws {
        let harness = try JobHarness.withCgroups()
        defer { harness.close() }
        // Warm up once so lazily opened fds of the runtime are not counted as leaks.
        try harness.waitUntilFinished(try harness.sh("echo warm"))
        let fdsBefore = openFDCount()
        let registrationsBefore = harness.loop.registeredCount  // the io_uring's eventfd

        var ids: Set<String> = []
        for index in 0..<1000 {
            let job = try harness.sh("echo \(index)")
            ids.insert(job.id)
            let status = try harness.waitUntilFinished(job)
            XCTAssertEqual(status.exitCode, 0, "job \(index)")
            XCTAssertEqual(job.cleanupErrors, [], "job \(index)")
            if status.exitCode != 0 || !job.cleanupErrors.isEmpty { break }
        }

        XCTAssertEqual(zombieChildren(), [], "zombie children remain")
        XCTAssertEqual(openFDCount(), fdsBefore, "fds leaked")
        let leftover = Set(try harness.cgroups!.listJobCgroups()).intersection(ids)
        XCTAssertEqual(leftover, [], "cgroups leaked")
        XCTAssertEqual(harness.loop.registeredCount, registrationsBefore, "loop registrations leaked")
        XCTAssertEqual(harness.loop.pendingTimerCount, 0, "timers leaked")
        XCTAssertEqual(harness.manager.allJobs.count, 1001)
    }
}
