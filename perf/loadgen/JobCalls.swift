import GRPCLite
import JobAPI
import Reactor

/// The jobworker.v1 calls the benchmarks make, on a `GRPCChannel` with the `JobAPI`
/// messages. Each reports its outcome once through `completion` on the loop thread.
enum JobCalls {
    /// The deadline of every benchmark call; generous, so only a stuck server trips it.
    static let timeout: Duration = .seconds(600)

    /// Starts `command` with `arguments` and the given limits, and completes with the job id.
    static func start(
        on channel: GRPCChannel, command: String, arguments: [String], cpu: String = "", memory: String = "",
        completion: @escaping (Result<String, LoadError>) -> Void
    ) {
        var request = Jobworker_V1_StartRequest(name: command, args: arguments)
        if !cpu.isEmpty || !memory.isEmpty {
            request.resources = Jobworker_V1_ResourceConfig(cpuQuota: cpu, memoryLimit: memory)
        }
        channel.startUnary(JobService.start, request: request.serializedBytes(), timeout: timeout) { result in
            switch result {
            case .success(let bytes):
                guard let response = try? Jobworker_V1_StartResponse(serializedBytes: bytes) else {
                    completion(.failure(LoadError("Start \(command) failed: invalid StartResponse")))
                    return
                }
                completion(.success(response.jobID))
            case .failure(let status):
                completion(.failure(LoadError("Start \(command) failed: \(status)")))
            }
        }
    }

    /// Streams the job's output: `onOutput` gets each data chunk with the CLOCK_MONOTONIC
    /// time its message was delivered, `completion` the final status (nil when the stream
    /// ended without one) or an error.
    @discardableResult
    static func stream(
        on channel: GRPCChannel, jobID: String, onOutput: @escaping (UnsafeRawBufferPointer, UInt64) -> Void,
        completion: @escaping (Result<Jobworker_V1_JobStatus?, LoadError>) -> Void
    ) -> ClientCallHandle {
        let request = Jobworker_V1_StreamRequest(jobID: jobID)
        var finalStatus: Jobworker_V1_JobStatus?
        var decodeFailed = false
        var handle: ClientCallHandle?
        handle = channel.startServerStreaming(
            JobService.stream, request: request.serializedBytes(), timeout: timeout,
            onMessage: { message in
                let time = MonotonicClock.nanoseconds()
                guard let response = try? Jobworker_V1_StreamResponse(serializedBytes: message) else {
                    decodeFailed = true
                    handle?.cancel()
                    return
                }
                if let status = response.finalStatus {
                    finalStatus = status
                } else {
                    response.data.withUnsafeBytes { onOutput($0, time) }
                }
            },
            onFinish: { status in
                if decodeFailed {
                    completion(.failure(LoadError("Stream \(jobID) failed: invalid StreamResponse")))
                } else if status.isOK {
                    completion(.success(finalStatus))
                } else {
                    completion(.failure(LoadError("Stream \(jobID) failed: \(status)")))
                }
            })
        return handle!
    }

    /// Sends one unary request; completes with nil on success, else the failure. With
    /// `acceptsPlainHTTPResponses` an HTTP 200 without grpc-status counts as success, for
    /// nghttpd serving a file.
    static func unary(
        on channel: GRPCChannel, path: String, request: [UInt8], acceptsPlainHTTPResponses: Bool,
        completion: @escaping (Status?) -> Void
    ) {
        channel.startUnary(
            path, request: request, timeout: timeout, acceptsPlainHTTPResponses: acceptsPlainHTTPResponses
        ) { result in
            switch result {
            case .success: completion(nil)
            case .failure(let status): completion(status)
            }
        }
    }

    /// Queries the job; completes with its status.
    static func query(
        on channel: GRPCChannel, jobID: String,
        completion: @escaping (Result<Jobworker_V1_JobStatus, LoadError>) -> Void
    ) {
        let request = Jobworker_V1_QueryRequest(jobID: jobID).serializedBytes()
        channel.startUnary(JobService.query, request: request, timeout: timeout) { result in
            switch result {
            case .success(let bytes):
                guard let status = (try? Jobworker_V1_QueryResponse(serializedBytes: bytes))?.status else {
                    completion(.failure(LoadError("Query \(jobID) failed: invalid QueryResponse")))
                    return
                }
                completion(.success(status))
            case .failure(let status):
                completion(.failure(LoadError("Query \(jobID) failed: \(status)")))
            }
        }
    }

    /// Stops the job; completes when jobd replied (after the job ended).
    static func stop(on channel: GRPCChannel, jobID: String, completion: @escaping (Bool) -> Void) {
        let request = Jobworker_V1_StopRequest(jobID: jobID).serializedBytes()
        channel.startUnary(JobService.stop, request: request, timeout: timeout) { result in
            if case .success = result {
                completion(true)
            } else {
                completion(false)
            }
        }
    }

    /// Frames `message` as one uncompressed gRPC message (5-byte prefix: compressed flag,
    /// 4-byte big-endian length; gRPC over HTTP/2, "Length-Prefixed-Message").
    static func frame(_ message: [UInt8]) -> [UInt8] {
        let length = UInt32(message.count)
        return [0, UInt8(length >> 24), UInt8(length >> 16 & 0xff), UInt8(length >> 8 & 0xff), UInt8(length & 0xff)]
            + message
    }
}
