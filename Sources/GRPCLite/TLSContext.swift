import COpenSSL
import Glibc
import Reactor

/// An OpenSSL SSL_CTX set up for this protocol: TLS 1.3 only, the peer's certificate
/// required and verified against the CA bundle, ALPN `h2` required.
///
/// Each connection's SSL holds its own reference to the SSL_CTX it was made from, so
/// replacing a server's context (certificate reload) leaves open connections untouched.
final class TLSContext {
    let context: OpaquePointer
    let isServer: Bool

    /// Loads the files of `configuration` into a new SSL_CTX (SSL_CTX_new(3),
    /// SSL_CTX_use_certificate_chain_file(3), SSL_CTX_load_verify_locations(3)).
    init(configuration: TLSConfiguration, isServer: Bool) throws(TLSError) {
        OpenSSLErrors.clear()
        guard let context = SSL_CTX_new(isServer ? TLS_server_method() : TLS_client_method()) else {
            throw TLSError("cannot create an OpenSSL context: \(OpenSSLErrors.drain())")
        }
        self.context = context
        self.isServer = isServer

        // TLS 1.3 only: a peer offering TLS 1.2 or older fails the handshake with a
        // protocol_version alert (RFC 8446, section 4.2.1).
        guard jw_SSL_CTX_set_min_proto_version(context, TLS1_3_VERSION) == 1,
            jw_SSL_CTX_set_max_proto_version(context, TLS1_3_VERSION) == 1
        else {
            throw TLSError("cannot restrict the OpenSSL context to TLS 1.3: \(OpenSSLErrors.drain())")
        }

        try TLSContext.loadIdentity(context, configuration)
        try TLSContext.loadTrust(context, configuration, isServer: isServer)

        if isServer {
            SSL_CTX_set_alpn_select_cb(context, selectH2, nil)
            // No session tickets: every connection presents and verifies its client certificate.
            SSL_CTX_set_num_tickets(context, 0)
            _ = jw_SSL_CTX_set_session_cache_mode(context, Int(SSL_SESS_CACHE_OFF))
        } else {
            let protocols: [UInt8] = [2, UInt8(ascii: "h"), UInt8(ascii: "2")]
            // SSL_CTX_set_alpn_protos returns 0 on success, unlike most OpenSSL calls.
            guard SSL_CTX_set_alpn_protos(context, protocols, UInt32(protocols.count)) == 0 else {
                throw TLSError("cannot set ALPN protocols: \(OpenSSLErrors.drain())")
            }
        }
    }

    deinit {
        SSL_CTX_free(context)
    }

    /// Opens `path` once to report a missing or unreadable file in plain words; OpenSSL's
    /// own error for it reads "system lib".
    private static func checkReadable(_ path: String, _ kind: String) throws(TLSError) {
        do {
            let fd = try Syscall.call("open", path) { open(path, O_RDONLY | O_CLOEXEC) }
            Syscall.close(fd)
        } catch {
            throw TLSError("cannot read \(kind) \"\(path)\": \(error.reason)")
        }
    }

    private static func loadIdentity(_ context: OpaquePointer, _ configuration: TLSConfiguration) throws(TLSError) {
        try checkReadable(configuration.certificateFile, "certificate")
        try checkReadable(configuration.privateKeyFile, "private key")
        guard SSL_CTX_use_certificate_chain_file(context, configuration.certificateFile) == 1 else {
            throw TLSError(
                "cannot load certificate \"\(configuration.certificateFile)\": \(OpenSSLErrors.drain()): expected a PEM certificate chain"
            )
        }
        guard SSL_CTX_use_PrivateKey_file(context, configuration.privateKeyFile, SSL_FILETYPE_PEM) == 1 else {
            let reason = OpenSSLErrors.drain()
            if reason.contains("key values mismatch") {
                throw TLSError(
                    "private key \"\(configuration.privateKeyFile)\" does not match certificate \"\(configuration.certificateFile)\": \(reason)"
                )
            }
            throw TLSError(
                "cannot load private key \"\(configuration.privateKeyFile)\": \(reason): expected an unencrypted PEM private key"
            )
        }
        guard SSL_CTX_check_private_key(context) == 1 else {
            throw TLSError(
                "private key \"\(configuration.privateKeyFile)\" does not match certificate \"\(configuration.certificateFile)\": \(OpenSSLErrors.drain())"
            )
        }
    }

    private static func loadTrust(
        _ context: OpaquePointer, _ configuration: TLSConfiguration, isServer: Bool
    ) throws(TLSError) {
        try checkReadable(configuration.caFile, "CA bundle")
        guard SSL_CTX_load_verify_locations(context, configuration.caFile, nil) == 1 else {
            throw TLSError(
                "cannot load CA bundle \"\(configuration.caFile)\": \(OpenSSLErrors.drain()): expected PEM certificates"
            )
        }
        if isServer {
            // Advertise the accepted CAs in the CertificateRequest so clients pick the right certificate.
            if let names = SSL_load_client_CA_file(configuration.caFile) {
                SSL_CTX_set_client_CA_list(context, names)
            }
            SSL_CTX_set_verify(context, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nil)
        } else {
            SSL_CTX_set_verify(context, SSL_VERIFY_PEER, nil)
        }
    }
}

/// Selects `h2` from the client's ALPN list, or fails the handshake with a
/// no_application_protocol alert (RFC 7301, section 3.2) when the list lacks it.
private func selectH2(
    _ ssl: OpaquePointer?, _ out: UnsafeMutablePointer<UnsafePointer<UInt8>?>?,
    _ outLength: UnsafeMutablePointer<UInt8>?,
    _ input: UnsafePointer<UInt8>?, _ inputLength: UInt32, _ argument: UnsafeMutableRawPointer?
) -> Int32 {
    guard let input, let out, let outLength else { return SSL_TLSEXT_ERR_ALERT_FATAL }
    var index = 0
    while index < Int(inputLength) {
        let length = Int(input[index])
        let start = index + 1
        if length == 2, start + 2 <= Int(inputLength), input[start] == UInt8(ascii: "h"),
            input[start + 1] == UInt8(ascii: "2")
        {
            out.pointee = input + start
            outLength.pointee = 2
            return SSL_TLSEXT_ERR_OK
        }
        index = start + length
    }
    return SSL_TLSEXT_ERR_ALERT_FATAL
}
