import Glibc
import Reactor

/// Scratch memory shared by every connection of one loop, so an idle connection keeps no
/// read or decrypt buffer of its own. Only the loop thread touches it.
final class ConnectionBuffers {
    let ciphertext = UnsafeMutableRawBufferPointer.allocate(byteCount: 64 * 1024, alignment: 16)
    let plaintext = UnsafeMutableRawBufferPointer.allocate(byteCount: 64 * 1024, alignment: 16)

    deinit {
        ciphertext.deallocate()
        plaintext.deallocate()
    }
}

/// One TCP connection carrying TLS and HTTP/2, on the loop thread: socket readiness drives
/// TLS records into the nghttp2 session, and nghttp2's frames go out through TLS.
///
/// Output backpressure: frames are pulled from nghttp2 only while the bytes buffered here
/// (staged plaintext, ciphertext in the TLS output BIO, and a socket remainder) stay below
/// `outputLimit`, and the socket is not read while they are above it. Streams keep their
/// own queued messages, so everything a connection keeps is bounded by these limits plus
/// each stream's write limit.
///
/// Subclasses (server and client) override the `HTTP2SessionDelegate` methods and the hooks
/// in "Subclass hooks".
class Connection: HTTP2SessionDelegate {
    enum State {
        case connecting
        case handshaking
        case open
        case closed
    }

    let loop: EventLoop
    let fd: Int32
    let tls: TLSSession
    let buffers: ConnectionBuffers
    let peerAddress: String
    let outputLimit: Int
    private(set) var state: State
    private(set) var http2: HTTP2Session?
    private(set) var peer: PeerIdentity?

    /// Plaintext frames gathered for one SSL_write, so small frames share a TLS record.
    private var staging: [UInt8] = []
    /// Ciphertext that the socket did not take, written first when it is writable again.
    private var socketRemainder: [UInt8] = []
    private var socketRemainderOffset = 0
    private var interest: Interest = []
    private var isFlushing = false
    private var flushAgain = false
    private var flushScheduled = false
    private var handshakeTimer: TimerID?
    /// A DATA frame was refused for lack of room; nghttp2 keeps it until the next flush.
    private var dataBlocked = false
    /// The reason nghttp2 ended the session with a GOAWAY error, reported when the connection closes.
    private var sentGoAwayReason: String?
    /// When bytes last arrived from the peer, in CLOCK_MONOTONIC nanoseconds.
    private var lastReadAt = MonotonicClock.nanoseconds()
    private var keepaliveTimer: TimerID?
    /// The PING acknowledgement count that acknowledges the keepalive PING in flight, if one is.
    private var awaitedPingAcknowledgements: Int?
    private var pingSentAt: UInt64 = 0

    /// Takes ownership of `fd`, which `close` closes.
    init(
        loop: EventLoop, fd: Int32, tls: TLSSession, buffers: ConnectionBuffers, peerAddress: String, outputLimit: Int,
        connecting: Bool
    ) {
        self.loop = loop
        self.fd = fd
        self.tls = tls
        self.buffers = buffers
        self.peerAddress = peerAddress
        self.outputLimit = outputLimit
        self.state = connecting ? .connecting : .handshaking
    }

    deinit {
        assert(state == .closed, "connection to \(peerAddress) released without close()")
    }

    /// Registers the socket with the loop and starts the handshake timer.
    func start(handshakeTimeout: Duration) throws(SystemError) {
        interest = state == .connecting ? .writable : .readable
        try loop.register(fd: fd, interest: interest) { [unowned self] readiness in
            self.handle(readiness)
        }
        handshakeTimer = loop.scheduleTimer(after: handshakeTimeout) { [weak self] in
            guard let self, self.state == .connecting || self.state == .handshaking else { return }
            self.handshakeTimer = nil
            self.fail(stage: self.state, reason: "TLS handshake timed out after \(handshakeTimeout)")
        }
        if state == .handshaking && !tls.isServer {
            driveHandshake()
        }
    }

    /// Bytes buffered for output on this connection, outside the streams' own queues.
    var bufferedOutputBytes: Int {
        staging.count + tls.pendingCiphertext + socketRemainder.count - socketRemainderOffset
    }

    // MARK: - Subclass hooks

    /// Called once the TLS handshake has verified the peer; returns the HTTP/2 settings to
    /// send, or nil to close the connection after `handshakeFailed`.
    func handshakeCompleted(peer: PeerIdentity) -> [(id: Int32, value: UInt32)] { [] }
    var isServer: Bool { tls.isServer }
    /// The connection-level receive window to announce once HTTP/2 starts.
    var connectionWindowSize: Int32 { 65_535 }
    /// The keepalive settings: how long a connection with streams may receive nothing before
    /// it sends a PING, and how long that PING may go unacknowledged. Nil turns keepalive off.
    var keepalive: (interval: Duration, timeout: Duration)? { nil }
    /// True to send keepalive PINGs also while no stream is open, so a peer that vanished
    /// between calls does not hold its connection forever either.
    var keepaliveWhenIdle: Bool { false }
    /// Called when connecting or the handshake fails; the connection is closed next.
    func handshakeFailed(stage: State, reason: String) {}
    /// True when no stream is open, so the peer closing now loses nothing.
    var isIdle: Bool { true }
    /// Called after each flush, to let streams whose queues drained write again.
    func didFlush() {}
    /// Called once when the connection closes; `reason` is nil after an orderly end.
    func didClose(reason: String?) {}

    // MARK: - HTTP2SessionDelegate defaults

    func http2BeginHeaders(stream: Int32) {}
    func http2Header(stream: Int32, name: String, value: String) -> Bool { true }
    func http2HeadersComplete(stream: Int32, endStream: Bool) {}
    func http2Data(stream: Int32, bytes: UnsafeRawBufferPointer) {}
    func http2EndStream(stream: Int32) {}
    func http2StreamClosed(stream: Int32, errorCode: UInt32) {}
    func http2GoAway(lastStreamID: Int32, errorCode: UInt32) {}
    func http2SettingsReceived() {}
    func http2SentGoAway(reason: String) {
        sentGoAwayReason = reason
    }
    func http2SentEndStream(stream: Int32) {}
    func http2ReadData(stream: Int32, maxLength: Int) -> HTTP2DataRead { .deferred }
    func http2SendData(stream: Int32, frameHeader: UnsafeRawBufferPointer, length: Int) -> HTTP2SendResult { .failed }

    /// Writes one DATA frame from `queue` through TLS, unless the output buffer is full.
    func sendDataFrame(
        frameHeader: UnsafeRawBufferPointer, length: Int, from queue: inout OutboundQueue
    ) -> HTTP2SendResult {
        guard queue.count >= length else {
            // The queue was emptied after nghttp2 packed this frame; nothing was written yet.
            return .resetStream
        }
        guard bufferedOutputBytes < outputLimit else {
            dataBlocked = true
            return .wouldBlock
        }
        do {
            try stage(frameHeader)
        } catch {
            return .failed
        }
        let sent = queue.consume(length) { piece in
            do {
                try stage(piece)
                return true
            } catch {
                return false
            }
        }
        return sent ? .sent : .failed
    }

    // MARK: - Readiness

    private func handle(_ readiness: Readiness) {
        if state == .connecting {
            finishConnect()
            return
        }
        if readiness.contains(.writable) {
            writeSocket()
            if state == .open {
                flush()
            } else {
                // Still in the handshake: drop writable interest once the socket took it all.
                updateInterest()
            }
        }
        if state != .closed && !readiness.isDisjoint(with: [.readable, .readHangup, .hangup, .error]) {
            readSocket()
        }
    }

    private func finishConnect() {
        let error = Socket.pendingError(fd)
        guard error == 0 else {
            fail(
                stage: .connecting,
                reason: SystemError(errno: error, call: "connect", subject: peerAddress).description, errno: error)
            return
        }
        Socket.setNoDelay(fd)
        state = .handshaking
        driveHandshake()
    }

    /// The errno of a connect failure, for the client's messages.
    private(set) var connectErrno: Int32 = 0

    private func fail(stage: State, reason: String, errno: Int32 = 0) {
        connectErrno = errno
        handshakeFailed(stage: stage, reason: reason)
        // Send the alert that explains the failure to the peer before closing.
        writeSocket()
        close(reason: reason)
    }

    /// Reads what the socket has, at most 16 reads per readiness so one busy connection
    /// cannot starve the others of the batch.
    private func readSocket() {
        for _ in 0..<16 {
            let count: Int?
            do {
                count = try Syscall.callNonBlocking("read", "fd \(fd)") {
                    read(fd, buffers.ciphertext.baseAddress, buffers.ciphertext.count)
                }
            } catch {
                close(reason: "\(error)")
                return
            }
            guard let count else { break }
            if count == 0 {
                if state == .handshaking {
                    fail(stage: .handshaking, reason: "peer closed the connection during the TLS handshake")
                } else {
                    close(reason: isIdle ? nil : "peer closed the connection with calls in flight")
                }
                return
            }

            lastReadAt = MonotonicClock.nanoseconds()
            tls.feedCiphertext(UnsafeRawBufferPointer(rebasing: buffers.ciphertext[0..<count]))
            if state == .handshaking {
                driveHandshake()
            } else if state == .open {
                drainPlaintext()
            }
            if state == .closed { return }
            if count < buffers.ciphertext.count { break }
        }
        flush()
    }

    private func driveHandshake() {
        switch tls.handshake() {
        case .wantRead:
            writeSocket()
            updateInterest()
        case .failed(let reason):
            fail(stage: .handshaking, reason: reason)
        case .complete:
            if let timer = handshakeTimer {
                loop.cancelTimer(timer)
                handshakeTimer = nil
            }
            let identity = tls.peerIdentity ?? PeerIdentity(commonName: nil)
            peer = identity
            state = .open
            let settings = handshakeCompleted(peer: identity)
            guard state == .open else { return }
            do {
                let session = try HTTP2Session(isServer: tls.isServer, delegate: self, settings: settings)
                if connectionWindowSize > 65_535 {
                    try session.setConnectionWindowSize(connectionWindowSize)
                }
                http2 = session
            } catch {
                close(reason: "\(error)")
                return
            }
            if let keepalive {
                scheduleKeepalive(keepalive)
            }
            drainPlaintext()
            flush()
        }
    }

    private func drainPlaintext() {
        while state == .open {
            switch tls.read(into: buffers.plaintext) {
            case .bytes(let count):
                do {
                    try http2?.receive(UnsafeRawBufferPointer(rebasing: buffers.plaintext[0..<count]))
                } catch {
                    close(reason: "HTTP/2 protocol error from \(peerAddress): \(error)")
                    return
                }
            case .wantRead:
                return
            case .closed:
                close(reason: isIdle ? nil : "peer closed the TLS session with calls in flight")
                return
            case .failed(let reason):
                close(reason: "TLS error: \(reason)")
                return
            }
        }
    }

    // MARK: - Output

    /// Flushes after the current batch of events, so many writes in one batch share a flush.
    func scheduleFlush() {
        guard !flushScheduled, state == .open else { return }
        flushScheduled = true
        loop.executeAfterBatch { [weak self] in
            guard let self else { return }
            self.flushScheduled = false
            self.flush()
        }
    }

    /// Moves frames from nghttp2 through TLS to the socket until nghttp2 has nothing more
    /// or the output buffer is full, then closes the connection if HTTP/2 has ended.
    func flush() {
        guard state == .open, let http2 else { return }
        if isFlushing {
            flushAgain = true
            return
        }
        isFlushing = true
        repeat {
            flushAgain = false
            do {
                while bufferedOutputBytes < outputLimit {
                    let output = try http2.nextOutput()
                    if output.isEmpty { break }
                    try stage(output)
                }
                try commitStaging()
            } catch {
                isFlushing = false
                close(reason: "cannot send to \(peerAddress): \(error)")
                return
            }
            writeSocket()
            if state == .closed {
                isFlushing = false
                return
            }
            if dataBlocked && bufferedOutputBytes < outputLimit {
                // The socket took the output, so retry the refused frame now; no readiness
                // event would trigger it.
                dataBlocked = false
                flushAgain = true
            }
            didFlush()
        } while flushAgain && state == .open
        isFlushing = false

        guard state == .open else { return }
        if !http2.wantsRead && !http2.wantsWrite && bufferedOutputBytes == 0 {
            tls.shutdown()
            writeSocket()
            close(reason: sentGoAwayReason)
            return
        }
        updateInterest()
    }

    /// Adds plaintext to the current TLS record, or encrypts large pieces straight from the
    /// caller's memory after the staged bytes.
    func stage(_ bytes: UnsafeRawBufferPointer) throws {
        if bytes.count >= 1024 {
            try commitStaging()
            try tls.write(bytes)
            return
        }
        staging.append(contentsOf: bytes)
        if staging.count >= 16 * 1024 {
            try commitStaging()
        }
    }

    private func commitStaging() throws {
        guard !staging.isEmpty else { return }
        try staging.withUnsafeBytes { try tls.write($0) }
        staging.removeAll(keepingCapacity: staging.capacity <= 32 * 1024)
    }

    /// Writes ciphertext to the socket until it is drained or the socket is full (send(2)
    /// with MSG_NOSIGNAL, so a peer that has gone away is an EPIPE error, not a SIGPIPE).
    private func writeSocket() {
        while state != .closed {
            if socketRemainderOffset < socketRemainder.count {
                let written: Int?
                do {
                    written = try socketRemainder.withUnsafeBytes { buffer in
                        try Syscall.callNonBlocking("send", "fd \(fd)") {
                            send(
                                fd, buffer.baseAddress! + socketRemainderOffset, buffer.count - socketRemainderOffset,
                                Int32(MSG_NOSIGNAL))
                        }
                    }
                } catch {
                    close(reason: "\(error)")
                    return
                }
                guard let written else { break }
                socketRemainderOffset += written
                if socketRemainderOffset == socketRemainder.count {
                    socketRemainder.removeAll()
                    socketRemainderOffset = 0
                }
                continue
            }

            let count = tls.readCiphertext(into: buffers.ciphertext)
            if count == 0 { break }
            let written: Int?
            do {
                written = try Syscall.callNonBlocking("send", "fd \(fd)") {
                    send(fd, buffers.ciphertext.baseAddress, count, Int32(MSG_NOSIGNAL))
                }
            } catch {
                close(reason: "\(error)")
                return
            }
            let sent = written ?? 0
            if sent < count {
                // Keep what the socket refused; this is the only copy of ciphertext we make.
                socketRemainder = Array(UnsafeRawBufferPointer(rebasing: buffers.ciphertext[sent..<count]))
                socketRemainderOffset = 0
                break
            }
        }
    }

    /// Maps what the connection waits for to epoll interest: readable unless the output
    /// buffer is full, writable while ciphertext waits for socket space.
    private func updateInterest() {
        guard state != .closed else { return }
        var wanted: Interest = []
        if state == .connecting {
            wanted = .writable
        } else {
            if bufferedOutputBytes < outputLimit {
                wanted.insert(.readable)
            }
            if socketRemainderOffset < socketRemainder.count || tls.pendingCiphertext > 0 {
                wanted.insert(.writable)
            }
        }
        guard wanted != interest else { return }
        interest = wanted
        do {
            try loop.modify(fd: fd, interest: wanted)
        } catch {
            close(reason: "\(error)")
        }
    }

    /// Sends GOAWAY and a TLS close_notify, writes what the socket takes without waiting,
    /// and closes; for a client that is done with its calls.
    func closeGracefully() {
        guard state == .open, let http2 else {
            close(reason: nil)
            return
        }
        http2.submitGoAway(lastStreamID: 0, errorCode: 0)
        do {
            while true {
                let output = try http2.nextOutput()
                if output.isEmpty { break }
                try stage(output)
            }
            try commitStaging()
        } catch {
            // Closing anyway, so the peer gets an end of file instead of GOAWAY.
        }
        tls.shutdown()
        writeSocket()
        close(reason: nil)
    }

    // MARK: - Keepalive

    /// Checks for signs of life every quarter of the shorter of `interval` and `timeout`. After
    /// `interval` with nothing read, while streams are open or with `keepaliveWhenIdle`, it
    /// sends a PING, and it closes the connection when that PING is not acknowledged within
    /// `timeout` (RFC 9113, section 6.7). A peer that vanished without a FIN or RST would
    /// otherwise hold its calls, and a client waiting on them, forever. The check costs one
    /// timer per open connection.
    private func scheduleKeepalive(_ keepalive: (interval: Duration, timeout: Duration)) {
        let period = max(min(keepalive.interval, keepalive.timeout) / 4, .milliseconds(10))
        keepaliveTimer = loop.scheduleTimer(after: period) { [weak self] in
            guard let self else { return }
            self.keepaliveTimer = nil
            self.checkLiveness(keepalive)
        }
    }

    private func checkLiveness(_ keepalive: (interval: Duration, timeout: Duration)) {
        guard state == .open, let http2 else { return }
        let now = MonotonicClock.nanoseconds()
        if let awaited = awaitedPingAcknowledgements {
            if http2.pingAcknowledgements >= awaited {
                awaitedPingAcknowledgements = nil
            } else if now &- pingSentAt >= UInt64(max(0, GRPCTimeout.nanoseconds(keepalive.timeout))) {
                close(reason: "\(peerAddress) did not acknowledge a PING within \(keepalive.timeout)")
                return
            }
        }
        let quiet = now &- lastReadAt >= UInt64(max(0, GRPCTimeout.nanoseconds(keepalive.interval)))
        if awaitedPingAcknowledgements == nil && (keepaliveWhenIdle || !isIdle) && quiet {
            http2.submitPing()
            awaitedPingAcknowledgements = http2.pingAcknowledgements + 1
            pingSentAt = now
            flush()
        }
        if state == .open {
            scheduleKeepalive(keepalive)
        }
    }

    /// Closes the socket at once; streams still open are reported closed by `didClose`.
    func close(reason: String?) {
        guard state != .closed else { return }
        state = .closed
        if let timer = handshakeTimer {
            loop.cancelTimer(timer)
            handshakeTimer = nil
        }
        if let timer = keepaliveTimer {
            loop.cancelTimer(timer)
            keepaliveTimer = nil
        }
        loop.deregister(fd: fd)
        Syscall.close(fd)
        didClose(reason: reason)
    }
}
