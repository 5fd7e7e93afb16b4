import Cgroups
import Foundation
import GRPCLite
import Glibc
import Jobs
import Reactor

/// Maps every error a JobService method can meet to the gRPC status the client receives; the one place
/// where internal errors become wire codes.
enum StatusMapping {
    /// The maximum status message length sent, in UTF-8 bytes. Messages quote request values, and a 100 KB
    /// grpc-message trailer never reached grpcio or jobctl clients, so the call hung until its deadline.
    static let maxMessageBytes = 1024

    /// Returns `status` with a message of at most about `maxMessageBytes`: the start (which names the value)
    /// and the end (which names the fix) are kept, and the middle is replaced by a count of what was cut.
    static func bounded(_ status: Status) -> Status {
        let message = status.message
        guard message.utf8.count > maxMessageBytes else {
            return status
        }
        let keep = maxMessageBytes / 2 - 40
        let head = String(message.utf8.prefix(keep)) ?? String(message.prefix(keep / 4))
        let tail = String(message.utf8.suffix(keep)) ?? String(message.suffix(keep / 4))
        let elided = message.utf8.count - head.utf8.count - tail.utf8.count
        return Status(status.code, "\(head) ... [\(elided) bytes elided] ... \(tail)")
    }

    static func status(for error: Error) -> Status {
        switch error {
        case let status as Status:
            return status
        case let error as LimitError:
            return Status(.invalidArgument, error.description)
        case let error as ProtobufError:
            return Status(.invalidArgument, "invalid request message: \(error)")
        case let error as SpawnError where isResourceShortage(error.errno) && error.step != .execute:
            return resourceShortage(error.errno, "cannot start \"\(error.command)\"")
        case let error as SpawnError:
            return Status(.failedPrecondition, error.description)
        case let error as JobError:
            return status(for: error)
        case let error as CgroupError where error.operation == "resolve I/O device":
            // Root and writable cgroups would not help: the disk to throttle is unknown.
            return Status(
                .failedPrecondition,
                "cannot set the job's disk I/O limit: \(error): start jobd with --io-device set to the disk to "
                    + "throttle (MAJ:MIN or a /dev path), or start the job without --disk-io")
        case let error as CgroupError where error.operation == "mkdir" && error.errno == ENOENT:
            // jobd creates its subtree once at startup; on v1 nothing stops another process from removing it.
            let subtree = (error.file as NSString).deletingLastPathComponent
            return Status(
                .failedPrecondition,
                "cannot set up the job's cgroup: \(error): the jobs' cgroup subtree \(subtree) was removed "
                    + "outside jobd: restart jobd to create it again")
        case let error as CgroupError:
            return Status(
                .failedPrecondition,
                "cannot set up the job's cgroup: \(error): check that jobd runs as root with cgroups writable")
        case let error as SystemError where isResourceShortage(error.errno):
            return resourceShortage(error.errno, "\(error.call)(\(error.subject ?? "")) failed")
        case let error as SystemError:
            return Status(.internal, error.description)
        default:
            return Status(.internal, "\(error)")
        }
    }

    /// Returns true for errnos that mean jobd itself ran short of fds, processes or memory, not that the
    /// request was wrong. An execve(2) failing with them is still the command's problem.
    private static func isResourceShortage(_ errno: Int32) -> Bool {
        errno == EMFILE || errno == ENFILE || errno == EAGAIN || errno == ENOMEM
    }

    private static func resourceShortage(_ errno: Int32, _ description: String) -> Status {
        let fix =
            errno == EMFILE || errno == ENFILE
            ? "jobd reached its open file limit: retry once jobs have ended, or raise the limit (ulimit -n, "
                + "systemd LimitNOFILE=) and restart jobd"
            : "the host is short of processes or memory: retry later, or stop jobs that are no longer needed"
        let reason = String(cString: strerror(errno)).lowercased()
        return Status(.resourceExhausted, "\(description): \(reason): \(fix)")
    }

    private static func status(for error: JobError) -> Status {
        switch error.kind {
        case .invalidID, .invalidSpec: Status(.invalidArgument, error.message)
        case .duplicateID: Status(.alreadyExists, error.message)
        case .cgroupsUnavailable: Status(.failedPrecondition, error.message)
        case .storage: Status(.internal, error.message)
        case .corruptLog: Status(.dataLoss, error.message)
        }
    }

    /// Returns the status for an unknown job id, and for a job the caller may not see, with the same
    /// message, so a client cannot tell whether another identity's job exists.
    static func jobNotFound(_ jobID: String) -> Status {
        Status(.notFound, "job \"\(jobID)\" not found: run jobctl list to see the jobs this certificate may see")
    }

    /// Returns the status for a job id that no job can have; `error` quotes the id, shortened.
    static func invalidJobID(_ error: Error) -> Status {
        Status(.invalidArgument, "\(error); pass the id that jobctl start printed")
    }

    static func emptyJobID() -> Status {
        Status(.invalidArgument, "empty job id: pass the id that start printed")
    }

    static func emptyCommand() -> Status {
        Status(.invalidArgument, "empty command name: set the name field to the program to run, e.g. \"ls\"")
    }

    static func limitsWithoutCgroups(_ reason: String) -> Status {
        Status(
            .failedPrecondition,
            "resource limits need cgroups, which jobd cannot write here (\(reason)): run jobd as root on a host "
                + "with cgroup v1 or v2 mounted, or start the job without --cpu, --memory, --disk-io and --pids")
    }

    /// Returns the status for a call the RBAC rules reject; `reason` names the role needed.
    static func permissionDenied(_ reason: String) -> Status {
        Status(.permissionDenied, reason)
    }

    static func outputUnreadable(jobID: String, _ error: Error) -> Status {
        Status(.internal, "cannot read the output of job \"\(jobID)\": \(error): check the state directory's disk")
    }

    static func missingAuthorization(_ method: String) -> Status {
        Status(.internal, "no authorization decision for \(method): the RBAC interceptor did not run")
    }

    static let shuttingDown = Status(.unavailable, "jobd is shutting down: retry once it has restarted")
}
