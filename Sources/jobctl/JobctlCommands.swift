import Foundation
import GRPCLite
import JobAPI

/// Runs one parsed command against jobd over an open client; returns the exit status.
struct JobctlCommands {
    let client: GRPCClient

    /// Unary calls other than Stop fail after this long; Stop waits for jobd's grace period, so it has none.
    static let callTimeout: Duration = .seconds(30)

    func start(_ options: StartOptions) throws -> String {
        var request = Jobworker_V1_StartRequest(
            name: options.command, args: options.arguments, workingDirectory: options.workingDirectory ?? "")
        if options.cpu != nil || options.memory != nil || options.diskIO != nil || options.pids != nil {
            request.resources = Jobworker_V1_ResourceConfig(
                cpuQuota: options.cpu ?? "", memoryLimit: options.memory ?? "", diskIO: options.diskIO ?? "",
                maxPids: options.pids ?? 0)
        }
        let bytes = try client.unary(JobService.start, request: request.serializedBytes(), timeout: Self.callTimeout)
        return try Jobworker_V1_StartResponse(serializedBytes: bytes).jobID
    }

    func stop(jobID: String) throws -> JobView {
        let request = Jobworker_V1_StopRequest(jobID: jobID)
        let bytes = try client.unary(JobService.stop, request: request.serializedBytes(), timeout: nil)
        return try Self.view(Jobworker_V1_StopResponse(serializedBytes: bytes).status, jobID: jobID)
    }

    func query(jobID: String) throws -> JobView {
        let request = Jobworker_V1_QueryRequest(jobID: jobID)
        let bytes = try client.unary(JobService.query, request: request.serializedBytes(), timeout: Self.callTimeout)
        return try Self.view(Jobworker_V1_QueryResponse(serializedBytes: bytes).status, jobID: jobID)
    }

    func list() throws -> [JobView] {
        let bytes = try client.unary(
            JobService.list, request: Jobworker_V1_ListRequest().serializedBytes(), timeout: Self.callTimeout)
        return try Jobworker_V1_ListResponse(serializedBytes: bytes).jobs.map { try Self.view($0, jobID: $0.jobID) }
    }

    /// Copies the job's output to stdout and stderr byte for byte until jobd sends the final status;
    /// returns that status.
    func stream(jobID: String) throws -> JobView {
        let request = Jobworker_V1_StreamRequest(jobID: jobID)
        var finalStatus: Jobworker_V1_JobStatus?
        var failure: Error?

        try client.serverStreaming(JobService.stream, request: request.serializedBytes(), timeout: nil) { bytes in
            do {
                let message = try Jobworker_V1_StreamResponse(serializedBytes: bytes)
                if !message.data.isEmpty {
                    try OutputWriter.writeAll(
                        message.data, to: message.stream == .stderr ? STDERR_FILENO : STDOUT_FILENO)
                }
                if let status = message.finalStatus {
                    finalStatus = status
                }
                return true
            } catch {
                failure = error
                return false
            }
        }

        if let failure {
            throw failure
        }
        guard let finalStatus else {
            throw Failure(
                exitCode: .internalError,
                message: "the stream of job \"\(jobID)\" ended without a final status: jobd may have been restarted, "
                    + "run jobctl query \(jobID)")
        }
        return try Self.view(finalStatus, jobID: jobID)
    }

    /// Converts the wire status; a response without one is a jobd bug.
    static func view(_ status: Jobworker_V1_JobStatus?, jobID: String) throws -> JobView {
        guard let status else {
            throw Failure(exitCode: .internalError, message: "jobd sent no status for job \"\(jobID)\"")
        }
        let state: JobView.State
        switch status.state {
        case .running: state = .running
        case .exited: state = .exited
        case .stopped: state = .stopped
        case .unspecified, .unrecognized: state = .unspecified
        }
        return JobView(
            id: status.jobID, state: state, exitCode: status.exitCode, signal: status.signal,
            oomKilled: status.oomKilled, owner: status.owner,
            command: status.command.isEmpty ? [] : [status.command] + status.args,
            startedAt: status.startedAt == 0 ? nil : Double(status.startedAt) / 1e9,
            endedAt: status.endedAt == 0 ? nil : Double(status.endedAt) / 1e9)
    }
}

/// Writes whole buffers to stdout or stderr with write(2), retrying short writes and EINTR.
enum OutputWriter {
    static func writeAll(_ bytes: [UInt8], to fd: Int32) throws {
        try bytes.withUnsafeBytes { buffer in
            var offset = 0
            while offset < buffer.count {
                let written = write(fd, buffer.baseAddress! + offset, buffer.count - offset)
                if written < 0 {
                    if errno == EINTR {
                        continue
                    }
                    let name = fd == STDERR_FILENO ? "stderr" : "stdout"
                    throw Failure(
                        exitCode: .localIO, message: "cannot write to \(name): \(String(cString: strerror(errno)))")
                }
                offset += written
            }
        }
    }

    static func print(_ text: String, to fd: Int32 = STDOUT_FILENO) throws {
        try writeAll(Array((text.hasSuffix("\n") ? text : text + "\n").utf8), to: fd)
    }
}
