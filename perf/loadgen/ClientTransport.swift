import COpenSSL
import Glibc
import Reactor

/// One Redis client connection on the event loop: a non-blocking TCP socket to a loopback port,
/// optionally wrapped in TLS, that delivers received bytes to `onData` and writes what
/// `send` queued once per loop batch.
///
/// Not thread-safe: used only on the loop's thread. The transport owns its fd and closes it
/// in `close`.
final class ClientTransport {
    enum State { case connecting, handshaking, open, closed }

    let loop: EventLoop
    let fd: Int32
    private let ssl: OpaquePointer?
    private(set) var state = State.connecting
    private var output: [UInt8] = []
    private var outputStart = 0
    private var flushScheduled = false
    private var watchingWritable = true
    private let readBuffer: UnsafeMutableRawBufferPointer

    /// Runs once when the connection (and its TLS handshake) is ready for `send`.
    var onOpen: (() -> Void)?
    /// Receives decrypted bytes with the CLOCK_MONOTONIC time they were read.
    var onData: ((UnsafeRawBufferPointer, UInt64) -> Void)?
    /// Runs once when the connection closes. The reason is nil for a close this side requested.
    var onClose: ((String?) -> Void)?

    /// Starts a non-blocking connect(2) to `host:port` (IPv4 literal) and, with `tls`, a TLS
    /// client handshake once it completes.
    init(
        loop: EventLoop, host: String, port: UInt16, tls: TLSClientContext?, readBuffer: UnsafeMutableRawBufferPointer
    ) throws {
        self.loop = loop
        self.readBuffer = readBuffer
        let fd = try Syscall.call("socket") {
            socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue | SOCK_CLOEXEC.rawValue), 0)
        }
        var noDelay: Int32 = 1
        _ = setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &noDelay, socklen_t(MemoryLayout<Int32>.size))

        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        guard inet_pton(AF_INET, host, &address.sin_addr) == 1 else {
            Syscall.close(fd)
            throw LoadError("invalid host \"\(host)\": expected an IPv4 address such as 127.0.0.1")
        }
        let result = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        if result != 0 && errno != EINPROGRESS {
            let code = errno
            Syscall.close(fd)
            throw SystemError(errno: code, call: "connect", subject: "\(host):\(port)")
        }

        self.fd = fd
        do {
            ssl = try tls?.makeSession(fd: fd)
        } catch {
            ssl = nil
            Syscall.close(fd)
            throw error
        }
        try loop.register(fd: fd, interest: [.readable, .writable]) { [unowned self] readiness in
            self.handle(readiness)
        }
    }

    deinit {
        assert(state == .closed, "ClientTransport released while open: call close first")
    }

    /// Queues `bytes` for writing after the current loop batch.
    func send(_ bytes: UnsafeRawBufferPointer) {
        guard state != .closed else { return }
        output.append(contentsOf: bytes)
        scheduleFlush()
    }

    /// The number of queued bytes not yet accepted by the kernel.
    var pendingOutput: Int { output.count - outputStart }

    /// Deregisters and closes the socket, then reports `reason` through `onClose`.
    func close(reason: String?) {
        guard state != .closed else { return }
        state = .closed
        loop.deregister(fd: fd)
        if let ssl {
            SSL_free(ssl)
        }
        Syscall.close(fd)
        output = []
        outputStart = 0
        let handler = onClose
        onClose = nil
        onData = nil
        onOpen = nil
        handler?(reason)
    }

    // MARK: - Readiness

    private func handle(_ readiness: Readiness) {
        switch state {
        case .connecting:
            finishConnect()
        case .handshaking:
            continueHandshake()
        case .open:
            if readiness.contains(.readable) || readiness.contains(.hangup) || readiness.contains(.error) {
                readAvailable()
            }
            if state == .open && readiness.contains(.writable) {
                flush()
            }
        case .closed:
            break
        }
    }

    private func finishConnect() {
        var code: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &code, &length)
        if code == EINPROGRESS { return }
        guard code == 0 else {
            close(reason: "connect failed: \(String(cString: strerror(code)))")
            return
        }
        if ssl == nil {
            becomeOpen()
        } else {
            state = .handshaking
            continueHandshake()
        }
    }

    private func continueHandshake() {
        guard let ssl else { return }
        let result = SSL_do_handshake(ssl)
        if result == 1 {
            becomeOpen()
            return
        }
        switch SSL_get_error(ssl, result) {
        case SSL_ERROR_WANT_READ:
            watch(writable: false)
        case SSL_ERROR_WANT_WRITE:
            watch(writable: true)
        default:
            let verify = SSL_get_verify_result(ssl)
            let detail =
                verify == X509_V_OK
                ? TLSClientContext.openSSLErrors() : String(cString: X509_verify_cert_error_string(verify))
            close(reason: "TLS handshake failed: \(detail)")
        }
    }

    private func becomeOpen() {
        state = .open
        watch(writable: pendingOutput > 0)
        onOpen?()
        // TLS 1.3 servers reject a client certificate after the client's side of the
        // handshake, so bytes may already be waiting (an alert or session tickets).
        if state == .open {
            readAvailable()
        }
    }

    private func watch(writable: Bool) {
        guard state != .closed, writable != watchingWritable else { return }
        watchingWritable = writable
        do {
            try loop.modify(fd: fd, interest: writable ? [.readable, .writable] : .readable)
        } catch {
            close(reason: "\(error)")
        }
    }

    // MARK: - Reading

    /// Reads until the socket is empty, at most 64 reads per event, so one busy connection
    /// cannot starve the others. Level-triggered epoll reports the rest again.
    private func readAvailable() {
        for _ in 0..<64 {
            guard state == .open else { return }
            let count: Int
            if let ssl {
                let result = SSL_read(ssl, readBuffer.baseAddress, Int32(readBuffer.count))
                if result <= 0 {
                    let error = SSL_get_error(ssl, result)
                    if error == SSL_ERROR_WANT_READ { return }
                    if error == SSL_ERROR_WANT_WRITE {
                        watch(writable: true)
                        return
                    }
                    if error == SSL_ERROR_ZERO_RETURN {
                        close(reason: "server closed the TLS connection")
                    } else {
                        close(reason: "TLS read failed: \(TLSClientContext.openSSLErrors()) (errno \(errno))")
                    }
                    return
                }
                count = Int(result)
            } else {
                let result = Glibc.read(fd, readBuffer.baseAddress, readBuffer.count)
                if result < 0 {
                    if errno == EAGAIN || errno == EINTR { return }
                    close(reason: "read failed: \(String(cString: strerror(errno)))")
                    return
                }
                if result == 0 {
                    close(reason: "server closed the connection")
                    return
                }
                count = result
            }
            onData?(UnsafeRawBufferPointer(rebasing: readBuffer[0..<count]), MonotonicClock.nanoseconds())
        }
    }

    // MARK: - Writing

    private func scheduleFlush() {
        guard !flushScheduled else { return }
        flushScheduled = true
        loop.executeAfterBatch { [weak self] in
            guard let self else { return }
            self.flushScheduled = false
            self.flush()
        }
    }

    private func flush() {
        guard state == .open else { return }
        while pendingOutput > 0 {
            let written = output.withUnsafeBytes { bytes -> Int in
                let start = bytes.baseAddress! + outputStart
                if let ssl {
                    let result = SSL_write(ssl, start, Int32(min(pendingOutput, Int(Int32.max))))
                    if result > 0 { return Int(result) }
                    let error = SSL_get_error(ssl, result)
                    return error == SSL_ERROR_WANT_WRITE || error == SSL_ERROR_WANT_READ ? 0 : -1
                }
                let result = Glibc.write(fd, start, pendingOutput)
                if result >= 0 { return result }
                return errno == EAGAIN || errno == EINTR ? 0 : -1
            }
            if written < 0 {
                close(reason: "write failed: \(TLSClientContext.openSSLErrors()) (errno \(errno))")
                return
            }
            if written == 0 { break }
            outputStart += written
        }
        if pendingOutput == 0 {
            output.removeAll(keepingCapacity: output.capacity <= 1 << 20)
            outputStart = 0
        } else if outputStart > 1 << 20 {
            output.removeFirst(outputStart)
            outputStart = 0
        }
        watch(writable: pendingOutput > 0)
    }
}
