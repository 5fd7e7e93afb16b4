/// A protobuf message type written by hand against `ProtobufWriter` and `ProtobufReader`.
///
/// Conforming types implement `merge(from:)` and `encode(to:)`, and the extension below
/// implements the other requirements. Encoding follows proto3: fields at their default value
/// (zero, empty, unset message) are not written, and decoding skips unknown fields.
public protocol ProtobufMessage {
    /// Creates the message with every field at its proto3 default.
    init()

    /// Decodes a message from its wire-format bytes, throwing `ProtobufError` on malformed input.
    init(serializedBytes: [UInt8]) throws

    /// Decodes a message from the fields left in the reader's current message.
    init(from reader: inout ProtobufReader) throws

    /// Returns the wire-format encoding of the message.
    func serializedBytes() -> [UInt8]

    /// Reads fields into `self` until the reader reaches the end of the current message.
    ///
    /// Implementations loop over `reader.nextField()`, read known fields with the typed
    /// `read` methods (which check the wire type) and call `reader.skipField()` for the rest.
    /// Scalars overwrite, repeated fields append and message fields merge, which is what
    /// the protobuf encoding specifies for a field that occurs more than once.
    mutating func merge(from reader: inout ProtobufReader) throws

    /// Appends the message's non-default fields to `writer`.
    func encode(to writer: inout ProtobufWriter)
}

extension ProtobufMessage {
    public init(serializedBytes: [UInt8]) throws {
        var reader = ProtobufReader(bytes: serializedBytes)
        try self.init(from: &reader)
    }

    public init(from reader: inout ProtobufReader) throws {
        self.init()
        try merge(from: &reader)
    }

    public func serializedBytes() -> [UInt8] {
        var writer = ProtobufWriter()
        encode(to: &writer)
        return writer.bytes
    }
}

/// A protobuf enum that keeps values it does not name, as proto3 requires of open enums.
///
/// `init(rawValue:)` never fails: a number without a case becomes the type's
/// "unrecognized" case so that re-encoding a message writes the number back unchanged.
public protocol ProtobufEnum: Equatable {
    init(rawValue: Int32)
    var rawValue: Int32 { get }
}

/// The wire type in the low three bits of a field tag (protobuf encoding guide, "Message Structure").
public enum ProtobufWireType: UInt8, Sendable, CustomStringConvertible {
    case varint = 0
    case fixed64 = 1
    case lengthDelimited = 2
    case startGroup = 3
    case endGroup = 4
    case fixed32 = 5

    /// The name the protobuf encoding guide uses: VARINT, I64, LEN, SGROUP, EGROUP, I32.
    public var description: String {
        switch self {
        case .varint: "VARINT"
        case .fixed64: "I64"
        case .lengthDelimited: "LEN"
        case .startGroup: "SGROUP"
        case .endGroup: "EGROUP"
        case .fixed32: "I32"
        }
    }
}

/// Field numbers and limits from the protobuf language guide.
public enum ProtobufLimits {
    /// The largest field number a tag can carry, 2^29 - 1.
    public static let maxFieldNumber = 536_870_911
    /// The longest varint, in bytes: ten 7-bit groups hold 64 bits.
    public static let maxVarintBytes = 10
    /// The default nesting limit for `ProtobufReader`. Python protobuf 7 (upb) has the same limit:
    /// 100 levels of nested messages decode and 101 fail.
    public static let defaultMaxDepth = 100
}
