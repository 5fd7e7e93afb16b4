/// A failure to decode protobuf wire-format bytes.
///
/// The reader throws one of these for every malformed input instead of trapping, so a
/// peer's bytes can never crash the process. `offset` is the byte position in the
/// top-level buffer where the problem was found.
public struct ProtobufError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The class of malformation, for callers and tests that branch on it.
    public enum Kind: Equatable, Sendable {
        /// The input ends inside a varint.
        case truncatedVarint
        /// A varint continues past its 10th byte, the maximum for 64 bits.
        case varintTooLong
        /// A length prefix or a fixed-width value extends past the end of its message.
        case truncated
        /// A known field arrived with a wire type its declared type cannot have.
        case wrongWireType
        /// A tag carries field number 0 or one above 2^29 - 1.
        case invalidFieldNumber
        /// A tag carries wire type 6 or 7, which the encoding does not define.
        case invalidWireType
        /// A tag carries wire type 3 or 4 (deprecated groups), which proto3 never writes.
        case groupNotSupported
        /// A `string` field holds bytes that are not valid UTF-8.
        case invalidUTF8
        /// Nested messages go deeper than the reader's maximum depth.
        case nestingTooDeep
        /// A packed repeated field's length is not a whole number of elements.
        case invalidPackedLength
    }

    public let kind: Kind
    /// A lowercase sentence naming the field, the value and what was expected.
    public let message: String
    /// The byte offset, from the start of the decoded buffer, where decoding stopped.
    public let offset: Int

    public init(_ kind: Kind, _ message: String, offset: Int) {
        self.kind = kind
        self.message = message
        self.offset = offset
    }

    public var description: String {
        "invalid protobuf message at byte \(offset): \(message)"
    }
}
