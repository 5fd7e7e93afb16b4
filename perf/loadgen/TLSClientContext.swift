import COpenSSL
import Glibc

/// A failure of the load generator's own setup or transport, with the value and the fix.
struct LoadError: Error, CustomStringConvertible {
    let description: String

    init(_ description: String) {
        self.description = description
    }
}

/// The OpenSSL client settings shared by every connection of one benchmark run: TLS 1.3
/// only, the server verified against `caFile` for the name "localhost", and the client
/// certificate presented for mutual authentication (SSL_CTX_new(3), SSL_CTX_set_verify(3)).
final class TLSClientContext {
    let context: OpaquePointer
    let serverName: String

    /// Loads the CA, certificate and key files. `alpn` is the protocol offered in the
    /// handshake: "h2" for HTTP/2 servers, nil for Redis, which does not use ALPN.
    init(
        caFile: String, certificateFile: String, privateKeyFile: String, alpn: String?, serverName: String = "localhost"
    ) throws {
        guard let context = SSL_CTX_new(TLS_client_method()) else {
            throw LoadError("SSL_CTX_new failed: \(Self.openSSLErrors())")
        }
        self.context = context
        self.serverName = serverName

        _ = SSL_CTX_ctrl(context, SSL_CTRL_SET_MIN_PROTO_VERSION, Int(TLS1_3_VERSION), nil)
        // Partial writes let a connection hand OpenSSL its whole output buffer and keep the
        // rest when the socket is full. The moving buffer flag allows the retry from a
        // buffer that has been reallocated in between (SSL_CTX_set_mode(3)).
        _ = SSL_CTX_ctrl(
            context, SSL_CTRL_MODE, Int(SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER), nil)
        SSL_CTX_set_verify(context, SSL_VERIFY_PEER, nil)

        guard SSL_CTX_load_verify_locations(context, caFile, nil) == 1 else {
            throw LoadError(
                "cannot load CA file \(caFile): \(Self.openSSLErrors()): pass the CA that signed the server certificate"
            )
        }
        guard SSL_CTX_use_certificate_chain_file(context, certificateFile) == 1 else {
            throw LoadError("cannot load certificate \(certificateFile): \(Self.openSSLErrors())")
        }
        guard SSL_CTX_use_PrivateKey_file(context, privateKeyFile, SSL_FILETYPE_PEM) == 1 else {
            throw LoadError("cannot load private key \(privateKeyFile): \(Self.openSSLErrors())")
        }
        if let alpn {
            // ALPN wire format: each protocol name prefixed by its length (RFC 7301, section 3.1).
            let wire = [UInt8(alpn.utf8.count)] + Array(alpn.utf8)
            guard SSL_CTX_set_alpn_protos(context, wire, UInt32(wire.count)) == 0 else {
                throw LoadError("cannot set ALPN \(alpn): \(Self.openSSLErrors())")
            }
        }
    }

    deinit {
        SSL_CTX_free(context)
    }

    /// Creates the `SSL` object for one connection on `fd`, with SNI and host name checking.
    func makeSession(fd: Int32) throws -> OpaquePointer {
        guard let ssl = SSL_new(context) else {
            throw LoadError("SSL_new failed: \(Self.openSSLErrors())")
        }
        _ = serverName.withCString { name in
            SSL_ctrl(
                ssl, SSL_CTRL_SET_TLSEXT_HOSTNAME, Int(TLSEXT_NAMETYPE_host_name),
                UnsafeMutableRawPointer(mutating: name))
        }
        guard SSL_set1_host(ssl, serverName) == 1, SSL_set_fd(ssl, fd) == 1 else {
            SSL_free(ssl)
            throw LoadError("cannot set up TLS on fd \(fd): \(Self.openSSLErrors())")
        }
        SSL_set_connect_state(ssl)
        return ssl
    }

    /// Drains OpenSSL's thread-local error queue into one line (ERR_get_error(3)).
    static func openSSLErrors() -> String {
        var parts: [String] = []
        while true {
            let code = ERR_get_error()
            if code == 0 { break }
            var buffer = [CChar](repeating: 0, count: 256)
            ERR_error_string_n(code, &buffer, buffer.count)
            parts.append(String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
        }
        return parts.isEmpty ? "no OpenSSL error recorded" : parts.joined(separator: "; ")
    }
}
