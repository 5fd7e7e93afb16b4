import CSystem
import Glibc

/// Failure to start a job's process: the step that failed between clone and execve, its
/// errno, and the path or name involved. Reported when `JobManager.start` cannot run the
/// command; no process, cgroup or job remains.
public struct SpawnError: Error, CustomStringConvertible, Equatable {
    /// Step of the spawn that failed.
    public enum Step: Equatable, Sendable {
        case clone
        case joinCgroup
        case setsid
        case resetSignals
        case redirect
        case closeDescriptors
        case changeDirectory
        case execute
        case prepare
    }

    public let step: Step
    /// errno of the failed call, e.g. ENOENT.
    public let errno: Int32
    /// Command as given in the job spec.
    public let command: String
    /// Path that failed: the executable tried last, or the working directory.
    public let path: String?
    /// Search path used when the command contained no slash.
    public let searchPath: String?

    public init(step: Step, errno: Int32, command: String, path: String? = nil, searchPath: String? = nil) {
        self.step = step
        self.errno = errno
        self.command = command
        self.path = path
        self.searchPath = searchPath
    }

    public var description: String {
        let reason = Self.describe(errno: errno)
        switch step {
        case .execute:
            if let searchPath {
                return "cannot execute \"\(command)\": \(reason) in PATH \"\(searchPath)\""
            }
            return "cannot execute \"\(path ?? command)\": \(reason)"
        case .changeDirectory:
            return "cannot execute \"\(command)\": working directory \"\(path ?? "")\": \(reason)"
        case .joinCgroup:
            return "cannot execute \"\(command)\": joining the job's cgroup failed: \(reason)"
        case .clone:
            return "cannot execute \"\(command)\": clone3 failed: \(reason)"
        case .setsid:
            return "cannot execute \"\(command)\": setsid failed: \(reason)"
        case .resetSignals:
            return "cannot execute \"\(command)\": resetting signals failed: \(reason)"
        case .redirect:
            return "cannot execute \"\(command)\": redirecting stdin, stdout and stderr failed: \(reason)"
        case .closeDescriptors:
            return "cannot execute \"\(command)\": close_range failed: \(reason)"
        case .prepare:
            return "cannot execute \"\(command)\": \(reason)"
        }
    }

    /// Returns strerror's text with a lowercase first letter, as messages here read.
    static func describe(errno code: Int32) -> String {
        let text = String(cString: strerror(code))
        guard let first = text.first else { return "errno \(code)" }
        return first.lowercased() + text.dropFirst()
    }

    init(stage: Int32, errno: Int32, command: String, path: String?, searchPath: String?) {
        let step: Step
        switch stage {
        case Int32(CS_SPAWN_STAGE_CLONE.rawValue): step = .clone
        case Int32(CS_SPAWN_STAGE_JOIN_CGROUP.rawValue): step = .joinCgroup
        case Int32(CS_SPAWN_STAGE_SETSID.rawValue): step = .setsid
        case Int32(CS_SPAWN_STAGE_SIGNALS.rawValue): step = .resetSignals
        case Int32(CS_SPAWN_STAGE_REDIRECT.rawValue): step = .redirect
        case Int32(CS_SPAWN_STAGE_CLOSE_FDS.rawValue): step = .closeDescriptors
        case Int32(CS_SPAWN_STAGE_CHDIR.rawValue): step = .changeDirectory
        case Int32(CS_SPAWN_STAGE_EXEC.rawValue): step = .execute
        default: step = .prepare
        }
        self.init(step: step, errno: errno, command: command, path: path, searchPath: searchPath)
    }
}
