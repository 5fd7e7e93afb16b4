import Foundation
import XCTest

/// A second jobd must not take over the state directory or the cgroup subtree of a running one:
/// its crash recovery would record the first one's jobs as stopped and kill their processes.
final class SharedResourceTests: EndToEndTestCase {
    func testSecondJobdOnSameStateDirectoryFails() throws {
        let first = try startJobd()

        XCTAssertThrowsError(try startJobd()) { error in
            XCTAssertTrue("\(error)".contains("is in use by another jobd"), "\(error)")
            XCTAssertTrue("\(error)".contains("--state-dir"), "the message must name the fix: \(error)")
        }
        XCTAssertEqual(try jobctl(["list"], on: first).status, 0, "the first jobd must keep serving")
    }

    func testSecondJobdOnSameCgroupSubtreeFails() throws {
        let first = try startJobd()
        let jobID = try startJob(["sleep", "600"], on: first)

        XCTAssertThrowsError(try startJobd(stateDirectory: scratch + "/other-state")) { error in
            XCTAssertTrue("\(error)".contains("uses this cgroup subtree"), "\(error)")
            XCTAssertTrue("\(error)".contains("--cgroup-root"), "the message must name the fix: \(error)")
        }

        let status = try queryJSON(jobID, on: first)
        XCTAssertEqual(status["state"] as? String, "JOB_STATE_RUNNING", "the first jobd's job must survive")
        XCTAssertEqual(try jobctl(["stop", jobID], on: first).status, 0)
    }

    func testCleanStopRemovesCgroupSubtree() throws {
        let jobd = try startJobd()
        XCTAssertEqual(try jobctl(["run", "true"], on: jobd).status, 0)
        let subtrees = CgroupCleanup.ownCgroupDirectories().map { $0 + "/" + cgroupSubtree }
        XCTAssertTrue(
            subtrees.contains { FileManager.default.fileExists(atPath: $0) }, "jobd created no subtree: \(subtrees)")

        XCTAssertTrue(jobd.stop(), "jobd did not exit cleanly on SIGTERM:\n\(jobd.log)")

        let left = subtrees.filter { FileManager.default.fileExists(atPath: $0) }
        XCTAssertEqual(left, [], "a clean stop must remove the empty cgroup subtree")
    }
}
