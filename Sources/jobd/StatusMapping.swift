import Cgroups
import GRPCLite
import Jobs
import Reactor

/// Maps every error a JobService method can meet to the gRPC status the client receives; the one place
/// where internal errors become wire codes.
enum StatusMapping {
    static func status(for error: Error) -> Status {
        switch error {
        case let status as Status:
            return status
        case let error as LimitError:
            return Status(.invalidArgument, error.description)
        case let error as ProtobufError:
            return Status(.invalidArgument, "invalid request message: \(error)")
        case let error as SpawnError:
            return Status(.failedPrecondition, error.description)
        case let error as JobError:
            return status(for: error)
        case let error as CgroupError:
            return Status(
                .failedPrecondition,
                "cannot set up the job's cgroup: \(error): check that jobd runs as root with cgroups writable")
        case let error as SystemError:
            return Status(.internal, error.description)
        default:
            return Status(.internal, "\(error)")
        }
    }

    private static func status(for error: JobError) -> Status {
        switch error.kind {
        case .invalidID: Status(.invalidArgument, error.message)
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
