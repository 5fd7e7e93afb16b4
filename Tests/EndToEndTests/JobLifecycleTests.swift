import Foundation
import XCTest

/// Start, query, stream and stop through the real jobctl and jobd binaries.
final class JobLifecycleTests: EndToEndTestCase {
    func testDesignExampleStartQueryStreamStop() throws {
        let jobd = try startJobd()

        // The usage line from the design, verbatim: limits after the command are jobctl's.
        let start = try jobctl(
            [
                "start", "bash", "-c", "while true; do echo hello; sleep 1; done", "--cpu", "50%", "--memory", "256M",
                "--disk-io", "10MB/s",
            ], on: jobd)
        XCTAssertEqual(start.status, 0, start.stderrText)
        let jobID = start.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines)
        XCTAssertFalse(jobID.isEmpty)

        let running = try queryJSON(jobID, on: jobd)
        XCTAssertEqual(running["state"] as? String, "JOB_STATE_RUNNING")
        XCTAssertEqual(running["owner"] as? String, "admin")
        XCTAssertEqual(running["command"] as? [String], ["bash", "-c", "while true; do echo hello; sleep 1; done"])

        let human = try jobctl(["query", jobID], on: jobd)
        XCTAssertEqual(human.status, 0, human.stderrText)
        XCTAssertTrue(human.stdoutText.contains("running"), human.stdoutText)

        let stream = try spawnJobctl(["stream", jobID], on: jobd, name: "stream")
        try waitForFile(stream.stdout, toContain: "hello\nhello\n")

        let stop = try jobctl(["stop", jobID], on: jobd)
        XCTAssertEqual(stop.status, 0, stop.stderrText)
        XCTAssertTrue(stop.stdoutText.contains("stopped"), stop.stdoutText)

        XCTAssertTrue(stream.process.wait(timeout: .seconds(30)), "jobctl stream did not end after the job was stopped")
        // bash and its sleep die from the SIGTERM that Stop sends, so stream exits with 128 + 15.
        XCTAssertEqual(stream.process.exitCode, 128 + SIGTERM)
        let streamed = try String(contentsOfFile: stream.stdout, encoding: .utf8)
        XCTAssertTrue(streamed.hasPrefix("hello\nhello\n"), streamed)
        XCTAssertEqual(Set(streamed.split(separator: "\n")), ["hello"])

        let stopped = try queryJSON(jobID, on: jobd)
        XCTAssertEqual(stopped["state"] as? String, "JOB_STATE_STOPPED")
        XCTAssertEqual(stopped["signal"] as? Int, Int(SIGTERM))

        let list = try jobctl(["list"], on: jobd)
        XCTAssertEqual(list.status, 0, list.stderrText)
        XCTAssertTrue(list.stdoutText.contains(jobID), list.stdoutText)
    }

    func testLimitsReachTheJobCgroup() throws {
        let jobd = try startJobd()
        // Prints the job's own memory limit and CPU quota from its cgroup, for v1 and v2 alike.
        let script = """
            v1=$(sed -n 's/^[0-9]*:memory://p' /proc/self/cgroup)
            if [ -n "$v1" ]; then
              cat /sys/fs/cgroup/memory$v1/memory.limit_in_bytes
              cpu=$(sed -n 's/^[0-9]*:cpu,cpuacct://p; s/^[0-9]*:cpu://p' /proc/self/cgroup | head -n 1)
              dir=$(ls -d /sys/fs/cgroup/cpu,cpuacct$cpu /sys/fs/cgroup/cpu$cpu 2>/dev/null | head -n 1)
              echo "$(cat $dir/cpu.cfs_quota_us) $(cat $dir/cpu.cfs_period_us)"
            else
              v2=$(sed -n 's/^0:://p' /proc/self/cgroup)
              cat /sys/fs/cgroup$v2/memory.max
              cat /sys/fs/cgroup$v2/cpu.max
            fi
            """
        let result = try jobctl(["run", "--cpu", "50%", "--memory", "256M", "--", "sh", "-c", script], on: jobd)
        XCTAssertEqual(result.status, 0, result.stderrText)

        let lines = result.stdoutText.split(separator: "\n").map(String.init)
        XCTAssertEqual(lines.first, "268435456", "memory limit of 256M is not 256 MiB: \(result.stdoutText)")
        let cpu = lines.count > 1 ? lines[1].split(separator: " ").compactMap { Int($0) } : []
        XCTAssertEqual(cpu.count, 2, "no CPU quota and period: \(result.stdoutText)")
        if cpu.count == 2 {
            XCTAssertEqual(cpu[0] * 2, cpu[1], "50% CPU is not half the period: \(result.stdoutText)")
        }
    }

    func testSeparatorAfterCommandReachesJob() throws {
        let jobd = try startJobd()

        let result = try jobctl(["run", "printf", "%s|", "a", "--", "b", "--memory", "1G"], on: jobd)

        XCTAssertEqual(result.status, 0, result.stderrText)
        XCTAssertEqual(result.stdoutText, "a|--|b|--memory|1G|", "a -- after the command must reach the job with what follows it")
    }

    func testListQuotesControlCharacters() throws {
        let jobd = try startJobd()
        XCTAssertEqual(try jobctl(["run", "true", "line1\nline2", "\u{1B}[31mred"], on: jobd).status, 0)

        let list = try jobctl(["list"], on: jobd)

        XCTAssertEqual(list.status, 0, list.stderrText)
        let lines = list.stdoutText.split(separator: "\n")
        XCTAssertEqual(lines.count, 2, "a newline in a command must not split its row: \(list.stdoutText)")
        XCTAssertFalse(list.stdoutText.contains("\u{1B}"), "an escape sequence reached the terminal")
        XCTAssertTrue(list.stdoutText.contains("$'line1\\nline2' $'\\x1B[31mred'"), list.stdoutText)
    }

    func testRunExitsWithJobExitCode() throws {
        let jobd = try startJobd()
        let result = try jobctl(["run", "sh", "-c", "exit 7"], on: jobd)
        XCTAssertEqual(result.status, 7, result.stderrText)
    }

    func testWorkdirSetsJobDirectory() throws {
        let jobd = try startJobd()
        let result = try jobctl(["run", "pwd", "--workdir", scratch], on: jobd)
        XCTAssertEqual(result.status, 0, result.stderrText)
        XCTAssertEqual(result.stdoutText, scratch + "\n")
    }

    func testRunExitsWith128PlusSignal() throws {
        let jobd = try startJobd()
        let result = try jobctl(["run", "sh", "-c", "kill -KILL $$"], on: jobd)
        XCTAssertEqual(result.status, 128 + SIGKILL, result.stderrText)
    }

    func testStreamReproducesBinaryOutputExactly() throws {
        let jobd = try startJobd()

        // A megabyte of random bytes plus every byte value, on stdout; a different file on stderr.
        var stdoutBytes = try RandomBytes.make(count: 1_000_000)
        stdoutBytes += (0...255).map { UInt8($0) }
        let stderrBytes = try RandomBytes.make(count: 70_000)
        let stdoutFile = scratch + "/binary.out"
        let stderrFile = scratch + "/binary.err"
        try Data(stdoutBytes).write(to: URL(fileURLWithPath: stdoutFile))
        try Data(stderrBytes).write(to: URL(fileURLWithPath: stderrFile))

        let jobID = try startJob(["sh", "-c", "cat \(stdoutFile); cat \(stderrFile) >&2"], on: jobd)
        try waitForState("JOB_STATE_EXITED", jobID: jobID, on: jobd)

        let stream = try jobctl(["stream", jobID], on: jobd)
        XCTAssertEqual(stream.status, 0, stream.stderrText)
        XCTAssertEqual(stream.stdout.count, stdoutBytes.count)
        XCTAssertTrue(stream.stdout == stdoutBytes, "stdout bytes differ")
        XCTAssertEqual(stream.stderr.count, stderrBytes.count)
        XCTAssertTrue(stream.stderr == stderrBytes, "stderr bytes differ")

        // Following live output must give the same bytes as reading a finished job.
        let live = try jobctl(["run", "sh", "-c", "cat \(stdoutFile)"], on: jobd)
        XCTAssertEqual(live.status, 0, live.stderrText)
        XCTAssertTrue(live.stdout == stdoutBytes, "live stdout bytes differ")
    }

    func testStartRejectsInvalidLimit() throws {
        let jobd = try startJobd()
        let result = try jobctl(["start", "--memory", "256X", "--", "true"], on: jobd)
        XCTAssertEqual(result.status, 65, result.stderrText)
        XCTAssertTrue(result.stderrText.contains("256X"), result.stderrText)
    }

    func testStartRejectsMissingProgram() throws {
        let jobd = try startJobd()
        let result = try jobctl(["start", "/no/such/program"], on: jobd)
        XCTAssertEqual(result.status, 65, result.stderrText)
        XCTAssertTrue(result.stderrText.contains("/no/such/program"), result.stderrText)
    }

    func testUnknownJobIsNotFound() throws {
        let jobd = try startJobd()
        for command in ["query", "stream", "stop"] {
            let result = try jobctl([command, "no-such-job"], on: jobd)
            XCTAssertEqual(result.status, 66, "\(command): \(result.stderrText)")
            XCTAssertTrue(result.stderrText.contains("not found"), "\(command): \(result.stderrText)")
        }
    }

    func testConnectionRefusedIsReported() throws {
        let port = try Self.unusedPort()
        let result = try Command.run(
            Binaries.jobctl,
            [
                "--server", "127.0.0.1:\(port)", "--tls-ca", pki.caFile, "--tls-cert", admin.certificate,
                "--tls-key", admin.key, "list",
            ])
        XCTAssertEqual(result.status, 69, result.stderrText)
        XCTAssertTrue(result.stderrText.contains("is jobd running"), result.stderrText)
    }

    func testEnvironmentVariablesConfigureJobctl() throws {
        let jobd = try startJobd()
        let environment = Binaries.childEnvironment([
            "JOBCTL_SERVER": jobd.address, "JOBCTL_TLS_CA": pki.caFile, "JOBCTL_TLS_CERT": admin.certificate,
            "JOBCTL_TLS_KEY": admin.key,
        ])
        let result = try Command.run(Binaries.jobctl, ["list", "--json"], environment: environment)
        XCTAssertEqual(result.status, 0, result.stderrText)
        let jobs = try JSONSerialization.jsonObject(with: Data(result.stdout)) as? [Any]
        XCTAssertEqual(jobs?.count, 0, result.stdoutText)
    }

    func testConfigFileSetsJobdFlags() throws {
        let config = scratch + "/jobd.conf"
        let text = """
            # every setting from the file, none from flags
            listen = 127.0.0.1:0
            state-dir = \(scratch)/config-state
            tls-ca = \(pki.caFile)
            tls-cert = \(pki.serverCertificate)
            tls-key = \(pki.serverKey)
            cgroup-root = \(cgroupSubtree)
            stop-grace = 1s
            log-level = debug
            """
        try text.write(toFile: config, atomically: true, encoding: .utf8)
        let jobd = try startJobd(arguments: ["--config", config])

        let result = try jobctl(["run", "sh", "-c", "echo configured"], on: jobd)
        XCTAssertEqual(result.status, 0, result.stderrText)
        XCTAssertEqual(result.stdoutText, "configured\n")
        XCTAssertTrue(
            FileManager.default.fileExists(atPath: scratch + "/config-state"), "state-dir from the file unused")
        XCTAssertTrue(jobd.log.contains(" debug "), "log-level from the file unused")
    }

    func testDefaultCertificatesComeFromHome() throws {
        let jobd = try startJobd()
        let home = scratch + "/home"
        try FileManager.default.createDirectory(atPath: home + "/.jobworker", withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(
            atPath: home + "/.jobworker/certs", withDestinationPath: pki.directory)

        let environment = Binaries.childEnvironment(["HOME": home, "JOBCTL_SERVER": jobd.address])
        let result = try Command.run(Binaries.jobctl, ["start", "true"], environment: environment)
        XCTAssertEqual(result.status, 0, result.stderrText)
        let jobID = result.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines)
        XCTAssertEqual(try queryJSON(jobID, on: jobd)["owner"] as? String, "admin")
    }

    /// Polls `path` until it contains `text`.
    func waitForFile(_ path: String, toContain text: String, timeout: Int32 = 15_000) throws {
        let deadline = MonotonicDeadline(milliseconds: timeout)
        while !deadline.hasPassed {
            if let content = try? String(contentsOfFile: path, encoding: .utf8), content.contains(text) {
                return
            }
            usleep(50_000)
        }
        XCTFail("\(path) did not contain \(text.debugDescription) within \(timeout) ms")
    }

    /// Returns a port that nothing listens on: bound by the kernel, then released.
    static func unusedPort() throws -> UInt16 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
                bind(fd, pointer, length) == 0 && getsockname(fd, pointer, &length) == 0
            }
        }
        guard bound else {
            throw SubprocessError(message: "cannot bind 127.0.0.1:0: \(String(cString: strerror(errno)))")
        }
        return UInt16(bigEndian: address.sin_port)
    }
}
