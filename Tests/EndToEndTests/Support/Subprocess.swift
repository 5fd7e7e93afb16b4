import CSystem
import Foundation
import Glibc

/// A child process with stdin, stdout and stderr on files, started with Foundation's Process.
///
/// Signals go through a pidfd opened right after the start, while the child cannot have exited and been
/// reaped yet, so a signal can never reach a recycled pid (pidfd_send_signal(2)).
final class Subprocess {
    let executable: String
    private let process: Process
    private let pidfd: Int32
    private var isReaped = false

    var pid: Int32 { process.processIdentifier }

    private init(process: Process, pidfd: Int32, executable: String) {
        self.process = process
        self.pidfd = pidfd
        self.executable = executable
    }

    deinit {
        if !isReaped {
            signal(SIGKILL)
            wait(timeout: .seconds(5))
        }
        close(pidfd)
    }

    /// Starts `executable` with `arguments` and exactly `environment`; stdin reads `stdinPath`
    /// (default /dev/null), stdout and stderr are truncated and written to the given files.
    static func spawn(
        _ executable: String, _ arguments: [String], environment: [String: String],
        stdinPath: String = "/dev/null", stdoutPath: String, stderrPath: String
    ) throws -> Subprocess {
        _ = FileManager.default.createFile(atPath: stdoutPath, contents: nil)
        _ = FileManager.default.createFile(atPath: stderrPath, contents: nil)
        guard let input = FileHandle(forReadingAtPath: stdinPath),
            let output = FileHandle(forWritingAtPath: stdoutPath),
            let errors = FileHandle(forWritingAtPath: stderrPath)
        else {
            throw SubprocessError(message: "cannot open \(stdinPath), \(stdoutPath) or \(stderrPath)")
        }
        defer {
            try? input.close()
            try? output.close()
            try? errors.close()
        }

        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.environment = environment
        process.standardInput = input
        process.standardOutput = output
        process.standardError = errors
        try process.run()

        let pidfd = cs_pidfd_open(process.processIdentifier, 0)
        guard pidfd >= 0 else {
            throw SubprocessError(
                message: "pidfd_open(\(process.processIdentifier)) failed: \(String(cString: strerror(errno)))")
        }
        return Subprocess(process: process, pidfd: pidfd, executable: executable)
    }

    /// Sends `signal` through the pidfd; once the child has exited this does nothing (ESRCH).
    func signal(_ signal: Int32) {
        _ = cs_pidfd_send_signal(pidfd, signal, 0)
    }

    /// Waits up to `timeout` for the child to exit; returns false on timeout.
    @discardableResult
    func wait(timeout: Duration) -> Bool {
        if isReaped {
            return true
        }
        var descriptor = pollfd(fd: pidfd, events: Int16(POLLIN), revents: 0)
        let milliseconds = timeout.components.seconds * 1000 + timeout.components.attoseconds / 1_000_000_000_000_000
        let deadline = MonotonicDeadline(milliseconds: Int32(milliseconds))
        while true {
            let ready = poll(&descriptor, 1, deadline.remainingMilliseconds)
            if ready < 0 && errno == EINTR {
                continue
            }
            guard ready > 0 else {
                return false
            }
            break
        }
        // The pidfd is readable once the child has exited; Foundation reaps it and records the status.
        process.waitUntilExit()
        isReaped = true
        return true
    }

    /// The exit code, or nil when a signal ended the child or it has not exited.
    var exitCode: Int32? {
        guard isReaped, process.terminationReason == .exit else {
            return nil
        }
        return process.terminationStatus
    }

    /// The signal that ended the child, if one did.
    var terminationSignal: Int32? {
        guard isReaped, process.terminationReason == .uncaughtSignal else {
            return nil
        }
        return process.terminationStatus
    }

    /// A description of how the child ended, for failure messages.
    var waitStatusDescription: String {
        if let code = exitCode {
            return "exit code \(code)"
        }
        if let signal = terminationSignal {
            return "signal \(signal)"
        }
        return "still running"
    }
}

struct SubprocessError: Error, CustomStringConvertible {
    let message: String
    var description: String { message }
}

/// A point in CLOCK_MONOTONIC time for poll(2) loops.
struct MonotonicDeadline {
    private let end: UInt64

    init(milliseconds: Int32) {
        end = Self.now() + UInt64(max(milliseconds, 0)) * 1_000_000
    }

    var remainingMilliseconds: Int32 {
        let now = Self.now()
        return now >= end ? 0 : Int32((end - now) / 1_000_000)
    }

    var hasPassed: Bool { Self.now() >= end }

    static func now() -> UInt64 {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return UInt64(time.tv_sec) * 1_000_000_000 + UInt64(time.tv_nsec)
    }
}
