/// An appender of protobuf wire-format fields into one growing byte array.
///
/// The scalar `write` methods follow proto3 implicit presence: a value equal to its default
/// (0, false, "", empty bytes) writes nothing. Callers encode an optional message field by
/// passing `nil` when it is unset. Field numbers are the caller's constants, so an invalid
/// one is a programming error and traps.
public struct ProtobufWriter {
    /// The encoded bytes written so far.
    public private(set) var bytes: [UInt8]

    /// Creates an empty writer with room for `capacity` bytes before it reallocates.
    public init(capacity: Int = 64) {
        bytes = []
        bytes.reserveCapacity(capacity)
    }

    // MARK: Raw encoding

    /// Appends `value` as a base-128 varint, low group first.
    public mutating func writeVarint(_ value: UInt64) {
        var rest = value
        while rest >= 0x80 {
            bytes.append(UInt8(truncatingIfNeeded: rest) | 0x80)
            rest >>= 7
        }
        bytes.append(UInt8(rest))
    }

    /// Appends a field tag: the field number shifted left by three, or-ed with the wire type.
    public mutating func writeTag(field: Int, wireType: ProtobufWireType) {
        precondition(
            (1...ProtobufLimits.maxFieldNumber).contains(field),
            "protobuf field number \(field) is outside 1...\(ProtobufLimits.maxFieldNumber)")
        writeVarint(UInt64(field) << 3 | UInt64(wireType.rawValue))
    }

    /// Appends the tag and length of a LEN field whose `length` payload bytes the caller sends next.
    ///
    /// This lets a large `bytes` field go out by reference: the caller writes the other
    /// fields, then this header, then hands the payload to the transport without copying it.
    public mutating func writeLengthDelimitedHeader(field: Int, length: Int) {
        precondition(length >= 0, "protobuf length \(length) is negative")
        writeTag(field: field, wireType: .lengthDelimited)
        writeVarint(UInt64(length))
    }

    /// Returns the number of bytes `writeVarint(value)` appends.
    public static func varintSize(_ value: UInt64) -> Int {
        // Each byte carries 7 bits, and zero still takes one byte.
        let significantBits = 64 - value.leadingZeroBitCount
        return max(1, (significantBits + 6) / 7)
    }

    private mutating func writeLittleEndian32(_ value: UInt32) {
        bytes.append(UInt8(truncatingIfNeeded: value))
        bytes.append(UInt8(truncatingIfNeeded: value >> 8))
        bytes.append(UInt8(truncatingIfNeeded: value >> 16))
        bytes.append(UInt8(truncatingIfNeeded: value >> 24))
    }

    private mutating func writeLittleEndian64(_ value: UInt64) {
        writeLittleEndian32(UInt32(truncatingIfNeeded: value))
        writeLittleEndian32(UInt32(truncatingIfNeeded: value >> 32))
    }

    // MARK: Singular scalars (skipped at their default)

    /// Writes an `int32`. Negative values take ten bytes because they are sign-extended to 64 bits.
    public mutating func writeInt32(_ value: Int32, field: Int) {
        writeInt64(Int64(value), field: field)
    }

    /// Writes an `int64` as a varint of its two's-complement bits, ten bytes when negative.
    public mutating func writeInt64(_ value: Int64, field: Int) {
        writeUInt64(UInt64(bitPattern: value), field: field)
    }

    /// Writes a `uint32` as a varint.
    public mutating func writeUInt32(_ value: UInt32, field: Int) {
        writeUInt64(UInt64(value), field: field)
    }

    /// Writes a `uint64` as a varint. The other varint writers call this one.
    public mutating func writeUInt64(_ value: UInt64, field: Int) {
        guard value != 0 else { return }
        writeTag(field: field, wireType: .varint)
        writeVarint(value)
    }

    /// Writes an `sint32` with zigzag encoding, so small negative numbers stay short.
    public mutating func writeSInt32(_ value: Int32, field: Int) {
        writeUInt64(UInt64(ProtobufZigZag.encode32(value)), field: field)
    }

    /// Writes an `sint64` with zigzag encoding, so small negative numbers stay short.
    public mutating func writeSInt64(_ value: Int64, field: Int) {
        writeUInt64(ProtobufZigZag.encode64(value), field: field)
    }

    /// Writes a `bool` as the varint 1, and nothing for false.
    public mutating func writeBool(_ value: Bool, field: Int) {
        writeUInt64(value ? 1 : 0, field: field)
    }

    /// Writes an enum by its number, including numbers the enum type has no case for.
    public mutating func writeEnum<E: ProtobufEnum>(_ value: E, field: Int) {
        writeInt32(value.rawValue, field: field)
    }

    /// Writes a `fixed32` as four little-endian bytes.
    public mutating func writeFixed32(_ value: UInt32, field: Int) {
        guard value != 0 else { return }
        writeTag(field: field, wireType: .fixed32)
        writeLittleEndian32(value)
    }

    /// Writes an `sfixed32` as four little-endian bytes of its two's-complement bits.
    public mutating func writeSFixed32(_ value: Int32, field: Int) {
        writeFixed32(UInt32(bitPattern: value), field: field)
    }

    /// Writes a `float`, including -0.0 and NaN, because only the all-zero bit pattern is the default.
    public mutating func writeFloat(_ value: Float, field: Int) {
        writeFixed32(value.bitPattern, field: field)
    }

    /// Writes a `fixed64` as eight little-endian bytes.
    public mutating func writeFixed64(_ value: UInt64, field: Int) {
        guard value != 0 else { return }
        writeTag(field: field, wireType: .fixed64)
        writeLittleEndian64(value)
    }

    /// Writes an `sfixed64` as eight little-endian bytes of its two's-complement bits.
    public mutating func writeSFixed64(_ value: Int64, field: Int) {
        writeFixed64(UInt64(bitPattern: value), field: field)
    }

    /// Writes a `double`, including -0.0 and NaN, because only the all-zero bit pattern is the default.
    public mutating func writeDouble(_ value: Double, field: Int) {
        writeFixed64(value.bitPattern, field: field)
    }

    /// Writes a `string` as its UTF-8 bytes with a length prefix.
    public mutating func writeString(_ value: String, field: Int) {
        guard !value.isEmpty else { return }
        writeStringAlways(value, field: field)
    }

    /// Writes a `bytes` field with a length prefix, copying `value` into the buffer.
    public mutating func writeBytes(_ value: [UInt8], field: Int) {
        guard !value.isEmpty else { return }
        writeLengthDelimitedHeader(field: field, length: value.count)
        bytes.append(contentsOf: value)
    }

    /// Writes a nested message when `message` is set, even if all its fields are default,
    /// because message fields have explicit presence in proto3.
    public mutating func writeMessage<M: ProtobufMessage>(_ message: M?, field: Int) {
        guard let message else { return }
        writeNested(field: field) { writer in message.encode(to: &writer) }
    }

    private mutating func writeStringAlways(_ value: String, field: Int) {
        var value = value
        value.withUTF8 { utf8 in
            writeLengthDelimitedHeader(field: field, length: utf8.count)
            bytes.append(contentsOf: utf8)
        }
    }

    /// Writes a LEN field whose content `body` appends, then patches in the content's length.
    ///
    /// One byte is reserved for the length, which fits any content under 128 bytes. Longer
    /// content is shifted right to make room, so only then does it cost a move of the content.
    private mutating func writeNested(field: Int, _ body: (inout ProtobufWriter) -> Void) {
        writeTag(field: field, wireType: .lengthDelimited)
        let lengthIndex = bytes.count
        bytes.append(0)

        body(&self)

        let length = bytes.count - lengthIndex - 1
        if length < 0x80 {
            bytes[lengthIndex] = UInt8(length)
            return
        }
        var lengthWriter = ProtobufWriter(capacity: ProtobufLimits.maxVarintBytes)
        lengthWriter.writeVarint(UInt64(length))
        bytes.replaceSubrange(lengthIndex..<lengthIndex + 1, with: lengthWriter.bytes)
    }

    // MARK: Repeated fields

    /// Writes repeated `int32` values, packed into one LEN field unless `packed` is false.
    public mutating func writeRepeatedInt32(_ values: [Int32], field: Int, packed: Bool = true) {
        writeRepeatedVarints(values, field: field, packed: packed) { UInt64(bitPattern: Int64($0)) }
    }

    /// Writes repeated `int64` values, packed unless `packed` is false.
    public mutating func writeRepeatedInt64(_ values: [Int64], field: Int, packed: Bool = true) {
        writeRepeatedVarints(values, field: field, packed: packed) { UInt64(bitPattern: $0) }
    }

    /// Writes repeated `uint32` values, packed unless `packed` is false.
    public mutating func writeRepeatedUInt32(_ values: [UInt32], field: Int, packed: Bool = true) {
        writeRepeatedVarints(values, field: field, packed: packed) { UInt64($0) }
    }

    /// Writes repeated `uint64` values, packed unless `packed` is false.
    public mutating func writeRepeatedUInt64(_ values: [UInt64], field: Int, packed: Bool = true) {
        writeRepeatedVarints(values, field: field, packed: packed) { $0 }
    }

    /// Writes repeated zigzag `sint32` values, packed unless `packed` is false.
    public mutating func writeRepeatedSInt32(_ values: [Int32], field: Int, packed: Bool = true) {
        writeRepeatedVarints(values, field: field, packed: packed) { UInt64(ProtobufZigZag.encode32($0)) }
    }

    /// Writes repeated zigzag `sint64` values, packed unless `packed` is false.
    public mutating func writeRepeatedSInt64(_ values: [Int64], field: Int, packed: Bool = true) {
        writeRepeatedVarints(values, field: field, packed: packed) { ProtobufZigZag.encode64($0) }
    }

    /// Writes repeated `bool` values, packed unless `packed` is false.
    public mutating func writeRepeatedBool(_ values: [Bool], field: Int, packed: Bool = true) {
        writeRepeatedVarints(values, field: field, packed: packed) { $0 ? 1 : 0 }
    }

    /// Writes repeated enum numbers, packed unless `packed` is false.
    public mutating func writeRepeatedEnum<E: ProtobufEnum>(_ values: [E], field: Int, packed: Bool = true) {
        writeRepeatedVarints(values, field: field, packed: packed) { UInt64(bitPattern: Int64($0.rawValue)) }
    }

    /// Writes repeated `fixed32` values, packed unless `packed` is false.
    public mutating func writeRepeatedFixed32(_ values: [UInt32], field: Int, packed: Bool = true) {
        writeRepeatedFixed32Bits(values, field: field, packed: packed) { $0 }
    }

    /// Writes repeated `sfixed32` values, packed unless `packed` is false.
    public mutating func writeRepeatedSFixed32(_ values: [Int32], field: Int, packed: Bool = true) {
        writeRepeatedFixed32Bits(values, field: field, packed: packed) { UInt32(bitPattern: $0) }
    }

    /// Writes repeated `float` values, packed unless `packed` is false.
    public mutating func writeRepeatedFloat(_ values: [Float], field: Int, packed: Bool = true) {
        writeRepeatedFixed32Bits(values, field: field, packed: packed) { $0.bitPattern }
    }

    /// Writes repeated `fixed64` values, packed unless `packed` is false.
    public mutating func writeRepeatedFixed64(_ values: [UInt64], field: Int, packed: Bool = true) {
        writeRepeatedFixed64Bits(values, field: field, packed: packed) { $0 }
    }

    /// Writes repeated `sfixed64` values, packed unless `packed` is false.
    public mutating func writeRepeatedSFixed64(_ values: [Int64], field: Int, packed: Bool = true) {
        writeRepeatedFixed64Bits(values, field: field, packed: packed) { UInt64(bitPattern: $0) }
    }

    /// Writes repeated `double` values, packed unless `packed` is false.
    public mutating func writeRepeatedDouble(_ values: [Double], field: Int, packed: Bool = true) {
        writeRepeatedFixed64Bits(values, field: field, packed: packed) { $0.bitPattern }
    }

    /// Writes one LEN field per string, empty strings included, since each is an element.
    public mutating func writeRepeatedString(_ values: [String], field: Int) {
        for value in values {
            writeStringAlways(value, field: field)
        }
    }

    /// Writes one LEN field per element, empty elements included.
    public mutating func writeRepeatedBytes(_ values: [[UInt8]], field: Int) {
        for value in values {
            writeLengthDelimitedHeader(field: field, length: value.count)
            bytes.append(contentsOf: value)
        }
    }

    /// Writes one LEN field per message, messages with only default fields included.
    public mutating func writeRepeatedMessage<M: ProtobufMessage>(_ values: [M], field: Int) {
        for value in values {
            writeNested(field: field) { writer in value.encode(to: &writer) }
        }
    }

    private mutating func writeRepeatedVarints<T>(
        _ values: [T], field: Int, packed: Bool, _ toVarint: (T) -> UInt64
    ) {
        guard !values.isEmpty else { return }
        guard packed else {
            for value in values {
                writeTag(field: field, wireType: .varint)
                writeVarint(toVarint(value))
            }
            return
        }
        var length = 0
        for value in values {
            length += Self.varintSize(toVarint(value))
        }
        writeLengthDelimitedHeader(field: field, length: length)
        for value in values {
            writeVarint(toVarint(value))
        }
    }

    private mutating func writeRepeatedFixed32Bits<T>(
        _ values: [T], field: Int, packed: Bool, _ toBits: (T) -> UInt32
    ) {
        guard !values.isEmpty else { return }
        if packed {
            writeLengthDelimitedHeader(field: field, length: values.count * 4)
        }
        for value in values {
            if !packed {
                writeTag(field: field, wireType: .fixed32)
            }
            writeLittleEndian32(toBits(value))
        }
    }

    private mutating func writeRepeatedFixed64Bits<T>(
        _ values: [T], field: Int, packed: Bool, _ toBits: (T) -> UInt64
    ) {
        guard !values.isEmpty else { return }
        if packed {
            writeLengthDelimitedHeader(field: field, length: values.count * 8)
        }
        for value in values {
            if !packed {
                writeTag(field: field, wireType: .fixed64)
            }
            writeLittleEndian64(toBits(value))
        }
    }

    // MARK: Maps

    /// Writes a `map<string, string>` as one entry message per key (key = 1, value = 2).
    ///
    /// Keys go out in sorted order so that equal maps encode to equal bytes, although
    /// protobuf does not require any order.
    public mutating func writeMap(_ map: [String: String], field: Int) {
        for key in map.keys.sorted() {
            writeNested(field: field) { writer in
                writer.writeString(key, field: 1)
                writer.writeString(map[key]!, field: 2)
            }
        }
    }

    /// Writes a `map<string, int32>` as one entry message per key, keys in sorted order.
    public mutating func writeMap(_ map: [String: Int32], field: Int) {
        for key in map.keys.sorted() {
            writeNested(field: field) { writer in
                writer.writeString(key, field: 1)
                writer.writeInt32(map[key]!, field: 2)
            }
        }
    }
}

/// Zigzag mapping of signed integers for `sint32` / `sint64` (0, -1, 1, -2 ... -> 0, 1, 2, 3 ...).
public enum ProtobufZigZag {
    /// Maps an `sint32` value to the unsigned number that goes on the wire.
    public static func encode32(_ value: Int32) -> UInt32 {
        UInt32(bitPattern: (value << 1) ^ (value >> 31))
    }

    /// Maps an `sint64` value to the unsigned number that goes on the wire.
    public static func encode64(_ value: Int64) -> UInt64 {
        UInt64(bitPattern: (value << 1) ^ (value >> 63))
    }

    /// Maps a wire number back to the `sint32` value it encodes.
    public static func decode32(_ value: UInt32) -> Int32 {
        Int32(bitPattern: (value >> 1) ^ (0 &- (value & 1)))
    }

    /// Maps a wire number back to the `sint64` value it encodes.
    public static func decode64(_ value: UInt64) -> Int64 {
        Int64(bitPattern: (value >> 1) ^ (0 &- (value & 1)))
    }
}
