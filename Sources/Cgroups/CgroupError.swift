import Glibc

/// A cgroup operation that failed: the file or directory, the value written if any, and errno
/// or a reason when the kernel accepted the call but the result is wrong (a read-back mismatch,
/// a missing controller).
public struct CgroupError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The step that failed: "write", "read", "mkdir", "rmdir", "open", "enable controllers", ...
    public let operation: String
    /// Absolute path of the cgroup file or directory involved.
    public let file: String
    /// The exact string written, for writes.
    public let value: String?
    /// errno of the failed call; nil when no call failed.
    public let errno: Int32?
    /// The reason for the failure when no errno explains it, or the fix to apply.
    public let detail: String?

    /// The operation of the error that reports a jobs subtree locked by another process.
    public static let lockOperation = "lock"

    /// Returns true when another process, usually another jobd, holds the jobs subtree.
    public var isSubtreeInUse: Bool { operation == Self.lockOperation && errno == nil }

    public init(operation: String, file: String, value: String? = nil, errno: Int32? = nil, detail: String? = nil) {
        self.operation = operation
        self.file = file
        self.value = value
        self.errno = errno
        self.detail = detail
    }

    public var description: String {
        var text = operation
        if let value {
            text += " \"\(value)\" to"
        }
        text += " \(file) failed"
        if let errno {
            text += ": \(String(cString: strerror(errno))) (errno \(errno))"
        }
        if let detail {
            text += ": \(detail)"
        }
        return text
    }
}
