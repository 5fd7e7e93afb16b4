import Cgroups
import JobAPI
import Jobs

/// Converts the Jobs library's job status into the jobworker.v1 wire message.
enum WireStatus {
    static func message(_ status: JobStatus) -> Jobworker_V1_JobStatus {
        var message = Jobworker_V1_JobStatus()
        message.jobID = status.id
        switch status.state {
        case .running: message.state = .running
        case .exited: message.state = .exited
        case .stopped: message.state = .stopped
        }
        message.exitCode = status.exitCode ?? 0
        message.signal = status.signal ?? 0
        message.oomKilled = status.oomKilled
        message.owner = status.owner
        message.command = status.command
        message.args = status.arguments
        message.startedAt = Int64(clamping: status.startedAtNanoseconds)
        message.endedAt = Int64(clamping: status.endedAtNanoseconds ?? 0)
        if let usage = status.usage {
            message.usage = Jobworker_V1_ResourceUsage(
                cpuTimeNanoseconds: usage.cpuNanoseconds, memoryPeakBytes: usage.memoryPeakBytes,
                ioReadBytes: usage.ioReadBytes, ioWriteBytes: usage.ioWriteBytes, oomKillCount: usage.oomKills)
        }
        message.exitReason = exitReason(status)
        return message
    }

    /// Returns a sentence on how the job ended, empty while it runs.
    static func exitReason(_ status: JobStatus) -> String {
        let cause: String
        if let signal = status.signal, signal != 0 {
            cause = "killed by signal \(signal)"
        } else if let code = status.exitCode {
            cause = "exited with code \(code)"
        } else {
            cause = ""
        }
        switch status.state {
        case .running:
            return ""
        case .exited:
            return status.oomKilled ? cause + " after the OOM killer ran" : cause
        case .stopped:
            return cause.isEmpty ? "stopped" : "stopped, " + cause
        }
    }
}
