import COpenSSL
import Glibc
import Reactor

/// A certificate and its private key, both PEM-encoded.
public struct IssuedCertificate: Sendable, Equatable {
    public let certificatePEM: String
    public let privateKeyPEM: String

    /// Writes the certificate (mode 0644) and the key (mode 0600) to new files; fails
    /// rather than overwrite an existing file.
    public func write(certificateFile: String, privateKeyFile: String) throws {
        try PEMFile.write(certificatePEM, to: certificateFile, mode: 0o644)
        try PEMFile.write(privateKeyPEM, to: privateKeyFile, mode: 0o600)
    }
}

/// A failure to mint or parse a certificate, with OpenSSL's reasons.
public struct CertificateError: Error, CustomStringConvertible, Sendable {
    public let description: String

    init(_ description: String) {
        self.description = description
    }
}

/// A small X.509 certificate authority for mutual TLS: an EC P-256 key and a self-signed
/// CA certificate that issues server certificates with subject alternative names and
/// client certificates with a roles extension (RFC 5280 profiles, signed with SHA-256).
public struct CertificateAuthority: Sendable {
    /// The OID of the roles extension; its value is a DER UTF8String such as "reader,writer".
    public static let rolesOID = "2.25.7848382311874025851451681593532974798"

    public let certificate: IssuedCertificate
    public var certificatePEM: String { certificate.certificatePEM }

    /// Creates a new CA: a fresh P-256 key and a self-signed certificate with
    /// basicConstraints CA:TRUE and keyUsage keyCertSign, cRLSign.
    public static func create(commonName: String, validDays: Int = 3650) throws -> CertificateAuthority {
        let key = try X509Builder.generateKey()
        defer { EVP_PKEY_free(key) }
        let builder = try X509Builder(subjectCommonName: commonName, publicKey: key, validDays: validDays)
        defer { builder.free() }

        try builder.setIssuer(certificate: builder.certificate)
        try builder.addExtension(NID_basic_constraints, "critical,CA:TRUE", issuer: builder.certificate)
        try builder.addExtension(NID_key_usage, "critical,keyCertSign,cRLSign", issuer: builder.certificate)
        try builder.addExtension(NID_subject_key_identifier, "hash", issuer: builder.certificate)
        try builder.sign(with: key)

        return CertificateAuthority(
            certificate: IssuedCertificate(
                certificatePEM: try builder.certificatePEM(), privateKeyPEM: try X509Builder.pem(privateKey: key)))
    }

    /// Loads an existing CA from its PEM certificate and private key.
    public init(certificatePEM: String, privateKeyPEM: String) throws {
        // Parse both now so a bad file fails here rather than at the first issue.
        let certificate = try X509Builder.parseCertificate(certificatePEM)
        X509_free(certificate)
        let key = try X509Builder.parsePrivateKey(privateKeyPEM)
        EVP_PKEY_free(key)
        self.certificate = IssuedCertificate(certificatePEM: certificatePEM, privateKeyPEM: privateKeyPEM)
    }

    private init(certificate: IssuedCertificate) {
        self.certificate = certificate
    }

    /// Issues a server certificate whose subjectAltName lists `dnsNames` and `ipAddresses`,
    /// with extendedKeyUsage serverAuth.
    public func issueServerCertificate(
        commonName: String, dnsNames: [String] = ["localhost"], ipAddresses: [String] = ["127.0.0.1", "::1"],
        validDays: Int = 825
    ) throws -> IssuedCertificate {
        for address in ipAddresses where !IPAddress.isLiteral(address) {
            throw CertificateError(
                "invalid IP address \"\(address)\" for a subject alternative name: expected e.g. 127.0.0.1 or ::1")
        }
        let names = dnsNames.map { "DNS:\($0)" } + ipAddresses.map { "IP:\($0)" }
        return try issue(commonName: commonName, validDays: validDays) { builder, issuer in
            try builder.addExtension(NID_ext_key_usage, "serverAuth", issuer: issuer)
            if !names.isEmpty {
                try builder.addExtension(NID_subject_alt_name, names.joined(separator: ","), issuer: issuer)
            }
        }
    }

    /// Issues a client certificate with subject CN `commonName`, extendedKeyUsage
    /// clientAuth and, when `roles` is given, the roles extension holding it as a DER UTF8String.
    public func issueClientCertificate(
        commonName: String, roles: String?, validDays: Int = 825
    ) throws -> IssuedCertificate {
        try issue(commonName: commonName, validDays: validDays) { builder, issuer in
            try builder.addExtension(NID_ext_key_usage, "clientAuth", issuer: issuer)
            if let roles {
                try builder.addCustomExtension(oid: CertificateAuthority.rolesOID, der: DER.utf8String(roles))
            }
        }
    }

    private func issue(
        commonName: String, validDays: Int, extensions: (X509Builder, OpaquePointer) throws -> Void
    ) throws -> IssuedCertificate {
        let caCertificate = try X509Builder.parseCertificate(certificate.certificatePEM)
        defer { X509_free(caCertificate) }
        let caKey = try X509Builder.parsePrivateKey(certificate.privateKeyPEM)
        defer { EVP_PKEY_free(caKey) }

        let key = try X509Builder.generateKey()
        defer { EVP_PKEY_free(key) }
        let builder = try X509Builder(subjectCommonName: commonName, publicKey: key, validDays: validDays)
        defer { builder.free() }

        try builder.setIssuer(certificate: caCertificate)
        try builder.addExtension(NID_basic_constraints, "critical,CA:FALSE", issuer: caCertificate)
        try builder.addExtension(NID_key_usage, "critical,digitalSignature", issuer: caCertificate)
        try builder.addExtension(NID_subject_key_identifier, "hash", issuer: caCertificate)
        try builder.addExtension(NID_authority_key_identifier, "keyid:always", issuer: caCertificate)
        try extensions(builder, caCertificate)
        try builder.sign(with: caKey)

        return IssuedCertificate(
            certificatePEM: try builder.certificatePEM(), privateKeyPEM: try X509Builder.pem(privateKey: key))
    }
}

/// Writes PEM files with the permissions set before any byte lands on disk.
public enum PEMFile {
    /// Creates `path` with `mode` (open(2) with O_CREAT | O_EXCL, then fchmod(2) so the
    /// umask cannot widen or narrow it) and writes `contents`; an existing file is an error.
    public static func write(_ contents: String, to path: String, mode: mode_t) throws {
        let fd = try Syscall.call("open", path) { open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode) }
        defer { close(fd) }
        _ = try Syscall.call("fchmod", path) { fchmod(fd, mode) }

        let bytes = Array(contents.utf8)
        var offset = 0
        while offset < bytes.count {
            let written = try bytes.withUnsafeBytes { buffer in
                try Syscall.call("write", path) { Glibc.write(fd, buffer.baseAddress! + offset, buffer.count - offset) }
            }
            offset += written
        }
    }
}

/// One X509 under construction; owns it until `free`.
private final class X509Builder {
    let certificate: OpaquePointer

    static func generateKey() throws -> OpaquePointer {
        OpenSSLErrors.clear()
        guard let key = jw_EVP_EC_gen("P-256") else {
            throw CertificateError("cannot generate an EC P-256 key: \(OpenSSLErrors.drain())")
        }
        return key
    }

    init(subjectCommonName: String, publicKey: OpaquePointer, validDays: Int) throws {
        guard let certificate = X509_new() else {
            throw CertificateError("cannot allocate a certificate: \(OpenSSLErrors.drain())")
        }
        self.certificate = certificate
        guard !subjectCommonName.isEmpty else {
            throw CertificateError("empty common name: give the certificate a CN such as \"alice\"")
        }

        X509_set_version(certificate, 2)
        try setRandomSerial()
        // Backdate a little so a peer whose clock lags slightly still accepts the certificate.
        X509_gmtime_adj(X509_getm_notBefore(certificate), -300)
        X509_gmtime_adj(X509_getm_notAfter(certificate), validDays * 86_400)
        X509_set_pubkey(certificate, publicKey)

        let name = X509_get_subject_name(certificate)
        let bytes = Array(subjectCommonName.utf8)
        guard X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, bytes, Int32(bytes.count), -1, 0) == 1 else {
            throw CertificateError("invalid common name \"\(subjectCommonName)\": \(OpenSSLErrors.drain())")
        }
    }

    func free() {
        X509_free(certificate)
    }

    /// Sets a random positive 127-bit serial number (RFC 5280, section 4.1.2.2).
    private func setRandomSerial() throws {
        var bytes = [UInt8](repeating: 0, count: 16)
        guard RAND_bytes(&bytes, Int32(bytes.count)) == 1 else {
            throw CertificateError("cannot draw a random serial number: \(OpenSSLErrors.drain())")
        }
        bytes[0] &= 0x7F
        guard let number = BN_bin2bn(bytes, Int32(bytes.count), nil) else {
            throw CertificateError("cannot build a serial number: \(OpenSSLErrors.drain())")
        }
        defer { BN_free(number) }
        BN_to_ASN1_INTEGER(number, X509_get_serialNumber(certificate))
    }

    func setIssuer(certificate issuer: OpaquePointer) throws {
        guard X509_set_issuer_name(certificate, X509_get_subject_name(issuer)) == 1 else {
            throw CertificateError("cannot set the issuer name: \(OpenSSLErrors.drain())")
        }
    }

    /// Adds a standard extension from its OpenSSL configuration text (x509v3_config(5)).
    func addExtension(_ nid: Int32, _ value: String, issuer: OpaquePointer) throws {
        var context = X509V3_CTX()
        X509V3_set_ctx(&context, issuer, certificate, nil, nil, 0)
        guard let ext = X509V3_EXT_conf_nid(nil, &context, nid, value) else {
            let name = String(cString: OBJ_nid2sn(nid))
            throw CertificateError("cannot add extension \(name)=\(value): \(OpenSSLErrors.drain())")
        }
        defer { X509_EXTENSION_free(ext) }
        X509_add_ext(certificate, ext, -1)
    }

    /// Adds a non-critical extension with the dotted `oid` whose extnValue is `der`.
    func addCustomExtension(oid: String, der: [UInt8]) throws {
        guard let object = OBJ_txt2obj(oid, 1) else {
            throw CertificateError("invalid extension OID \"\(oid)\": \(OpenSSLErrors.drain())")
        }
        defer { ASN1_OBJECT_free(object) }
        guard let value = ASN1_OCTET_STRING_new() else {
            throw CertificateError("cannot allocate an extension value: \(OpenSSLErrors.drain())")
        }
        defer { ASN1_OCTET_STRING_free(value) }
        ASN1_OCTET_STRING_set(value, der, Int32(der.count))
        guard let ext = X509_EXTENSION_create_by_OBJ(nil, object, 0, value) else {
            throw CertificateError("cannot create extension \(oid): \(OpenSSLErrors.drain())")
        }
        defer { X509_EXTENSION_free(ext) }
        X509_add_ext(certificate, ext, -1)
    }

    func sign(with key: OpaquePointer) throws {
        guard X509_sign(certificate, key, EVP_sha256()) > 0 else {
            throw CertificateError("cannot sign the certificate: \(OpenSSLErrors.drain())")
        }
    }

    func certificatePEM() throws -> String {
        try X509Builder.withMemoryBIO { bio in PEM_write_bio_X509(bio, certificate) }
    }

    static func pem(privateKey: OpaquePointer) throws -> String {
        // PKCS#8 "PRIVATE KEY" PEM, unencrypted: the file mode protects it.
        try withMemoryBIO { bio in PEM_write_bio_PrivateKey(bio, privateKey, nil, nil, 0, nil, nil) }
    }

    static func parseCertificate(_ pem: String) throws -> OpaquePointer {
        let bytes = Array(pem.utf8)
        guard let bio = BIO_new_mem_buf(bytes, Int32(bytes.count)) else {
            throw CertificateError("cannot allocate a memory BIO: \(OpenSSLErrors.drain())")
        }
        defer { BIO_free(bio) }
        guard let certificate = PEM_read_bio_X509(bio, nil, nil, nil) else {
            throw CertificateError("invalid CA certificate: \(OpenSSLErrors.drain()): expected a PEM CERTIFICATE block")
        }
        return certificate
    }

    static func parsePrivateKey(_ pem: String) throws -> OpaquePointer {
        let bytes = Array(pem.utf8)
        guard let bio = BIO_new_mem_buf(bytes, Int32(bytes.count)) else {
            throw CertificateError("cannot allocate a memory BIO: \(OpenSSLErrors.drain())")
        }
        defer { BIO_free(bio) }
        guard let key = PEM_read_bio_PrivateKey(bio, nil, nil, nil) else {
            throw CertificateError(
                "invalid CA private key: \(OpenSSLErrors.drain()): expected an unencrypted PEM private key")
        }
        return key
    }

    private static func withMemoryBIO(_ write: (OpaquePointer) -> Int32) throws -> String {
        guard let bio = BIO_new(BIO_s_mem()) else {
            throw CertificateError("cannot allocate a memory BIO: \(OpenSSLErrors.drain())")
        }
        defer { BIO_free(bio) }
        guard write(bio) == 1 else {
            throw CertificateError("cannot encode PEM: \(OpenSSLErrors.drain())")
        }
        var pointer: UnsafeMutablePointer<CChar>?
        let length = BIO_ctrl(bio, BIO_CTRL_INFO, 0, &pointer)
        guard length > 0, let pointer else { return "" }
        return pointer.withMemoryRebound(to: UInt8.self, capacity: length) {
            String(decoding: UnsafeBufferPointer(start: $0, count: length), as: UTF8.self)
        }
    }
}
