import Glibc

/// An error from a system call: the errno it set, the call's name and the fd or path it acted on.
public struct SystemError: Error, CustomStringConvertible, Equatable {
    /// The errno value, e.g. `ENOENT`.
    public let errno: Int32
    /// The name of the failed call, e.g. `read` or `io_uring write`.
    public let call: String
    /// The fd or path the call acted on, e.g. `fd 7` or `/sys/fs/cgroup/pids/jobworker`.
    public let subject: String?

    public init(errno: Int32, call: String, subject: String? = nil) {
        self.errno = errno
        self.call = call
        self.subject = subject
    }

    /// The errno's text in lowercase, e.g. `no such file or directory`, for messages that quote it.
    public var reason: String {
        guard let text = strerror(errno) else { return "errno \(errno)" }
        return String(cString: text).lowercased()
    }

    public var description: String {
        let target = subject.map { "(\($0))" } ?? ""
        return "\(call)\(target) failed: \(reason) (errno \(errno))"
    }
}
