import GRPCLite
import JobAPI
import Reactor

/// The jobworker.v1 calls the benchmarks make, built on `HTTP2Call` with the `JobAPI`
/// messages. Each reports its outcome once through `completion` on the loop thread.
enum JobCalls {
    /// Starts `command` with `arguments` and the given limits, and completes with the job id.
    static func start(
        on connection: HTTP2Connection, command: String, arguments: [String], cpu: String = "", memory: String = "",
        completion: @escaping (Result<String, LoadError>) -> Void
    ) {
        var request = Jobworker_V1_StartRequest(name: command, args: arguments)
        if !cpu.isEmpty || !memory.isEmpty {
            request.resources = Jobworker_V1_ResourceConfig(cpuQuota: cpu, memoryLimit: memory)
        }
        var jobID: String?
        let call = HTTP2Call(path: JobService.start, body: HTTP2Call.frame(request.serializedBytes()), isGRPC: true)
        call.onMessage = { message, _ in
            jobID = try? Jobworker_V1_StartResponse(serializedBytes: Array(message)).jobID
            return true
        }
        call.onFinish = { call, error in
            if let jobID, call.succeeded {
                completion(.success(jobID))
            } else {
                completion(.failure(LoadError("Start \(command) failed: \(error ?? call.failureSummary)")))
            }
        }
        if !connection.start(call) {
            completion(.failure(LoadError("Start \(command) failed: connection is not open")))
        }
    }

    /// Streams the job's output: `onOutput` gets each data chunk with its receive time,
    /// `completion` the final status (nil when the stream ended without one) or an error.
    @discardableResult
    static func stream(
        on connection: HTTP2Connection, jobID: String, onOutput: @escaping (UnsafeRawBufferPointer, UInt64) -> Void,
        completion: @escaping (Result<Jobworker_V1_JobStatus?, LoadError>) -> Void
    ) -> HTTP2Call {
        let request = Jobworker_V1_StreamRequest(jobID: jobID)
        var finalStatus: Jobworker_V1_JobStatus?
        let call = HTTP2Call(path: JobService.stream, body: HTTP2Call.frame(request.serializedBytes()), isGRPC: true)
        call.onMessage = { message, time in
            guard let response = try? Jobworker_V1_StreamResponse(serializedBytes: Array(message)) else { return false }
            if let status = response.finalStatus {
                finalStatus = status
            } else {
                response.data.withUnsafeBytes { onOutput($0, time) }
            }
            return true
        }
        call.onFinish = { call, error in
            if error == nil && call.succeeded {
                completion(.success(finalStatus))
            } else {
                completion(.failure(LoadError("Stream \(jobID) failed: \(error ?? call.failureSummary)")))
            }
        }
        if !connection.start(call) {
            completion(.failure(LoadError("Stream \(jobID) failed: connection is not open")))
        }
        return call
    }

    /// Sends one unary request with a pre-encoded, framed body; completes with success or not.
    static func unary(
        on connection: HTTP2Connection, path: String, framedBody: [UInt8], isGRPC: Bool,
        completion: @escaping (HTTP2Call, String?) -> Void
    ) {
        let call = HTTP2Call(path: path, body: framedBody, isGRPC: isGRPC)
        call.onFinish = completion
        if !connection.start(call) {
            completion(call, "connection is not open")
        }
    }

    /// Queries the job; completes with its status.
    static func query(
        on connection: HTTP2Connection, jobID: String,
        completion: @escaping (Result<Jobworker_V1_JobStatus, LoadError>) -> Void
    ) {
        let body = HTTP2Call.frame(Jobworker_V1_QueryRequest(jobID: jobID).serializedBytes())
        var status: Jobworker_V1_JobStatus?
        let call = HTTP2Call(path: JobService.query, body: body, isGRPC: true)
        call.onMessage = { message, _ in
            status = (try? Jobworker_V1_QueryResponse(serializedBytes: Array(message)))?.status
            return true
        }
        call.onFinish = { call, error in
            if let status, call.succeeded {
                completion(.success(status))
            } else {
                completion(.failure(LoadError("Query \(jobID) failed: \(error ?? call.failureSummary)")))
            }
        }
        if !connection.start(call) {
            completion(.failure(LoadError("Query \(jobID) failed: connection is not open")))
        }
    }

    /// Stops the job; completes when jobd replied (after the job ended).
    static func stop(on connection: HTTP2Connection, jobID: String, completion: @escaping (Bool) -> Void) {
        let body = HTTP2Call.frame(Jobworker_V1_StopRequest(jobID: jobID).serializedBytes())
        let call = HTTP2Call(path: JobService.stop, body: body, isGRPC: true)
        call.onFinish = { call, error in completion(error == nil && call.succeeded) }
        if !connection.start(call) {
            completion(false)
        }
    }
}
