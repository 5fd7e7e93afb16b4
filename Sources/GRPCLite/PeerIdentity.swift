import COpenSSL

/// The verified certificate of the peer of a TLS connection: its subject common name and
/// its extensions by dotted OID. Copied out of the X509 at the end of the handshake, so it
/// outlives the connection.
public struct PeerIdentity: Sendable, Equatable, CustomStringConvertible {
    /// The last CN attribute of the subject, or nil when there is none.
    public let commonName: String?
    /// The subject as one line in RFC 2253 form, e.g. `CN=alice,O=example`.
    public let subject: String
    /// DER contents of each extension's extnValue OCTET STRING, keyed by dotted OID.
    let extensions: [String: [UInt8]]

    public init(commonName: String?, subject: String = "", extensions: [String: [UInt8]] = [:]) {
        self.commonName = commonName
        self.subject = subject
        self.extensions = extensions
    }

    public var description: String { commonName ?? (subject.isEmpty ? "(no certificate)" : subject) }

    /// Returns the DER value of the extension with the dotted `oid`, or nil when absent.
    public func extensionValue(oid: String) -> [UInt8]? {
        extensions[oid]
    }

    /// Returns the extension with the dotted `oid` decoded as a DER UTF8String (tag 12),
    /// or nil when absent or of another type.
    public func utf8StringExtension(oid: String) -> String? {
        guard let der = extensions[oid] else { return nil }
        return DER.utf8String(der)
    }

    /// Extracts the identity of `certificate`; the caller keeps ownership of it.
    init(certificate: OpaquePointer) {
        let name = X509_get_subject_name(certificate)
        commonName = PeerIdentity.lastCommonName(name)
        subject = PeerIdentity.oneLine(name)

        var extensions: [String: [UInt8]] = [:]
        for index in 0..<X509_get_ext_count(certificate) {
            guard let ext = X509_get_ext(certificate, index),
                let object = X509_EXTENSION_get_object(ext),
                let data = X509_EXTENSION_get_data(ext)
            else { continue }
            var oidBuffer = [CChar](repeating: 0, count: 256)
            // no_name = 1 gives the numeric form, which is what callers look up.
            let length = OBJ_obj2txt(&oidBuffer, Int32(oidBuffer.count), object, 1)
            guard length > 0, Int(length) < oidBuffer.count else { continue }
            let oid = String(decoding: oidBuffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            let count = Int(ASN1_STRING_length(data))
            if let bytes = ASN1_STRING_get0_data(data) {
                extensions[oid] = Array(UnsafeBufferPointer(start: bytes, count: count))
            }
        }
        self.extensions = extensions
    }

    private static func lastCommonName(_ name: OpaquePointer?) -> String? {
        guard let name else { return nil }
        var lastIndex: Int32 = -1
        var index = X509_NAME_get_index_by_NID(name, NID_commonName, -1)
        while index >= 0 {
            lastIndex = index
            index = X509_NAME_get_index_by_NID(name, NID_commonName, index)
        }
        guard lastIndex >= 0, let entry = X509_NAME_get_entry(name, lastIndex),
            let data = X509_NAME_ENTRY_get_data(entry)
        else { return nil }

        var utf8: UnsafeMutablePointer<UInt8>?
        let length = ASN1_STRING_to_UTF8(&utf8, data)
        guard length >= 0, let utf8 else { return nil }
        defer { CRYPTO_free(utf8, #fileID, #line) }
        return String(decoding: UnsafeBufferPointer(start: utf8, count: Int(length)), as: UTF8.self)
    }

    private static func oneLine(_ name: OpaquePointer?) -> String {
        guard let name, let bio = BIO_new(BIO_s_mem()) else { return "" }
        defer { BIO_free(bio) }
        guard X509_NAME_print_ex(bio, name, 0, jw_XN_FLAG_RFC2253()) >= 0 else { return "" }
        var pointer: UnsafeMutablePointer<CChar>?
        let length = BIO_ctrl(bio, BIO_CTRL_INFO, 0, &pointer)
        guard length > 0, let pointer else { return "" }
        return pointer.withMemoryRebound(to: UInt8.self, capacity: length) {
            String(decoding: UnsafeBufferPointer(start: $0, count: length), as: UTF8.self)
        }
    }
}

/// The few DER encodings this module reads and writes (ITU-T X.690).
enum DER {
    static let utf8StringTag: UInt8 = 0x0C

    /// Decodes a DER UTF8String, or returns nil for any other encoding.
    static func utf8String(_ der: [UInt8]) -> String? {
        guard der.count >= 2, der[0] == utf8StringTag else { return nil }
        var length = 0
        var offset = 2
        if der[1] < 0x80 {
            length = Int(der[1])
        } else {
            let lengthBytes = Int(der[1] & 0x7F)
            guard lengthBytes >= 1, lengthBytes <= 4, der.count >= 2 + lengthBytes else { return nil }
            for index in 0..<lengthBytes {
                length = length << 8 | Int(der[2 + index])
            }
            offset = 2 + lengthBytes
        }
        guard der.count == offset + length else { return nil }
        return String(validating: der[offset...], as: UTF8.self)
    }

    /// Encodes `value` as a DER UTF8String.
    static func utf8String(_ value: String) -> [UInt8] {
        let bytes = Array(value.utf8)
        var out: [UInt8] = [utf8StringTag]
        if bytes.count < 0x80 {
            out.append(UInt8(bytes.count))
        } else {
            var length = bytes.count
            var lengthBytes: [UInt8] = []
            while length > 0 {
                lengthBytes.insert(UInt8(length & 0xFF), at: 0)
                length >>= 8
            }
            out.append(0x80 | UInt8(lengthBytes.count))
            out.append(contentsOf: lengthBytes)
        }
        out.append(contentsOf: bytes)
        return out
    }
}
