import COpenSSL
import Glibc

/// One TLS connection as a bytes-in / bytes-out state machine: ciphertext from the socket
/// goes in through `feedCiphertext`, ciphertext for the socket comes out of
/// `readCiphertext`, and no file descriptor is touched here.
///
/// The SSL reads from and writes to two memory BIOs (BIO_s_mem(3)). The output BIO grows
/// without bound, so `write` never returns want-write: the owner bounds it by watching
/// `pendingCiphertext` before producing more.
final class TLSSession {
    enum Progress: Equatable {
        case complete
        /// The SSL needs more ciphertext from the peer: wait for the socket to be readable.
        case wantRead
        case failed(String)
    }

    enum ReadResult: Equatable {
        case bytes(Int)
        case wantRead
        /// The peer sent close_notify.
        case closed
        case failed(String)
    }

    private let ssl: OpaquePointer
    private let inputBIO: OpaquePointer
    private let outputBIO: OpaquePointer
    let isServer: Bool
    private(set) var isHandshakeComplete = false

    /// Creates the SSL for one connection from `context`. A client passes the name or
    /// IP address the server certificate must match (SSL_set1_host(3), X509_VERIFY_PARAM_set1_ip_asc(3)).
    init(context: TLSContext, serverName: String? = nil) throws(TLSError) {
        OpenSSLErrors.clear()
        guard let ssl = SSL_new(context.context) else {
            throw TLSError("cannot create an OpenSSL connection: \(OpenSSLErrors.drain())")
        }
        guard let inputBIO = BIO_new(BIO_s_mem()), let outputBIO = BIO_new(BIO_s_mem()) else {
            SSL_free(ssl)
            throw TLSError("cannot create OpenSSL memory BIOs: \(OpenSSLErrors.drain())")
        }
        // An empty input BIO reports "retry" rather than end of file, which SSL maps to want-read.
        _ = jw_BIO_set_mem_eof_return(inputBIO, -1)
        SSL_set_bio(ssl, inputBIO, outputBIO)
        SSL_set_verify(ssl, SSL_get_verify_mode(ssl), recordRejectedCertificate)
        self.ssl = ssl
        self.inputBIO = inputBIO
        self.outputBIO = outputBIO
        self.isServer = context.isServer

        // The verify callback finds this session through the SSL's application data slot.
        SSL_set_ex_data(ssl, 0, Unmanaged.passUnretained(self).toOpaque())
        if context.isServer {
            SSL_set_accept_state(ssl)
        } else {
            SSL_set_connect_state(ssl)
            if let serverName {
                try TLSSession.expectServerName(ssl, serverName)
            }
        }
    }

    deinit {
        // SSL_free frees both BIOs, which SSL_set_bio handed to the SSL.
        SSL_free(ssl)
    }

    private static func expectServerName(_ ssl: OpaquePointer, _ name: String) throws(TLSError) {
        let param = SSL_get0_param(ssl)
        if IPAddress.isLiteral(name) {
            guard X509_VERIFY_PARAM_set1_ip_asc(param, name) == 1 else {
                throw TLSError("invalid server IP address \"\(name)\": \(OpenSSLErrors.drain())")
            }
        } else {
            guard SSL_set1_host(ssl, name) == 1 else {
                throw TLSError("invalid server name \"\(name)\": \(OpenSSLErrors.drain())")
            }
            // SNI carries host names only (RFC 6066, section 3), never IP literals.
            _ = jw_SSL_set_tlsext_host_name(ssl, name)
        }
    }

    /// Hands ciphertext received from the peer to the SSL (BIO_write(3) on the input BIO).
    func feedCiphertext(_ bytes: UnsafeRawBufferPointer) {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return }
        // A memory BIO accepts everything; it fails only when out of memory.
        let written = BIO_write(inputBIO, base, Int32(bytes.count))
        precondition(written == Int32(bytes.count), "BIO_write to a memory BIO failed: out of memory")
    }

    /// Ciphertext waiting to go to the socket, in bytes.
    var pendingCiphertext: Int { jw_BIO_pending(outputBIO) }

    /// Moves up to `buffer.count` bytes of ciphertext for the socket into `buffer`.
    func readCiphertext(into buffer: UnsafeMutableRawBufferPointer) -> Int {
        guard let base = buffer.baseAddress, pendingCiphertext > 0 else { return 0 }
        let count = BIO_read(outputBIO, base, Int32(min(buffer.count, Int(Int32.max))))
        return max(0, Int(count))
    }

    /// Advances the handshake with the ciphertext fed so far (SSL_do_handshake(3)).
    func handshake() -> Progress {
        OpenSSLErrors.clear()
        let result = SSL_do_handshake(ssl)
        if result == 1 {
            isHandshakeComplete = true
            if alpnProtocol != "h2" {
                return .failed("the peer did not negotiate ALPN protocol h2")
            }
            return .complete
        }
        switch SSL_get_error(ssl, result) {
        case SSL_ERROR_WANT_READ, SSL_ERROR_WANT_WRITE:
            // With memory BIOs want-write cannot happen; both mean "wait for the peer".
            return .wantRead
        default:
            return .failed(failureReason())
        }
    }

    /// Decrypts application data into `buffer` (SSL_read(3)).
    func read(into buffer: UnsafeMutableRawBufferPointer) -> ReadResult {
        OpenSSLErrors.clear()
        let result = SSL_read(ssl, buffer.baseAddress, Int32(min(buffer.count, Int(Int32.max))))
        if result > 0 {
            return .bytes(Int(result))
        }
        switch SSL_get_error(ssl, result) {
        case SSL_ERROR_WANT_READ, SSL_ERROR_WANT_WRITE:
            return .wantRead
        case SSL_ERROR_ZERO_RETURN:
            return .closed
        default:
            return .failed(failureReason())
        }
    }

    /// Encrypts all of `bytes` into the output BIO (SSL_write(3)); each call makes one or
    /// more TLS records straight from the caller's memory.
    func write(_ bytes: UnsafeRawBufferPointer) throws(TLSError) {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return }
        OpenSSLErrors.clear()
        let result = SSL_write(ssl, base, Int32(bytes.count))
        guard result == Int32(bytes.count) else {
            throw TLSError("TLS write failed: \(failureReason())")
        }
    }

    /// Queues a close_notify alert (SSL_shutdown(3)); the caller then flushes the output.
    func shutdown() {
        guard isHandshakeComplete else { return }
        OpenSSLErrors.clear()
        _ = SSL_shutdown(ssl)
        OpenSSLErrors.clear()
    }

    /// The protocol ALPN selected, or nil before the handshake or when none was.
    var alpnProtocol: String? {
        var data: UnsafePointer<UInt8>?
        var length: UInt32 = 0
        SSL_get0_alpn_selected(ssl, &data, &length)
        guard let data, length > 0 else { return nil }
        return String(decoding: UnsafeBufferPointer(start: data, count: Int(length)), as: UTF8.self)
    }

    /// The verified identity of the peer, or nil before the handshake completes.
    var peerIdentity: PeerIdentity? {
        guard isHandshakeComplete, let certificate = SSL_get1_peer_certificate(ssl) else { return nil }
        defer { X509_free(certificate) }
        return PeerIdentity(certificate: certificate)
    }

    /// The identity in the certificate the peer presented, verified or not; for logging
    /// refused connections.
    var presentedIdentity: PeerIdentity? {
        if let rejectedIdentity { return rejectedIdentity }
        guard let certificate = SSL_get1_peer_certificate(ssl) else { return nil }
        defer { X509_free(certificate) }
        return PeerIdentity(certificate: certificate)
    }

    /// The peer's leaf certificate when verification rejected it; OpenSSL keeps no peer
    /// certificate after a failed verification, so the verify callback copies it out.
    fileprivate var rejectedIdentity: PeerIdentity?

    /// The X.509 verification result as text, or nil when the peer's chain verified
    /// (SSL_get_verify_result(3)).
    var verificationFailure: String? {
        let result = SSL_get_verify_result(ssl)
        guard result != X509_V_OK else { return nil }
        return String(cString: X509_verify_cert_error_string(result))
    }

    private func failureReason() -> String {
        let reasons = OpenSSLErrors.drain(fallback: "connection closed during the TLS exchange")
        if let verification = verificationFailure {
            let whose = isServer ? "client certificate" : "server certificate"
            return "\(whose) verification failed: \(verification) (\(reasons))"
        }
        return reasons
    }
}

/// Recognises IPv4 and IPv6 literals with inet_pton(3).
enum IPAddress {
    static func isLiteral(_ text: String) -> Bool {
        var buffer = [UInt8](repeating: 0, count: 16)
        return inet_pton(AF_INET, text, &buffer) == 1 || inet_pton(AF_INET6, text, &buffer) == 1
    }
}

/// Keeps OpenSSL's verification result and, on failure, copies the identity of the peer's
/// leaf certificate into its session for the refusal log (SSL_set_verify(3)).
private func recordRejectedCertificate(_ preverifyOK: Int32, _ store: OpaquePointer?) -> Int32 {
    guard preverifyOK == 0, let store,
        let ssl = X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx()),
        let userData = SSL_get_ex_data(OpaquePointer(ssl), 0),
        let leaf = X509_STORE_CTX_get0_cert(store)
    else { return preverifyOK }
    let session = Unmanaged<TLSSession>.fromOpaque(userData).takeUnretainedValue()
    if session.rejectedIdentity == nil {
        session.rejectedIdentity = PeerIdentity(certificate: leaf)
    }
    return preverifyOK
}
