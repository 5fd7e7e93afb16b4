import Foundation
import XCTest

/// jobd short of file size, descriptors or disk: it must keep serving, log the failure once in plain words,
/// and tell clients what ran short instead of blaming their request or ending a stream as if complete.
final class ResourceShortageTests: EndToEndTestCase {
    /// A file size limit (RLIMIT_FSIZE, as systemd's LimitFSIZE= sets) makes log writes past it fail with
    /// EFBIG, and by default also sends SIGXFSZ, which would end jobd.
    func testOutputBeyondFileSizeLimitIsReported() throws {
        let jobd = try startJobd()
        // prlimit(1) from util-linux: Glibc's prlimit(2) is not visible to Swift without _GNU_SOURCE.
        let prlimit = try Command.run("/usr/bin/prlimit", ["--pid", "\(jobd.process.pid)", "--fsize=1048576:unlimited"])
        XCTAssertEqual(prlimit.status, 0, prlimit.stderrText)

        let jobID = try startJob(["head", "-c", "3000000", "/dev/zero"], on: jobd, as: writer)
        let status = try waitForState("JOB_STATE_EXITED", jobID: jobID, on: jobd)
        let stream = try jobctl(["stream", jobID], on: jobd, as: writer)

        XCTAssertEqual(status["state"] as? String, "JOB_STATE_EXITED", "jobd stopped serving:\n\(jobd.log)")
        XCTAssertTrue(jobd.log.contains("file too large"), "the failed log write was not logged:\n\(jobd.log)")
        XCTAssertNotEqual(stream.status, 0, "the stream ended as if the output were complete")
        XCTAssertLessThan(stream.stdout.count, 3_000_000)
        XCTAssertTrue(stream.stderrText.contains("file too large"), stream.stderrText)
        XCTAssertTrue(stream.stderrText.contains("was not stored"), stream.stderrText)

        // Below the size of a metadata file, Start's own write(2) meets the limit too.
        let tiny = try Command.run("/usr/bin/prlimit", ["--pid", "\(jobd.process.pid)", "--fsize=16:unlimited"])
        XCTAssertEqual(tiny.status, 0, tiny.stderrText)
        let start = try jobctl(["start", "--", "true"], on: jobd, as: writer)
        XCTAssertNotEqual(start.status, 0, start.stdoutText)
        XCTAssertTrue(start.stderrText.contains("file too large"), start.stderrText)
        let list = try jobctl(["list"], on: jobd, as: writer)
        XCTAssertEqual(list.status, 0, "jobd stopped serving after a failed metadata write: \(list.stderrText)")
    }

    /// Running out of file descriptors is jobd's problem, not the command's: it must not read as "cannot
    /// execute" with FAILED_PRECONDITION, and Start must work again once descriptors are free.
    func testOpenFileLimitIsResourceExhausted() throws {
        let jobd = try startJobd()
        let open = try FileManager.default.contentsOfDirectory(atPath: "/proc/\(jobd.process.pid)/fd").count
        // Room for the connection and a few jobs (two pipes, a pidfd, a log and /dev/null each), not for ten.
        let limit = try Command.run("/usr/bin/prlimit", ["--pid", "\(jobd.process.pid)", "--nofile=\(open + 16)"])
        XCTAssertEqual(limit.status, 0, limit.stderrText)

        var rejected: [CommandResult] = []
        for _ in 0..<10 {
            let result = try jobctl(["start", "--", "sleep", "2"], on: jobd, as: writer)
            if result.status != 0 { rejected.append(result) }
        }

        let first = try XCTUnwrap(rejected.first, "ten jobs started within \(open + 16) descriptors")
        XCTAssertTrue(first.stderrText.contains("RESOURCE_EXHAUSTED"), first.stderrText)
        XCTAssertTrue(first.stderrText.contains("open file limit"), first.stderrText)
        XCTAssertFalse(first.stderrText.contains("cannot execute \"sleep\""), first.stderrText)
        Thread.sleep(forTimeInterval: 3)
        let again = try jobctl(["start", "--", "true"], on: jobd, as: writer)
        XCTAssertEqual(again.status, 0, "Start failed after the jobs ended: \(again.stderrText)")
    }

    /// accept(2) failing with EMFILE repeats on every loop turn while connections wait in the backlog.
    func testAcceptFailuresAreLoggedOncePerSecond() throws {
        let jobd = try startJobd()
        let open = try FileManager.default.contentsOfDirectory(atPath: "/proc/\(jobd.process.pid)/fd").count
        let limit = try Command.run("/usr/bin/prlimit", ["--pid", "\(jobd.process.pid)", "--nofile=\(open)"])
        XCTAssertEqual(limit.status, 0, limit.stderrText)

        var sockets: [Int32] = []
        defer { sockets.forEach { close($0) } }
        let parts = jobd.address.split(separator: ":")
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(parts[1])!).bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        for _ in 0..<4 {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            let connected = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
            XCTAssertEqual(connected, 0, "connect to \(jobd.address) failed")
            sockets.append(fd)
        }
        Thread.sleep(forTimeInterval: 2.5)

        let lines = jobd.log.split(separator: "\n").filter { $0.contains("too many open files") }
        XCTAssertGreaterThan(lines.count, 0, "no accept failure was logged:\n\(jobd.log.suffix(2000))")
        XCTAssertLessThanOrEqual(lines.count, 4, "accept failures flooded the log: \(lines.count) lines")
        XCTAssertTrue(lines.dropFirst().allSatisfy { $0.contains("suppressed=") }, "\(lines.prefix(3))")
    }

    /// On cgroup v1 jobd's subtree holds only job cgroups, so it can be removed while jobd runs.
    func testRemovedCgroupSubtreeNamesTheFix() throws {
        let jobd = try startJobd()
        XCTAssertEqual(try jobctl(["run", "--", "true"], on: jobd, as: writer).status, 0)
        CgroupCleanup.removeSubtree(named: cgroupSubtree)
        let remaining = CgroupCleanup.ownCgroupDirectories().filter { access($0 + "/" + cgroupSubtree, F_OK) == 0 }
        guard remaining.isEmpty else {
            // cgroup v2: jobd lives in a leaf of its subtree, so the subtree cannot be removed.
            throw XCTSkip("the subtree is still in use at \(remaining), as on cgroup v2")
        }

        let start = try jobctl(["start", "--", "true"], on: jobd, as: writer)

        XCTAssertEqual(start.status, 65, start.stderrText)
        XCTAssertTrue(start.stderrText.contains("restart jobd"), start.stderrText)
        XCTAssertFalse(start.stderrText.contains("runs as root"), start.stderrText)
    }
}
