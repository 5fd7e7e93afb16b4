import Foundation
import XCTest

/// jobd under signals: SIGKILL and a restart on the same state directory and cgroup subtree, SIGTERM, SIGHUP.
final class RestartTests: EndToEndTestCase {
    func testRecoveryAfterSIGKILL() throws {
        let state = scratch + "/state"
        let first = try startJobd(stateDirectory: state)

        // A finished job with binary output, and a running one that reports its pid.
        var expected = (0...255).map { UInt8($0) }
        expected += try RandomBytes.make(count: 200_000)
        let payload = scratch + "/payload"
        try Data(expected).write(to: URL(fileURLWithPath: payload))
        let finishedID = try startJob(["cat", payload], on: first)
        try waitForState("JOB_STATE_EXITED", jobID: finishedID, on: first)

        let runningID = try startJob(["sh", "-c", "echo $$; exec sleep 1000"], on: first)
        let pid = try waitForPid(jobID: runningID, on: first)
        let startTime = try XCTUnwrap(Self.processStartTime(pid), "job process \(pid) is not running")

        first.kill()
        XCTAssertEqual(first.process.terminationSignal, SIGKILL)
        // jobd is gone but its job lives on in its cgroup until the next jobd recovers it.
        XCTAssertEqual(Self.processStartTime(pid), startTime, "the job died with jobd")

        let second = try startJobd(stateDirectory: state)

        let stopped = try queryJSON(runningID, on: second)
        XCTAssertEqual(stopped["state"] as? String, "JOB_STATE_STOPPED")
        let deadline = MonotonicDeadline(milliseconds: 10_000)
        while Self.processStartTime(pid) == startTime && !deadline.hasPassed {
            usleep(50_000)
        }
        XCTAssertNotEqual(Self.processStartTime(pid), startTime, "the job's process survived the restart")

        let finished = try queryJSON(finishedID, on: second)
        XCTAssertEqual(finished["state"] as? String, "JOB_STATE_EXITED")
        XCTAssertEqual(finished["exitCode"] as? Int, 0)

        let stream = try jobctl(["stream", finishedID], on: second)
        XCTAssertEqual(stream.status, 0, stream.stderrText)
        XCTAssertEqual(stream.stdout.count, expected.count)
        XCTAssertTrue(stream.stdout == expected, "output after restart differs")

        let runningOutput = try jobctl(["stream", runningID], on: second)
        XCTAssertEqual(runningOutput.stdoutText, "\(pid)\n")
    }

    func testSIGTERMStopsJobsAndExitsZero() throws {
        let jobd = try startJobd()
        let jobID = try startJob(["sleep", "1000"], on: jobd)
        XCTAssertEqual(try queryJSON(jobID, on: jobd)["state"] as? String, "JOB_STATE_RUNNING")

        XCTAssertTrue(jobd.stop(), "jobd did not exit 0 after SIGTERM:\n\(jobd.log)")
        XCTAssertTrue(jobd.log.contains("shutting down"), jobd.log)

        let again = try startJobd()
        XCTAssertEqual(try queryJSON(jobID, on: again)["state"] as? String, "JOB_STATE_STOPPED")
    }

    func testSIGHUPReloadsCertificates() throws {
        let jobd = try startJobd()
        XCTAssertEqual(try jobctl(["list"], on: jobd).status, 0)

        // A second PKI replaces the files jobd was started with.
        let replacement = try TestPKI(directory: scratch + "/certs2")
        for name in ["ca.pem", "server.pem", "server-key.pem"] {
            let target = pki.directory + "/" + name
            try FileManager.default.removeItem(atPath: target)
            try FileManager.default.copyItem(atPath: replacement.directory + "/" + name, toPath: target)
        }
        jobd.process.signal(SIGHUP)
        let deadline = MonotonicDeadline(milliseconds: 10_000)
        while !jobd.log.contains("certificates reloaded") && !deadline.hasPassed {
            usleep(50_000)
        }
        XCTAssertTrue(jobd.log.contains("certificates reloaded"), jobd.log)

        let old = try jobctl(["list"], on: jobd, as: admin)
        XCTAssertEqual(old.status, 78, "a certificate of the replaced CA still works: \(old.stderrText)")
        let new = try jobctl(["list"], on: jobd, as: replacement.identity("admin"))
        XCTAssertEqual(new.status, 0, new.stderrText)
    }

    /// Reads the pid the job printed as its first line.
    func waitForPid(jobID: String, on jobd: Jobd) throws -> Int32 {
        let deadline = MonotonicDeadline(milliseconds: 15_000)
        while !deadline.hasPassed {
            let stream = try spawnJobctl(["stream", jobID], on: jobd, name: "pid-stream")
            usleep(300_000)
            stream.process.signal(SIGKILL)
            stream.process.wait(timeout: .seconds(10))
            let text = (try? String(contentsOfFile: stream.stdout, encoding: .utf8)) ?? ""
            if let line = text.split(separator: "\n").first, let pid = Int32(line) {
                return pid
            }
        }
        throw SubprocessError(message: "job \(jobID) printed no pid")
    }

    /// Returns field 22 of /proc/PID/stat (start time in clock ticks), or nil when no such process runs.
    /// Together with the pid it distinguishes the process from a later one that reuses the pid.
    static func processStartTime(_ pid: Int32) -> UInt64? {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = stat.lastIndex(of: ")")
        else {
            return nil
        }
        // Fields after the command name (which may hold spaces) start with field 3, the state.
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count > 19, fields[0] != "Z" else {
            return nil
        }
        return UInt64(fields[19])
    }
}
