/// A limit string that failed validation, rejected before any cgroup file is written.
///
/// The description names the field, quotes the value and states the expected form, e.g.
/// `invalid memory limit "256X": expected bytes with an optional K, M, G or T suffix, e.g. 256M`.
public struct LimitError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The limit's name as users see it: "CPU limit", "memory limit", "disk I/O limit", "max_pids".
    public let field: String
    /// The rejected input, exactly as given.
    public let value: String
    /// The problem with the value and the accepted form.
    public let reason: String

    public init(field: String, value: String, reason: String) {
        self.field = field
        self.value = value
        self.reason = reason
    }

    public var description: String {
        "invalid \(field) \"\(value)\": \(reason)"
    }
}
