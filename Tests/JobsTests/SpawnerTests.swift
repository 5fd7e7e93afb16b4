import CSystem
import Glibc
import Reactor
import XCTest

@testable import Jobs

final class SpawnerTests: XCTestCase {
    func testSpawnRunsCommandWithRedirectedOutput() throws {
        let (stdout, status) = try runToCompletion("/bin/sh", ["-c", "echo out; echo err >&2; exit 3"])
        XCTAssertEqual(stdout, "out\n")
        XCTAssertEqual(status, 3)
    }

    func testSpawnSearchesPath() throws {
        let (stdout, status) = try runToCompletion(
            "printf", ["%s", "found"], environment: ["PATH=/nonexistent:/usr/bin:/bin"])
        XCTAssertEqual(stdout, "found")
        XCTAssertEqual(status, 0)
    }

    func testSpawnGivesChildCleanState() throws {
        // Ignored SIGINT in the parent must be SIG_DFL in the child, the mask empty, fds
        // above 2 closed, stdin /dev/null, and the child leads its own session.
        signal(SIGINT, SIG_IGN)
        defer { signal(SIGINT, SIG_DFL) }
        let leaked = open("/dev/null", O_RDONLY)  // without O_CLOEXEC on purpose
        defer { close(leaked) }
        let script = """
            grep -E '^(SigIgn|SigBlk):' /proc/self/status | tr -s '\\t ' ' '
            ls /proc/self/fd | sort -n | tr '\\n' ' '; echo
            readlink /proc/self/fd/0
            [ "$(cut -d' ' -f6 /proc/$$/stat)" = "$$" ] && echo session-leader
            """
        let (stdout, status) = try runToCompletion("/bin/sh", ["-c", script])
        XCTAssertEqual(status, 0)
        let lines = stdout.split(separator: "\n").map(String.init)
        XCTAssertTrue(lines.contains("SigIgn: 0000000000000000"), stdout)
        XCTAssertTrue(lines.contains("SigBlk: 0000000000000000"), stdout)
        // ls itself has one more fd open (its directory) while listing.
        XCTAssertTrue(lines.contains("0 1 2 3 "), stdout)
        XCTAssertTrue(lines.contains("/dev/null"), stdout)
        XCTAssertTrue(lines.contains("session-leader"), stdout)
    }

    func testSpawnChangesDirectory() throws {
        let (stdout, _) = try runToCompletion("/bin/pwd", [], workingDirectory: "/usr")
        XCTAssertEqual(stdout, "/usr\n")
    }

    func testSpawnFailures() throws {
        let emptyFile = NSTemporaryDirectory() + "jobs-empty-\(getpid())"
        XCTAssertTrue(
            FileManager.default.createFile(
                atPath: emptyFile, contents: Data(),
                attributes: [.posixPermissions: 0o755]))
        defer { unlink(emptyFile) }

        let cases: [(description: String, command: String, workingDirectory: String?, message: String)] = [
            ("missing path", "/no/such/bin", nil, "cannot execute \"/no/such/bin\": no such file or directory"),
            ("not executable", "/etc/passwd", nil, "cannot execute \"/etc/passwd\": permission denied"),
            ("directory", "/tmp", nil, "cannot execute \"/tmp\": is a directory"),
            ("empty executable", emptyFile, nil, "cannot execute \"\(emptyFile)\": exec format error"),
            (
                "name not in PATH", "no-such-command-jobs", nil,
                "cannot execute \"no-such-command-jobs\": no such file or directory in PATH \"/usr/bin:/bin\""
            ),
            (
                "missing working directory", "/bin/true", "/no/such/dir",
                "cannot execute \"/bin/true\": working directory \"/no/such/dir\": no such file or directory"
            ),
        ]
        let fdsBefore = openFDCount()
        for testCase in cases {
            XCTAssertThrowsError(
                try runToCompletion(
                    testCase.command, [], environment: ["PATH=/usr/bin:/bin"],
                    workingDirectory: testCase.workingDirectory),
                testCase.description
            ) { error in
                XCTAssertEqual("\(error)", testCase.message, testCase.description)
            }
        }
        XCTAssertEqual(openFDCount(), fdsBefore, "a failed spawn leaked an fd")
        XCTAssertEqual(zombieChildren(), [], "a failed spawn left a zombie")
    }

    func testSpawnIntoV2CgroupWithCloneIntoCgroup() throws {
        guard getuid() == 0 else { throw XCTSkip("creating a cgroup needs root") }
        guard let (mount, own) = Self.cgroup2MountAndOwnPath() else {
            throw XCTSkip("no cgroup2 mount on this host, so CLONE_INTO_CGROUP cannot be tried")
        }
        // Below this process's own v2 cgroup, in a subtree named for the product.
        let relative = (own == "/" ? "" : own) + "/jobworker-spawn-tests-\(getpid())"
        let directory = mount + relative
        XCTAssertEqual(mkdir(directory, 0o755), 0, "mkdir \(directory): errno \(errno)")
        defer { rmdir(directory) }
        let directoryFD = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        XCTAssertGreaterThanOrEqual(directoryFD, 0)
        defer { close(directoryFD) }

        let (stdout, status) = try runToCompletion(
            "/bin/sh", ["-c", "grep '^0::' /proc/self/cgroup"], cgroupDirectoryFD: directoryFD)

        XCTAssertEqual(status, 0)
        XCTAssertEqual(stdout, "0::\(relative)\n")
    }

    /// Returns the cgroup2 mount point and this process's path in it, from
    /// /proc/self/mountinfo and /proc/self/cgroup.
    private static func cgroup2MountAndOwnPath() -> (String, String)? {
        guard let mountInfo = try? String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8),
            let cgroups = try? String(contentsOfFile: "/proc/self/cgroup", encoding: .utf8),
            let mountLine = mountInfo.split(separator: "\n").first(where: { $0.contains(" - cgroup2 ") }),
            let ownLine = cgroups.split(separator: "\n").first(where: { $0.hasPrefix("0::") })
        else { return nil }
        let fields = mountLine.split(separator: " ")
        guard fields.count > 4 else { return nil }
        return (String(fields[4]), String(ownLine.dropFirst(3)))
    }

    func testCandidatePaths() {
        XCTAssertEqual(Spawner.candidatePaths(for: "./x", searchPath: "/bin"), ["./x"])
        XCTAssertEqual(Spawner.candidatePaths(for: "ls", searchPath: "/a::/b"), ["/a/ls", "ls", "/b/ls"])
    }

    /// Spawns, reads stdout to EOF and reaps; returns stdout and the exit code.
    private func runToCompletion(
        _ command: String, _ arguments: [String], environment: [String] = ["PATH=/usr/bin:/bin"],
        workingDirectory: String? = nil, cgroupDirectoryFD: Int32 = -1
    ) throws -> (String, Int32) {
        let pipe = try Syscall.pipe(nonBlocking: false)
        let outputPipe = [pipe.read, pipe.write]
        let devNull = open("/dev/null", O_RDWR | O_CLOEXEC)
        defer { close(devNull) }

        let request = SpawnRequest(
            command: command, arguments: arguments, environment: environment, workingDirectory: workingDirectory,
            cgroupDirectoryFD: cgroupDirectoryFD, stdinFD: devNull, stdoutFD: outputPipe[1], stderrFD: devNull)
        let process: SpawnedProcess
        do {
            process = try Spawner.spawn(request)
        } catch {
            close(outputPipe[0])
            close(outputPipe[1])
            throw error
        }
        close(outputPipe[1])

        var output: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = read(outputPipe[0], &buffer, buffer.count)
            if count <= 0 { break }
            output += buffer[0..<count]
        }
        close(outputPipe[0])

        var info = siginfo_t()
        XCTAssertEqual(cs_waitid_pidfd(process.pidfd, &info, WEXITED), 0)
        close(process.pidfd)
        return (String(decoding: output, as: UTF8.self), cs_siginfo_status(&info))
    }
}
