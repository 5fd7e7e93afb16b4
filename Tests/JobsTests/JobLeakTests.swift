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
        let cgroupsBefore = try harness.cgroups!.listJobCgroups()
        let registrationsBefore = harness.loop.registeredCount  // the io_uring's eventfd

        for index in 0..<1000 {
            let job = try harness.sh("echo \(index)")
            let status = try harness.waitUntilFinished(job)
            XCTAssertEqual(status.exitCode, 0, "job \(index)")
            if status.exitCode != 0 { break }
        }

        XCTAssertEqual(zombieChildren(), [], "zombie children remain")
        XCTAssertEqual(openFDCount(), fdsBefore, "fds leaked")
        XCTAssertEqual(try harness.cgroups!.listJobCgroups(), cgroupsBefore, "cgroups leaked")
        XCTAssertEqual(harness.loop.registeredCount, registrationsBefore, "loop registrations leaked")
        XCTAssertEqual(harness.loop.pendingTimerCount, 0, "timers leaked")
        XCTAssertEqual(harness.manager.allJobs.count, 1001)
    }
}
