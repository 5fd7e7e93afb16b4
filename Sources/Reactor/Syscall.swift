import CSystem
import Glibc

/// The one errno policy for every system call of the project: EINTR is retried, EAGAIN is
/// a value for non-blocking calls, and any other failure is thrown as a `SystemError` that
/// names the call and the fd or path.
///
/// EBADF and EFAULT are bugs in the caller (a closed fd or a bad pointer), so they stop the
/// process in debug builds instead of surfacing as ordinary errors.
public enum Syscall {
    /// Runs `body` until it does not fail with EINTR and returns its result.
    /// Throws `SystemError` when `body` returns -1 with any other errno.
    public static func call<T: FixedWidthInteger>(
        _ name: String, _ subject: @autoclosure () -> String? = nil, _ body: () -> T
    ) throws(SystemError) -> T {
        while true {
            let result = body()
            if result != -1 { return result }
            let code = Glibc.errno
            if code == EINTR { continue }
            try fail(code, name, subject())
        }
    }

    /// Runs `body` like `call`, but returns nil when it fails with EAGAIN or EWOULDBLOCK,
    /// which a non-blocking fd reports when it has nothing to read or no room to write.
    public static func callNonBlocking<T: FixedWidthInteger>(
        _ name: String, _ subject: @autoclosure () -> String? = nil, _ body: () -> T
    ) throws(SystemError) -> T? {
        while true {
            let result = body()
            if result != -1 { return result }
            let code = Glibc.errno
            if code == EINTR { continue }
            if code == EAGAIN || code == EWOULDBLOCK { return nil }
            try fail(code, name, subject())
        }
    }

    static func fail(_ code: Int32, _ name: String, _ subject: String?) throws(SystemError) -> Never {
        assert(code != EBADF, "\(name)(\(subject ?? "")) failed with EBADF: the caller passed a closed fd")
        assert(code != EFAULT, "\(name)(\(subject ?? "")) failed with EFAULT: the caller passed a bad pointer")
        throw SystemError(errno: code, call: name, subject: subject)
    }

    /// Closes `fd`, ignoring EINTR: on Linux the fd is released even when close is interrupted,
    /// so retrying could close an fd that another owner has just received (close(2), NOTES).
    public static func close(_ fd: Int32) {
        _ = Glibc.close(fd)
    }

    /// Creates a pipe with both ends close-on-exec and, when `nonBlocking`, O_NONBLOCK (pipe2(2)).
    /// Returns (read end, write end); the caller owns and closes both.
    public static func pipe(nonBlocking: Bool = true) throws(SystemError) -> (read: Int32, write: Int32) {
        var fds: [Int32] = [-1, -1]
        let flags = O_CLOEXEC | (nonBlocking ? O_NONBLOCK : 0)
        _ = try call("pipe2") { cs_pipe2(&fds, flags) }
        return (fds[0], fds[1])
    }

    /// Sets or clears O_NONBLOCK on `fd` (fcntl(2) F_SETFL).
    public static func setNonBlocking(_ fd: Int32, _ enabled: Bool = true) throws(SystemError) {
        let flags = try call("fcntl", "fd \(fd)") { fcntl(fd, F_GETFL) }
        let updated = enabled ? flags | O_NONBLOCK : flags & ~O_NONBLOCK
        _ = try call("fcntl", "fd \(fd)") { fcntl(fd, F_SETFL, updated) }
    }
}
