import Foundation
import Glibc
import XCTest

/// A /bin/sh child started with fork(2) and execve(2) and reaped with waitpid(2) by this object only,
/// so its exit status never depends on a SIGCHLD handler elsewhere in the test process.
final class ShellProcess {
    let pid: pid_t
    private var outputFD: Int32 = -1
    private(set) var waitStatus: Int32?

    /// Starts `/bin/sh -c script`; with `captureOutput` its stdout goes to a pipe read by ``readOutput()``.
    ///
    /// NOTE: uses fork(2) and execve(2) because posix_spawn(3) is hidden from this target: the
    /// CSystem include directory has its own spawn.h, which shadows the C library's.
    init(script: String, captureOutput: Bool = false) throws {
        var pipeFDs: [Int32] = [-1, -1]
        if captureOutput {
            guard pipe(&pipeFDs) == 0 else {
                throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO)
            }
        }

        // Everything the child touches is prepared before fork, so between fork and execve it
        // calls only the async-signal-safe dup2, close, execve and _exit.
        let arguments = ["/bin/sh", "-c", script]
        let argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        defer {
            for pointer in argv {
                free(pointer)
            }
        }
        let child = argv.withUnsafeBufferPointer { argvPointer -> pid_t in
            let child = fork()
            if child == 0 {
                if captureOutput {
                    dup2(pipeFDs[1], 1)
                    close(pipeFDs[0])
                    close(pipeFDs[1])
                }
                execve("/bin/sh", argvPointer.baseAddress!, environ)
                _exit(127)
            }
            return child
        }
        if captureOutput {
            close(pipeFDs[1])
            outputFD = pipeFDs[0]
        }
        guard child > 0 else {
            throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO)
        }
        pid = child
    }

    deinit {
        if outputFD >= 0 {
            close(outputFD)
        }
    }

    /// Reads stdout until every writer closed it.
    func readOutput() -> String {
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = read(outputFD, &buffer, buffer.count)
            if count > 0 {
                bytes.append(contentsOf: buffer[0..<count])
            } else if count == 0 || errno != EINTR {
                break
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Polls waitpid(2) until the child exits; false on timeout.
    func wait(timeout: Duration) -> Bool {
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        while waitStatus == nil {
            var status: Int32 = 0
            let result = waitpid(pid, &status, WNOHANG)
            if result == pid {
                waitStatus = status
                break
            }
            if result == -1 && errno != EINTR {
                return false
            }
            if clock.now >= deadline {
                return false
            }
            usleep(5_000)
        }
        return true
    }

    /// The exit code when the child exited normally (WIFEXITED).
    var exitCode: Int32? {
        guard let status = waitStatus, status & 0x7f == 0 else {
            return nil
        }
        return (status >> 8) & 0xff
    }

    /// The signal that killed the child (WIFSIGNALED).
    var terminatingSignal: Int32? {
        guard let status = waitStatus, status & 0x7f != 0, status & 0x7f != 0x7f else {
            return nil
        }
        return status & 0x7f
    }
}
