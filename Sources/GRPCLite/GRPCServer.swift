import Reactor

/// A connection's life as the server logs it.
public enum ConnectionEvent: Sendable, CustomStringConvertible {
    /// The TLS handshake verified the client's certificate and negotiated h2.
    case accepted(peerAddress: String, peer: PeerIdentity)
    /// An accepted connection ended; `reason` is nil after an orderly close.
    case closed(peerAddress: String, peer: PeerIdentity, reason: String?)
    /// The connection was turned away before any call: TLS handshake failure (protocol
    /// version, missing or untrusted certificate, no h2), handshake timeout, or too many
    /// connections. `peer` is the certificate the client presented, when it sent one.
    case refused(peerAddress: String, reason: String, peer: PeerIdentity?)

    public var description: String {
        switch self {
        case .accepted(let address, let peer): "accepted connection from \(address) (\(peer))"
        case .closed(let address, let peer, let reason):
            "closed connection from \(address) (\(peer)): \(reason ?? "orderly close")"
        case .refused(let address, let reason, let peer):
            "refused connection from \(address)\(peer.map { " (\($0))" } ?? ""): \(reason)"
        }
    }
}

/// A gRPC server over HTTP/2 and mutual TLS 1.3 on an `EventLoop`: unary and
/// server-streaming methods, interceptors, deadlines, cancellation and the standard
/// `grpc.health.v1.Health/Check`. Everything runs on the loop thread.
public final class GRPCServer {
    /// Limits that bound what one connection may hold.
    public struct Options: Sendable {
        /// The largest request message accepted; larger ones fail with RESOURCE_EXHAUSTED.
        public var maxReceiveMessageSize = 4 * 1024 * 1024
        /// SETTINGS_MAX_CONCURRENT_STREAMS sent to each client.
        public var maxConcurrentStreams: UInt32 = 1024
        /// SETTINGS_INITIAL_WINDOW_SIZE: how many bytes a client may send on a stream before
        /// the server acknowledges them (RFC 9113, section 6.9.2).
        public var initialWindowSize: UInt32 = 1024 * 1024
        /// The connection-level receive window: how many request bytes all streams of a
        /// connection may have in flight together.
        public var connectionWindowSize = 4 * 1024 * 1024
        /// Request bytes one connection may hold across its calls: partial messages and
        /// requests waiting for their end of stream. A DATA frame beyond it fails its call
        /// with RESOURCE_EXHAUSTED.
        public var connectionReceiveLimit = 16 * 1024 * 1024
        /// SETTINGS_MAX_HEADER_LIST_SIZE, also enforced on received headers.
        public var maxHeaderListSize = 16 * 1024
        /// Output bytes one connection buffers (TLS records and socket remainder) before it
        /// stops taking frames from streams and stops reading the socket.
        public var connectionOutputLimit = 256 * 1024
        /// Bytes a stream may queue before `ServerStreamWriter.isWritable` turns false.
        public var streamWriteLimit = 128 * 1024
        /// Open connections beyond which new ones are closed at once.
        public var maxConnections = 4096

        public init() {}
    }

    let loop: EventLoop
    let options: Options
    let buffers = ConnectionBuffers()
    private let tlsConfiguration: TLSConfiguration
    private var tlsContext: TLSContext
    private var listeners: [Int32] = []
    private var connections: [ObjectIdentifier: ServerConnection] = [:]
    private var unaryHandlers: [String: (ServerCallContext, [UInt8], UnaryResponder) -> Void] = [:]
    private var streamingHandlers: [String: (ServerCallContext, [UInt8], ServerStreamWriter) -> Void] = [:]
    private var interceptors: [(ServerCallContext) -> Status?] = []
    private var shutdownCompletions: [() -> Void] = []
    private var shutdownTimer: TimerID?
    private var shutdownDeadline: UInt64?
    private var isShutdownComplete = false
    private(set) var isShuttingDown = false

    /// Receives connection events on the loop thread, for logging.
    public var onConnectionEvent: ((ConnectionEvent) -> Void)?

    /// Loads the TLS files and registers `grpc.health.v1.Health/Check`. Throws `TLSError`
    /// when a file is missing or invalid.
    public init(loop: EventLoop, tls: TLSConfiguration, options: Options = .init()) throws {
        self.loop = loop
        self.options = options
        self.tlsConfiguration = tls
        self.tlsContext = try TLSContext(configuration: tls, isServer: true)
        registerHealthService()
    }

    deinit {
        for fd in listeners {
            loop.deregister(fd: fd)
            Syscall.close(fd)
        }
        for connection in Array(connections.values) {
            connection.closeDetached(reason: "server released")
        }
    }

    // MARK: - Registration

    /// Runs `interceptor` for every call before its handler, in the order added; a non-nil
    /// status rejects the call with it (e.g. PERMISSION_DENIED for a role).
    public func addInterceptor(_ interceptor: @escaping (ServerCallContext) -> Status?) {
        interceptors.append(interceptor)
    }

    /// Registers a unary method by full name, e.g. `/jobworker.v1.JobService/Start`
    /// (the leading slash is optional). The handler gets the request message and completes
    /// the call through the responder, now or later.
    public func registerUnary(
        _ method: String, _ handler: @escaping (ServerCallContext, [UInt8], UnaryResponder) -> Void
    ) {
        unaryHandlers[GRPCServer.path(method)] = handler
    }

    /// Registers a server-streaming method by full name. The handler writes messages
    /// through the writer and ends the call with `finish`.
    public func registerServerStreaming(
        _ method: String, _ handler: @escaping (ServerCallContext, [UInt8], ServerStreamWriter) -> Void
    ) {
        streamingHandlers[GRPCServer.path(method)] = handler
    }

    private static func path(_ method: String) -> String {
        method.hasPrefix("/") ? method : "/" + method
    }

    func hasMethod(_ path: String) -> Bool {
        unaryHandlers[path] != nil || streamingHandlers[path] != nil
    }

    func runInterceptors(_ context: ServerCallContext) -> Status? {
        for interceptor in interceptors {
            if let status = interceptor(context) {
                return status
            }
        }
        return nil
    }

    func dispatch(context: ServerCallContext, request: [UInt8], call: ServerCall) {
        if let handler = unaryHandlers[context.method] {
            handler(context, request, UnaryResponder(call: call))
        } else if let handler = streamingHandlers[context.method] {
            handler(context, request, ServerStreamWriter(call: call))
        }
    }

    private func registerHealthService() {
        registerUnary(HealthService.check) { [unowned self] _, request, responder in
            guard let message = try? HealthCheckRequest(serializedBytes: request) else {
                responder.fail(
                    Status(.invalidArgument, "invalid HealthCheckRequest: expected a grpc.health.v1 message"))
                return
            }
            // The server as a whole ("") and every service with a registered method are SERVING.
            let prefix = "/\(message.service)/"
            let known = message.service.isEmpty || self.allMethods.contains { $0.hasPrefix(prefix) }
            guard known else {
                responder.fail(Status(.notFound, "unknown service \"\(message.service)\""))
                return
            }
            let status: HealthCheckResponse.ServingStatus = self.isShuttingDown ? .notServing : .serving
            responder.succeed(HealthCheckResponse(status: status).serializedBytes())
        }
    }

    private var allMethods: [String] { Array(unaryHandlers.keys) + Array(streamingHandlers.keys) }

    // MARK: - Listening

    /// Binds a listening socket and starts accepting (bind(2), listen(2)). Port 0 lets the
    /// kernel pick; returns the bound host and port.
    @discardableResult
    public func listen(host: String, port: UInt16) throws -> (host: String, port: UInt16) {
        guard let address = try Socket.resolve(host: host, port: port).first else {
            throw Socket.ResolveError(host: host, reason: "no address")
        }
        let (fd, bound) = try Socket.listen(on: address)
        do {
            try loop.register(fd: fd, interest: .readable) { [unowned self] _ in
                self.acceptConnections(from: fd)
            }
        } catch {
            Syscall.close(fd)
            throw error
        }
        listeners.append(fd)
        return (bound.host, bound.port)
    }

    private func acceptConnections(from listener: Int32) {
        // At most 64 per readiness, so a connection storm cannot starve established clients.
        for _ in 0..<64 {
            let accepted: (fd: Int32, peer: Socket.Address)?
            do {
                accepted = try Socket.accept(from: listener)
            } catch {
                // EMFILE, ENFILE, ENOBUFS: the connection waits in the backlog for the next try.
                onConnectionEvent?(.refused(peerAddress: "(not accepted)", reason: "\(error)", peer: nil))
                return
            }
            guard let (fd, peerAddress) = accepted else { return }
            startConnection(fd: fd, peerAddress: peerAddress.description)
        }
    }

    private func startConnection(fd: Int32, peerAddress: String) {
        if connections.count >= options.maxConnections || isShuttingDown {
            Syscall.close(fd)
            let reason =
                isShuttingDown ? "server shutting down" : "too many connections (limit \(options.maxConnections))"
            onConnectionEvent?(.refused(peerAddress: peerAddress, reason: reason, peer: nil))
            return
        }
        let connection: ServerConnection
        do {
            connection = ServerConnection(
                server: self, fd: fd, tls: try TLSSession(context: tlsContext), peerAddress: peerAddress)
        } catch {
            Syscall.close(fd)
            onConnectionEvent?(.refused(peerAddress: peerAddress, reason: "\(error)", peer: nil))
            return
        }
        connections[ObjectIdentifier(connection)] = connection
        do {
            try connection.start(handshakeTimeout: tlsConfiguration.handshakeTimeout)
        } catch {
            connection.close(reason: "\(error)")
        }
    }

    // MARK: - Connection callbacks

    func connectionAccepted(_ connection: ServerConnection, peer: PeerIdentity) {
        onConnectionEvent?(.accepted(peerAddress: connection.peerAddress, peer: peer))
    }

    func connectionRefused(_ connection: ServerConnection, reason: String) {
        onConnectionEvent?(
            .refused(peerAddress: connection.peerAddress, reason: reason, peer: connection.tls.presentedIdentity))
    }

    func connectionClosed(_ connection: ServerConnection, reason: String?) {
        connections.removeValue(forKey: ObjectIdentifier(connection))
        if connection.isAccepted, let peer = connection.peer {
            onConnectionEvent?(.closed(peerAddress: connection.peerAddress, peer: peer, reason: reason))
        }
        if isShuttingDown && connections.isEmpty {
            completeShutdown()
        }
    }

    // MARK: - Certificates and shutdown

    /// Loads the TLS files again into a new SSL_CTX for new connections; open connections
    /// keep the context they started with. On failure the old context stays in use.
    public func reloadCertificates() throws {
        tlsContext = try TLSContext(configuration: tlsConfiguration, isServer: true)
    }

    /// Stops accepting, sends GOAWAY on every connection so calls in flight can finish,
    /// and closes connections as their calls end. After `gracePeriod` the remaining
    /// connections are closed and their calls cancelled. `completion` runs once, on the
    /// loop thread, when every connection is closed. Calling it again adds a completion
    /// and may shorten the grace period; after the shutdown completed, `completion` runs at once.
    public func shutdown(gracePeriod: Duration, completion: @escaping () -> Void) {
        if isShutdownComplete {
            completion()
            return
        }
        shutdownCompletions.append(completion)
        let deadline = MonotonicClock.nanoseconds() &+ UInt64(max(0, GRPCTimeout.nanoseconds(gracePeriod)))
        if let current = shutdownDeadline, current <= deadline {
            return
        }
        shutdownDeadline = deadline
        if let timer = shutdownTimer {
            loop.cancelTimer(timer)
        }
        shutdownTimer = loop.scheduleTimer(atNanoseconds: deadline) { [weak self] in
            guard let self else { return }
            self.shutdownTimer = nil
            for connection in Array(self.connections.values) {
                connection.close(reason: "server shutting down: grace period of \(gracePeriod) ended")
            }
        }

        guard !isShuttingDown else { return }
        isShuttingDown = true
        for fd in listeners {
            loop.deregister(fd: fd)
            Syscall.close(fd)
        }
        listeners.removeAll()
        if connections.isEmpty {
            completeShutdown()
            return
        }
        for connection in Array(connections.values) {
            connection.beginShutdown()
        }
    }

    private func completeShutdown() {
        if let timer = shutdownTimer {
            loop.cancelTimer(timer)
            shutdownTimer = nil
        }
        isShutdownComplete = true
        let completions = shutdownCompletions
        shutdownCompletions.removeAll()
        for completion in completions {
            completion()
        }
    }

    // MARK: - Accounting

    /// Bytes held for output across all connections: TLS and socket buffers plus every
    /// call's queued messages. Exposed so tests can check that a slow reader's calls stay
    /// within the flow-control and buffer limits.
    public var bufferedBytes: Int {
        connections.values.reduce(0) { $0 + $1.bufferedBytes }
    }

    /// Open connections, including those still in the TLS handshake.
    public var connectionCount: Int { connections.count }

    /// Calls whose streams are open on any connection.
    public var activeCallCount: Int {
        connections.values.reduce(0) { $0 + $1.activeCallCount }
    }
}
