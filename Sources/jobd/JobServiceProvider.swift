import Cgroups
import Foundation
import GRPCLite
import JobAPI
import Jobs
import Reactor

/// The jobworker.v1.JobService methods over a JobManager. Runs on the reactor thread only.
///
/// Every method reads the caller that the RBAC interceptor stored in the call context, so no method runs
/// without an allowed role. Owner filtering happens here, per job.
final class JobServiceProvider {
    private let manager: JobManager
    private let logger: Logger
    private let stopGrace: Duration
    /// The reason cgroups cannot be used, or nil when they can. Start with limits fails with this reason.
    private let cgroupsUnavailableReason: String?
    private var streams: [ObjectIdentifier: OutputStreamCall] = [:]

    /// Set when shutdown begins: new calls then fail with UNAVAILABLE.
    private(set) var isShuttingDown = false

    init(manager: JobManager, logger: Logger, stopGrace: Duration, cgroupsUnavailableReason: String?) {
        self.manager = manager
        self.logger = logger
        self.stopGrace = stopGrace
        self.cgroupsUnavailableReason = cgroupsUnavailableReason
    }

    /// Registers the five methods on `server`; the server itself serves the health check.
    func register(on server: GRPCServer) {
        server.registerUnary(JobService.start) { [unowned self] context, bytes, responder in
            respond(context, responder) { try self.start(context, bytes) }
        }
        server.registerUnary(JobService.query) { [unowned self] context, bytes, responder in
            respond(context, responder) { try self.query(context, bytes) }
        }
        server.registerUnary(JobService.list) { [unowned self] context, bytes, responder in
            respond(context, responder) { try self.list(context, bytes) }
        }
        server.registerUnary(JobService.stop) { [unowned self] context, bytes, responder in
            do {
                try self.stop(context, bytes, responder)
            } catch {
                responder.fail(failureStatus(error, context))
            }
        }
        server.registerServerStreaming(JobService.stream) { [unowned self] context, bytes, writer in
            do {
                try self.stream(context, bytes, writer)
            } catch {
                writer.finish(failureStatus(error, context))
            }
        }
    }

    /// Marks the service as shutting down and stops every running job with the grace period; calls
    /// `completion` once every job has ended.
    func shutDown(completion: @escaping () -> Void) {
        isShuttingDown = true
        let running = manager.allJobs.filter { $0.status.state == .running }
        var remaining = running.count
        guard remaining > 0 else {
            completion()
            return
        }
        for job in running {
            logger.info("job stop requested", ["id": job.status.id, "owner": job.status.owner, "by": "shutdown"])
            manager.stop(job, grace: stopGrace) { _ in
                remaining -= 1
                if remaining == 0 {
                    completion()
                }
            }
        }
    }

    // MARK: - Methods

    private func start(_ context: ServerCallContext, _ bytes: [UInt8]) throws -> [UInt8] {
        let caller = try admit(context)
        let request = try Jobworker_V1_StartRequest(serializedBytes: bytes)
        guard !request.name.isEmpty else {
            throw StatusMapping.emptyCommand()
        }

        let resources = request.resources ?? Jobworker_V1_ResourceConfig()
        let asksForLimits =
            !resources.cpuQuota.isEmpty || !resources.memoryLimit.isEmpty || !resources.diskIO.isEmpty
            || resources.maxPids != 0
        // Proto3 cannot tell an empty string from an absent one, so both mean "no limit".
        let limits = try ResourceLimits.parse(
            cpu: resources.cpuQuota.isEmpty ? nil : resources.cpuQuota,
            memory: resources.memoryLimit.isEmpty ? nil : resources.memoryLimit,
            diskIO: resources.diskIO.isEmpty ? nil : resources.diskIO,
            maxPids: resources.maxPids == 0 ? nil : resources.maxPids,
            cpuCount: ResourceLimits.onlineCPUCount())
        if asksForLimits, let reason = cgroupsUnavailableReason {
            throw StatusMapping.limitsWithoutCgroups(reason)
        }

        let spec = JobSpec(
            id: nil, owner: caller.identity, command: request.name, arguments: request.args,
            environment: request.env.isEmpty ? nil : request.env,
            workingDirectory: request.workingDirectory.isEmpty ? nil : request.workingDirectory, limits: limits)
        let job = try manager.start(spec)
        logger.info(
            "job started",
            ["id": job.status.id, "owner": caller.identity, "command": request.name, "limits": describe(resources)])
        return Jobworker_V1_StartResponse(jobID: job.status.id).serializedBytes()
    }

    private func query(_ context: ServerCallContext, _ bytes: [UInt8]) throws -> [UInt8] {
        let caller = try admit(context)
        let request = try Jobworker_V1_QueryRequest(serializedBytes: bytes)
        let job = try visibleJob(request.jobID, caller: caller)
        return Jobworker_V1_QueryResponse(status: WireStatus.message(job.status)).serializedBytes()
    }

    private func list(_ context: ServerCallContext, _ bytes: [UInt8]) throws -> [UInt8] {
        let caller = try admit(context)
        _ = try Jobworker_V1_ListRequest(serializedBytes: bytes)
        let jobs = manager.allJobs.map(\.status).filter { caller.canSee(owner: $0.owner) }
        return Jobworker_V1_ListResponse(jobs: jobs.map(WireStatus.message)).serializedBytes()
    }

    private func stop(_ context: ServerCallContext, _ bytes: [UInt8], _ responder: UnaryResponder) throws {
        let caller = try admit(context)
        let request = try Jobworker_V1_StopRequest(serializedBytes: bytes)
        let job = try visibleJob(request.jobID, caller: caller)

        if job.status.state == .running {
            logger.info("job stop requested", ["id": job.status.id, "owner": job.status.owner, "by": caller.identity])
        }
        manager.stop(job, grace: stopGrace) { status in
            responder.succeed(Jobworker_V1_StopResponse(status: WireStatus.message(status)).serializedBytes())
        }
    }

    private func stream(_ context: ServerCallContext, _ bytes: [UInt8], _ writer: ServerStreamWriter) throws {
        let caller = try admit(context)
        let request = try Jobworker_V1_StreamRequest(serializedBytes: bytes)
        let job = try visibleJob(request.jobID, caller: caller)

        let call = OutputStreamCall(
            jobID: job.status.id, subscription: manager.subscribe(job), writer: writer, context: context,
            logger: logger)
        let key = ObjectIdentifier(call)
        streams[key] = call
        call.onDone = { [weak self] in
            self?.streams[key] = nil
        }
        call.pump()
    }

    // MARK: - Helpers

    /// Returns the caller the RBAC interceptor admitted; fails while shutting down.
    private func admit(_ context: ServerCallContext) throws -> Caller {
        guard !isShuttingDown else {
            throw StatusMapping.shuttingDown
        }
        guard let caller = context.userInfo[RBACInterceptor.callerKey] as? Caller else {
            // The interceptor runs before every method, so this is a wiring bug, not a client error.
            throw StatusMapping.missingAuthorization(context.method)
        }
        return caller
    }

    /// Returns the job when it exists and the caller may see it; NOT_FOUND otherwise.
    private func visibleJob(_ jobID: String, caller: Caller) throws -> Job {
        guard !jobID.isEmpty else {
            throw StatusMapping.emptyJobID()
        }
        guard let job = manager.job(id: jobID), caller.canSee(owner: job.status.owner) else {
            throw StatusMapping.jobNotFound(jobID)
        }
        return job
    }

    private func respond(_ context: ServerCallContext, _ responder: UnaryResponder, _ body: () throws -> [UInt8]) {
        do {
            responder.succeed(try body())
        } catch {
            responder.fail(failureStatus(error, context))
        }
    }

    /// Maps a method's error to its status and logs the failed call; internal errors log at error level.
    private func failureStatus(_ error: Error, _ context: ServerCallContext) -> Status {
        let status = StatusMapping.status(for: error)
        let level: LogLevel = status.code == .internal || status.code == .dataLoss ? .error : .info
        logger.log(
            level, "call failed",
            [
                "method": context.method, "peer": context.peer.description, "code": status.code,
                "message": status.message,
            ])
        return status
    }

    private func describe(_ resources: Jobworker_V1_ResourceConfig) -> String? {
        var parts: [String] = []
        if !resources.cpuQuota.isEmpty { parts.append("cpu:" + resources.cpuQuota) }
        if !resources.memoryLimit.isEmpty { parts.append("memory:" + resources.memoryLimit) }
        if !resources.diskIO.isEmpty { parts.append("disk-io:" + resources.diskIO) }
        if resources.maxPids != 0 { parts.append("pids:\(resources.maxPids)") }
        return parts.isEmpty ? nil : parts.joined(separator: ",")
    }
}
