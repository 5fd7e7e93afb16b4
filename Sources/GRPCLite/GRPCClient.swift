import Glibc
import Reactor

/// A blocking gRPC client over HTTP/2 and mutual TLS 1.3, for command-line tools: each
/// call runs a private `EventLoop` on the calling thread until the call ends. Every
/// failure is thrown as a `Status` whose message names what to check.
///
/// Not thread-safe: use an instance from one thread. The connection opens on the first
/// call and is reused until it closes.
public final class GRPCClient {
    public struct Options: Sendable {
        /// The largest response message accepted; larger ones fail with RESOURCE_EXHAUSTED.
        public var maxReceiveMessageSize = 4 * 1024 * 1024
        /// SETTINGS_INITIAL_WINDOW_SIZE: response bytes one call may have in flight before
        /// the client acknowledges them (RFC 9113, section 6.9.2); at most 2^31 - 1.
        public var initialWindowSize: Int32 = 1024 * 1024
        /// How long connecting and the TLS handshake may take together.
        public var connectTimeout: Duration = .seconds(10)
        /// How long a connection with calls in flight may receive nothing before the client
        /// sends a PING; nil turns this check off.
        public var keepaliveInterval: Duration? = .seconds(30)
        /// How long that PING may go unanswered before the connection is closed and its calls
        /// fail with UNAVAILABLE, so a server that vanished cannot hang a call forever.
        public var keepaliveTimeout: Duration = .seconds(10)
        /// How many calls a `GRPCChannel` holds while the connection is opening or the server's
        /// SETTINGS_MAX_CONCURRENT_STREAMS calls are in flight; further calls fail with
        /// RESOURCE_EXHAUSTED.
        public var maxQueuedCalls = 1024

        public init() {}
    }

    public let host: String
    public let port: UInt16
    private let options: Options
    private let loop: EventLoop
    private let tlsContext: TLSContext
    private let serverName: String
    private let buffers = ConnectionBuffers()
    private var connection: ClientConnection?

    /// Loads the TLS files; throws `TLSError` when one is missing or invalid. Connects on
    /// the first call. The server certificate must carry `tls.serverName`, or `host` when
    /// that is nil, as a DNS name or IP address.
    public init(host: String, port: UInt16, tls: TLSConfiguration, options: Options = .init()) throws {
        self.host = host
        self.port = port
        self.options = options
        self.loop = try EventLoop()
        self.tlsContext = try TLSContext(configuration: tls, isServer: false)
        self.serverName = tls.serverName ?? host
    }

    deinit {
        close()
    }

    private var authority: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }

    /// Calls a unary method and returns the response message; throws `Status` on failure.
    /// `timeout` becomes the call's deadline (sent as grpc-timeout, enforced locally too).
    public func unary(_ method: String, request: [UInt8], timeout: Duration?) throws -> [UInt8] {
        var response: [UInt8]?
        var count = 0
        let status = try perform(method, request: request, timeout: timeout) { message in
            count += 1
            response = message
            return true
        }
        guard status.isOK else { throw status }
        guard count == 1, let response else {
            throw Status(.internal, "server \(authority) sent \(count) messages for unary method \(method), expected 1")
        }
        return response
    }

    /// Calls a server-streaming method, passing each message to `onMessage` as it arrives.
    /// Returning false from `onMessage` cancels the call (RST_STREAM CANCEL) and returns
    /// normally. Throws `Status` when the call fails.
    public func serverStreaming(
        _ method: String, request: [UInt8], timeout: Duration?, onMessage: ([UInt8]) -> Bool
    ) throws {
        let status = try withoutActuallyEscaping(onMessage) { handler in
            try perform(method, request: request, timeout: timeout, onMessage: handler)
        }
        if status.isOK || status == GRPCClient.cancelledByClient {
            return
        }
        throw status
    }

    private static let cancelledByClient = Status(.cancelled, "cancelled by the client")

    /// Closes the connection with GOAWAY and a TLS close_notify; no call is in flight
    /// because calls never outlive the blocking methods.
    public func close() {
        if let connection, connection.state != .closed {
            connection.closeGracefully()
        }
        connection = nil
    }

    private func perform(
        _ method: String, request: [UInt8], timeout: Duration?, onMessage: @escaping ([UInt8]) -> Bool
    ) throws -> Status {
        let connection = try connect()
        var result: Status?
        connection.startCall(method: method, request: request, timeout: timeout, onMessage: onMessage) { status in
            result = status
        }
        while result == nil {
            do {
                _ = try loop.run(until: { result != nil }, timeout: .seconds(3600))
            } catch {
                throw Status(.internal, "event loop failed: \(error)")
            }
        }
        return result!
    }

    // MARK: - Connecting

    private func connect() throws(Status) -> ClientConnection {
        if let connection, connection.isUsable {
            return connection
        }
        if let connection, connection.state != .closed {
            connection.close(reason: nil)
        }
        connection = nil
        let opened = try openConnection()
        connection = opened
        return opened
    }

    /// The loop that runs this client's connections; tests drive it to run many calls at once.
    var eventLoop: EventLoop { loop }

    /// Opens a new connection that this client does not cache.
    func openConnection() throws(Status) -> ClientConnection {
        let addresses: [Socket.Address]
        do {
            addresses = try Socket.resolve(host: host, port: port)
        } catch {
            throw Status(.unavailable, "\(error): check the server address")
        }

        // Try each address in turn, as a browser does, but only while the TCP connect
        // itself fails; a TLS failure is final.
        var lastStatus = Status(.unavailable, "no address for \(host)")
        for address in addresses {
            switch attempt(address) {
            case .success(let connection):
                return connection
            case .failure(let status, let retry):
                lastStatus = status
                if !retry { throw status }
            }
        }
        throw lastStatus
    }

    private enum Attempt {
        case success(ClientConnection)
        case failure(Status, retry: Bool)
    }

    private func attempt(_ address: Socket.Address) -> Attempt {
        let fd: Int32
        let connected: Bool
        do {
            fd = try Socket.makeSocket(family: address.family)
        } catch {
            return .failure(Status(.unavailable, "cannot create a socket: \(error)"), retry: false)
        }
        do {
            connected = try Socket.connect(fd, to: address)
        } catch {
            Syscall.close(fd)
            return .failure(
                Self.connectStatus(
                    errno: error.errno, reason: error.description, authority: authority,
                    connectTimeout: options.connectTimeout),
                retry: true)
        }

        let connection: ClientConnection
        do {
            let tls = try TLSSession(context: tlsContext, serverName: serverName)
            connection = ClientConnection(
                loop: loop, fd: fd, tls: tls, buffers: buffers, authority: authority, connecting: !connected,
                maxMessageSize: options.maxReceiveMessageSize, streamWindowSize: options.initialWindowSize,
                keepalive: options.keepaliveInterval.map { ($0, options.keepaliveTimeout) })
        } catch {
            Syscall.close(fd)
            return .failure(Status(.unavailable, "\(error)"), retry: false)
        }
        do {
            try connection.start(handshakeTimeout: options.connectTimeout)
            _ = try loop.run(
                until: { connection.state == .open || connection.state == .closed },
                timeout: options.connectTimeout + .seconds(1))
        } catch {
            connection.close(reason: "\(error)")
        }

        if connection.state == .open {
            return .success(connection)
        }
        if connection.state != .closed {
            connection.close(reason: "connect timed out")
        }
        guard let failure = connection.failure else {
            return .failure(
                Status(.unavailable, "connection to \(authority) closed during the TLS handshake"), retry: false)
        }
        if failure.stage == .connecting {
            return .failure(
                Self.connectStatus(
                    errno: connection.connectErrno, reason: failure.reason, authority: authority,
                    connectTimeout: options.connectTimeout),
                retry: true)
        }
        return .failure(
            Self.handshakeStatus(failure.reason, authority: authority, serverName: serverName), retry: false)
    }

    /// Returns the UNAVAILABLE status for a failed connect(2), with the check it calls for.
    static func connectStatus(errno: Int32, reason: String, authority: String, connectTimeout: Duration) -> Status {
        switch errno {
        case ECONNREFUSED:
            return Status(.unavailable, "connection refused by \(authority): is jobd running?")
        case ETIMEDOUT, EHOSTUNREACH, ENETUNREACH:
            return Status(
                .unavailable,
                "cannot reach \(authority): \(String(cString: strerror(errno))): check the address and the network")
        default:
            if reason.contains("timed out") {
                return Status(.unavailable, "connecting to \(authority) timed out after \(connectTimeout)")
            }
            return Status(.unavailable, "cannot connect to \(authority): \(reason)")
        }
    }

    /// Returns the UNAVAILABLE status for a failed TLS handshake, with the check it calls for.
    static func handshakeStatus(_ reason: String, authority: String, serverName: String) -> Status {
        if reason.hasPrefix("server certificate verification failed") {
            return Status(
                .unavailable,
                "TLS handshake with \(authority) failed: \(reason): the CA file must hold the CA that signed the server's certificate, "
                    + "and the certificate must name \(serverName)")
        }
        if reason.contains("timed out") {
            return Status(.unavailable, "TLS handshake with \(authority) \(reason)")
        }
        return Status(.unavailable, "TLS handshake with \(authority) failed: \(reason)")
    }
}
