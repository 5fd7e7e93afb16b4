/// The outcome of a gRPC call: a code and a human-readable message, sent in the
/// `grpc-status` and `grpc-message` trailers (gRPC over HTTP/2 protocol, "Responses").
///
/// `Status` is also the error that client calls throw and that interceptors and
/// handlers return to reject a call.
public struct Status: Error, Equatable, Sendable, CustomStringConvertible {
    public var code: Code
    public var message: String

    public init(_ code: Code, _ message: String = "") {
        self.code = code
        self.message = message
    }

    public init(code: Code, message: String = "") {
        self.init(code, message)
    }

    public static let ok = Status(.ok)

    public var isOK: Bool { code == .ok }

    public var description: String {
        message.isEmpty ? "\(code)" : "\(code): \(message)"
    }

    /// A gRPC status code, one of the 17 defined in grpc/doc/statuscodes.md.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        public let rawValue: Int

        private init(_ rawValue: Int) {
            self.rawValue = rawValue
        }

        /// Returns the code for a wire value, or nil for a value outside 0...16.
        public init?(rawValue: Int) {
            guard (0...16).contains(rawValue) else { return nil }
            self.rawValue = rawValue
        }

        public static let ok = Code(0)
        public static let cancelled = Code(1)
        public static let unknown = Code(2)
        public static let invalidArgument = Code(3)
        public static let deadlineExceeded = Code(4)
        public static let notFound = Code(5)
        public static let alreadyExists = Code(6)
        public static let permissionDenied = Code(7)
        public static let resourceExhausted = Code(8)
        public static let failedPrecondition = Code(9)
        public static let aborted = Code(10)
        public static let outOfRange = Code(11)
        public static let unimplemented = Code(12)
        public static let `internal` = Code(13)
        public static let unavailable = Code(14)
        public static let dataLoss = Code(15)
        public static let unauthenticated = Code(16)

        public static let allCases: [Code] = (0...16).map { Code($0) }

        private static let names = [
            "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
            "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
            "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS",
            "UNAUTHENTICATED",
        ]

        /// The canonical upper-case name, e.g. `DEADLINE_EXCEEDED`.
        public var name: String { Code.names[rawValue] }

        public var description: String { name }
    }
}

extension Status {
    /// Parses a `grpc-status` trailer value; a missing or malformed value is UNKNOWN, as the
    /// protocol requires of clients. The value is `1*DIGIT`, so signs such as "+0" or "-0",
    /// which `Int.init` accepts, are malformed.
    static func parse(statusValue: String?, messageValue: String?) -> Status {
        let message = messageValue.map(PercentEncoding.decode) ?? ""
        guard let statusValue, !statusValue.isEmpty,
            statusValue.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }),
            let raw = Int(statusValue), let code = Code(rawValue: raw)
        else {
            let shown = statusValue.map { "\"\($0)\"" } ?? "none"
            return Status(
                .unknown,
                "invalid grpc-status \(shown) in the response trailers" + (message.isEmpty ? "" : ": \(message)"))
        }
        return Status(code, message)
    }

    /// Maps an HTTP status of a response that carried no grpc-status, as in grpc/doc/http-grpc-status-mapping.md.
    static func fromHTTPStatus(_ httpStatus: Int) -> Status {
        let code: Code
        switch httpStatus {
        case 400: code = .internal
        case 401: code = .unauthenticated
        case 403: code = .permissionDenied
        case 404: code = .unimplemented
        case 429, 502, 503, 504: code = .unavailable
        default: code = .unknown
        }
        return Status(code, "server returned HTTP status \(httpStatus) without a grpc-status")
    }
}

/// The percent-encoding of `grpc-message`: bytes outside printable ASCII (0x20...0x7E) and `%`
/// itself become `%XX` of the UTF-8 bytes (gRPC over HTTP/2 protocol, "Responses").
enum PercentEncoding {
    /// The marker that ends a message cut by `encode(_:maxBytes:)`.
    static let truncationMarker = "...(truncated)"

    /// Encodes `message`. An encoding that would pass `maxBytes` is cut at a character boundary
    /// and ends with `truncationMarker`, so the result is never longer than `maxBytes`.
    static func encode(_ message: String, maxBytes: Int = .max) -> String {
        var out = ""
        out.reserveCapacity(min(message.utf8.count, maxBytes))
        let limit = maxBytes - truncationMarker.utf8.count
        for character in message {
            var piece = ""
            for byte in character.utf8 {
                if byte >= 0x20 && byte <= 0x7E && byte != UInt8(ascii: "%") {
                    piece.unicodeScalars.append(Unicode.Scalar(byte))
                } else {
                    piece += "%"
                    piece += hexDigit(byte >> 4)
                    piece += hexDigit(byte & 0xF)
                }
            }
            if out.utf8.count + piece.utf8.count > limit && maxBytes != .max {
                return out + truncationMarker
            }
            out += piece
        }
        return out
    }

    /// Decodes `%XX` sequences; a malformed sequence is kept as it is, since the protocol
    /// asks receivers not to fail a call over a bad message.
    static func decode(_ encoded: String) -> String {
        let bytes = Array(encoded.utf8)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var index = 0
        while index < bytes.count {
            if bytes[index] == UInt8(ascii: "%"), index + 2 < bytes.count,
                let high = hexValue(bytes[index + 1]), let low = hexValue(bytes[index + 2])
            {
                out.append(high << 4 | low)
                index += 3
            } else {
                out.append(bytes[index])
                index += 1
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    private static func hexDigit(_ value: UInt8) -> String {
        String(UnicodeScalar(value < 10 ? value + 48 : value + 55))
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte - 48
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return byte - 55
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return byte - 87
        default: return nil
        }
    }
}
