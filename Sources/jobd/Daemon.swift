import Cgroups
import Foundation
import GRPCLite
import Jobs
import Reactor

/// A failure to start serving, with the message to log before exiting 1.
struct StartupError: Error, CustomStringConvertible {
    let description: String
}

/// jobd's composition root: the loop, the job manager, the gRPC server and the signal handling.
/// Everything here runs on the thread that calls `run`.
final class Daemon {
    private let configuration: Configuration
    private let logger: Logger
    private let loop: EventLoop
    private let ring: IORing
    private let manager: JobManager
    private let server: GRPCServer
    private let service: JobServiceProvider
    private let cgroups: CgroupManager?
    private let stateLockFD: Int32
    private var isShuttingDown = false

    /// Sets up every component and recovers jobs from the state directory; listens only in `run`.
    init(configuration: Configuration, logger: Logger) throws {
        self.configuration = configuration
        self.logger = logger

        try Self.createStateDirectory(configuration.stateDirectory)
        stateLockFD = try Self.lockStateDirectory(configuration.stateDirectory)
        loop = try EventLoop()
        ring = try IORing(loop: loop)

        var cgroups: CgroupManager?
        var cgroupsUnavailableReason: String?
        do {
            let manager = try CgroupManager.detect(
                subtreeName: configuration.cgroupSubtree, stateDirectory: configuration.stateDirectory,
                ioDevice: configuration.ioDevice)
            logger.info("cgroups ready", ["version": manager.version, "subtree": configuration.cgroupSubtree])
            cgroups = manager
        } catch let error as CgroupError where error.isSubtreeInUse {
            // Running without cgroups here would hide a configuration mistake: the other
            // jobd's jobs are in this subtree.
            throw StartupError(description: "\(error)")
        } catch {
            cgroupsUnavailableReason = "\(error)"
            logger.warning(
                "cgroups unavailable, jobs run without resource limits",
                ["error": error, "fix": "run jobd as root with a writable cgroup hierarchy"])
        }

        self.cgroups = cgroups
        manager = try JobManager(loop: loop, ring: ring, cgroups: cgroups, stateDirectory: configuration.stateDirectory)
        service = JobServiceProvider(
            manager: manager, logger: logger, stopGrace: configuration.stopGrace,
            cgroupsUnavailableReason: cgroupsUnavailableReason)

        let tls = TLSConfiguration(
            caFile: configuration.tlsCA, certificateFile: configuration.tlsCertificate,
            privateKeyFile: configuration.tlsKey)
        do {
            server = try GRPCServer(loop: loop, tls: tls)
        } catch {
            throw StartupError(
                description: "cannot load the TLS files (--tls-ca \(configuration.tlsCA), --tls-cert "
                    + "\(configuration.tlsCertificate), --tls-key \(configuration.tlsKey)): \(error): create them "
                    + "with jobctl certs init DIR or point the flags at existing PEM files")
        }

        wire()
        try recover()
    }

    /// Listens, logs the bound address and serves until a shutdown signal has been handled.
    func run() throws {
        let bound: (host: String, port: UInt16)
        do {
            bound = try server.listen(host: configuration.listenHost, port: configuration.listenPort)
        } catch {
            removeEmptyCgroupSubtree()
            throw StartupError(
                description: "cannot listen on \(configuration.listenAddress): \(error): pick another --listen "
                    + "address or port, or stop the process that uses it")
        }
        try loop.watchSignals([SIGTERM, SIGINT, SIGHUP]) { [unowned self] signal in
            handle(signal: signal)
        }

        let address = bound.host.contains(":") ? "[\(bound.host)]:\(bound.port)" : "\(bound.host):\(bound.port)"
        logger.info("listening", ["address": address, "state_dir": configuration.stateDirectory])
        try loop.run()
        ring.close()
        removeEmptyCgroupSubtree()
        logger.info("jobd stopped")
    }

    private func removeEmptyCgroupSubtree() {
        for failure in cgroups?.removeEmptySubtree() ?? [] {
            logger.warning("cgroup subtree not removed", ["error": failure])
        }
    }

    private func wire() {
        let interceptor = RBACInterceptor(logger: logger)
        server.addInterceptor { context in interceptor.intercept(context) }
        service.register(on: server)
        let connectionLog = ConnectionLog(logger: logger)
        server.onConnectionEvent = { event in
            connectionLog.log(event)
        }
        manager.onJobFinished = { [logger, manager] status in
            logger.info(
                status.state == .stopped ? "job stopped" : "job exited",
                [
                    "id": status.id, "owner": status.owner, "command": status.command, "exit_code": status.exitCode,
                    "signal": status.signal, "oom_killed": status.oomKilled ? true : nil,
                ])
            // The job finished anyway; these are what it could not clean up or store on the way.
            for problem in manager.job(id: status.id)?.cleanupErrors ?? [] {
                logger.error("job cleanup failed", ["id": status.id, "error": problem])
            }
        }
    }

    private func recover() throws {
        for problem in try manager.recover() {
            logger.warning("recovery warning", ["detail": problem])
        }
        logger.info("state recovered", ["jobs": manager.allJobs.count, "state_dir": configuration.stateDirectory])
    }

    private func handle(signal: Int32) {
        switch signal {
        case SIGHUP:
            do {
                try server.reloadCertificates()
                logger.info("certificates reloaded", ["ca": configuration.tlsCA, "cert": configuration.tlsCertificate])
            } catch {
                logger.error("certificate reload failed, keeping the old ones", ["error": error])
            }
        default:
            beginShutdown(signal: signal)
        }
    }

    /// Stops accepting connections, stops running jobs with the grace period, lets calls in flight finish
    /// (streams end with the jobs), then stops the loop.
    private func beginShutdown(signal: Int32) {
        guard !isShuttingDown else {
            // A second Ctrl-C means "now": jobs still running are killed through their cgroups by
            // the recovery of the next start.
            logger.warning("second shutdown signal, exiting without waiting", ["signal": signal])
            loop.stop()
            return
        }
        isShuttingDown = true
        logger.info("shutting down", ["signal": signal == SIGINT ? "SIGINT" : "SIGTERM"])

        var remaining = 2
        let finishOne = { [unowned self] in
            remaining -= 1
            if remaining == 0 {
                loop.stop()
            }
        }
        service.shutDown(completion: finishOne)
        // Calls in flight get the grace period plus time for the jobs' final statuses to reach clients.
        server.shutdown(gracePeriod: configuration.stopGrace + .seconds(5), completion: finishOne)
    }

    /// Takes an exclusive flock(2) on the state directory for jobd's lifetime: two daemons on
    /// one state directory would overwrite each other's job records and logs. The kernel
    /// releases the lock when jobd exits, even by SIGKILL.
    private static func lockStateDirectory(_ path: String) throws -> Int32 {
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else {
            let reason = SystemError(errno: errno, call: "open", subject: path).reason
            throw StartupError(description: "cannot open the state directory \"\(path)\": \(reason)")
        }
        if flock(fd, LOCK_EX | LOCK_NB) != 0 {
            let code = errno
            close(fd)
            if code == EWOULDBLOCK {
                throw StartupError(
                    description: "the state directory \"\(path)\" is in use by another jobd: stop it or choose another "
                        + "--state-dir")
            }
            let reason = SystemError(errno: code, call: "flock", subject: path).reason
            throw StartupError(description: "cannot lock the state directory \"\(path)\": \(reason)")
        }
        return fd
    }

    private static func createStateDirectory(_ path: String) throws {
        do {
            try FileManager.default.createDirectory(
                atPath: path, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        } catch {
            throw StartupError(
                description: "cannot create the state directory \"\(path)\": \(error.localizedDescription): "
                    + "choose a writable --state-dir")
        }
    }
}
