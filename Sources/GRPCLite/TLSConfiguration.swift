/// The PEM files for mutual TLS: the CA bundle that verifies the peer, our certificate
/// chain and its private key.
public struct TLSConfiguration: Sendable, Equatable {
    /// The CA bundle that peer certificates must chain to.
    public var caFile: String
    /// Our certificate, optionally followed by intermediates.
    public var certificateFile: String
    /// The private key of `certificateFile`.
    public var privateKeyFile: String
    /// Client only: the name or IP address the server certificate must carry; nil uses
    /// the host passed to the client.
    public var serverName: String?
    /// Server only: how long a connection may take to complete its TLS handshake.
    public var handshakeTimeout: Duration

    public init(
        caFile: String, certificateFile: String, privateKeyFile: String, serverName: String? = nil,
        handshakeTimeout: Duration = .seconds(10)
    ) {
        self.caFile = caFile
        self.certificateFile = certificateFile
        self.privateKeyFile = privateKeyFile
        self.serverName = serverName
        self.handshakeTimeout = handshakeTimeout
    }
}

/// A failure to load TLS material or to set up an OpenSSL object, with OpenSSL's reasons.
public struct TLSError: Error, CustomStringConvertible, Sendable {
    public let description: String

    init(_ description: String) {
        self.description = description
    }
}
