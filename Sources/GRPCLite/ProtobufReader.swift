/// A cursor over protobuf wire-format bytes that hand-written messages decode from.
///
/// Every read checks bounds and wire types and throws `ProtobufError` on malformed input.
/// No input can trap or loop forever, because each step consumes at least one byte and
/// nesting is capped at `maxDepth`. Decoding a `bytes` field copies its content once into
/// the returned array. Apart from strings and repeated fields, nothing else allocates per field.
///
/// NOTE: after a read throws, the reader is left inside whatever message failed, so callers
/// must discard it rather than keep reading.
///
/// Usage inside `ProtobufMessage.merge(from:)`:
///
///     while let field = try reader.nextField() {
///         switch field {
///         case 1: name = try reader.readString()
///         case 2: try reader.readRepeatedInt32(into: &numbers)
///         default: try reader.skipField()
///         }
///     }
public struct ProtobufReader {
    private let bytes: [UInt8]
    private var position: Int
    /// The end of the message being read, which nested messages and packed fields narrow.
    private var end: Int
    private var depth = 0
    /// The nesting limit. A message nested deeper than this fails with `.nestingTooDeep`.
    public let maxDepth: Int

    /// The number of the field whose tag `nextField()` read last.
    public private(set) var fieldNumber = 0
    /// The wire type of the field whose tag `nextField()` read last.
    public private(set) var wireType = ProtobufWireType.varint
    private var tagOffset = 0

    /// Creates a reader over a whole encoded message.
    public init(bytes: [UInt8], maxDepth: Int = ProtobufLimits.defaultMaxDepth) {
        self.bytes = bytes
        self.position = 0
        self.end = bytes.count
        self.maxDepth = maxDepth
    }

    /// Whether the current message has no bytes left.
    public var isAtEnd: Bool { position >= end }

    // MARK: Tags

    /// Reads the next tag and returns its field number, or nil at the end of the current message.
    ///
    /// Throws for field number 0, numbers above 2^29 - 1, group wire types (3, 4) and the
    /// undefined wire types 6 and 7.
    public mutating func nextField() throws -> Int? {
        guard position < end else { return nil }
        tagOffset = position
        let tag = try readVarint()

        let number = tag >> 3
        guard number != 0 else {
            throw error(.invalidFieldNumber, "field number 0 is invalid: field numbers start at 1", at: tagOffset)
        }
        guard number <= UInt64(ProtobufLimits.maxFieldNumber) else {
            throw error(
                .invalidFieldNumber,
                "field number \(number) is invalid: the maximum is \(ProtobufLimits.maxFieldNumber)", at: tagOffset)
        }
        fieldNumber = Int(number)

        let rawWireType = UInt8(tag & 7)
        switch ProtobufWireType(rawValue: rawWireType) {
        case .startGroup?, .endGroup?:
            throw error(
                .groupNotSupported,
                "field \(number) uses group wire type \(rawWireType), which proto3 does not support", at: tagOffset)
        case nil:
            throw error(
                .invalidWireType,
                "field \(number) has wire type \(rawWireType), which is undefined: expected 0, 1, 2 or 5",
                at: tagOffset)
        case let known?:
            wireType = known
        }
        return fieldNumber
    }

    /// Skips the value of the field whose tag was just read, for fields the message does not know.
    public mutating func skipField() throws {
        switch wireType {
        case .varint:
            _ = try readVarint()
        case .fixed64:
            try skip(8)
        case .fixed32:
            try skip(4)
        case .lengthDelimited:
            try skip(try readLength())
        case .startGroup, .endGroup:
            // Unreachable: nextField() throws on group wire types instead of returning them.
            throw error(.groupNotSupported, "field \(fieldNumber) uses a group wire type", at: tagOffset)
        }
    }

    // MARK: Varint scalars

    /// Reads an `int32`, keeping the low 32 bits of the varint as Python protobuf (upb) does.
    public mutating func readInt32() throws -> Int32 {
        // Encoders sign-extend int32 to 64 bits, so the low 32 bits are the value.
        Int32(truncatingIfNeeded: try readVarintField("int32"))
    }

    /// Reads an `int64` from a varint of its two's-complement bits.
    public mutating func readInt64() throws -> Int64 {
        Int64(bitPattern: try readVarintField("int64"))
    }

    /// Reads a `uint32`, keeping the low 32 bits of the varint as Python protobuf (upb) does.
    public mutating func readUInt32() throws -> UInt32 {
        UInt32(truncatingIfNeeded: try readVarintField("uint32"))
    }

    /// Reads a `uint64` varint.
    public mutating func readUInt64() throws -> UInt64 {
        try readVarintField("uint64")
    }

    /// Reads a zigzag-encoded `sint32`.
    public mutating func readSInt32() throws -> Int32 {
        ProtobufZigZag.decode32(UInt32(truncatingIfNeeded: try readVarintField("sint32")))
    }

    /// Reads a zigzag-encoded `sint64`.
    public mutating func readSInt64() throws -> Int64 {
        ProtobufZigZag.decode64(try readVarintField("sint64"))
    }

    /// Reads a `bool`, where any non-zero varint is true.
    public mutating func readBool() throws -> Bool {
        try readVarintField("bool") != 0
    }

    /// Reads an enum. A number without a case is kept by the enum's unrecognized case.
    public mutating func readEnum<E: ProtobufEnum>(_ type: E.Type = E.self) throws -> E {
        E(rawValue: Int32(truncatingIfNeeded: try readVarintField("enum")))
    }

    // MARK: Fixed-width scalars

    /// Reads a `fixed32` from four little-endian bytes.
    public mutating func readFixed32() throws -> UInt32 {
        try expect(.fixed32, "fixed32")
        return try readLittleEndian32()
    }

    /// Reads an `sfixed32` from four little-endian bytes.
    public mutating func readSFixed32() throws -> Int32 {
        try expect(.fixed32, "sfixed32")
        return Int32(bitPattern: try readLittleEndian32())
    }

    /// Reads a `float` from four little-endian bytes.
    public mutating func readFloat() throws -> Float {
        try expect(.fixed32, "float")
        return Float(bitPattern: try readLittleEndian32())
    }

    /// Reads a `fixed64` from eight little-endian bytes.
    public mutating func readFixed64() throws -> UInt64 {
        try expect(.fixed64, "fixed64")
        return try readLittleEndian64()
    }

    /// Reads an `sfixed64` from eight little-endian bytes.
    public mutating func readSFixed64() throws -> Int64 {
        try expect(.fixed64, "sfixed64")
        return Int64(bitPattern: try readLittleEndian64())
    }

    /// Reads a `double` from eight little-endian bytes.
    public mutating func readDouble() throws -> Double {
        try expect(.fixed64, "double")
        return Double(bitPattern: try readLittleEndian64())
    }

    // MARK: Length-delimited values

    /// Reads a `string` field, throwing `.invalidUTF8` when its bytes are not valid UTF-8.
    public mutating func readString() throws -> String {
        try expect(.lengthDelimited, "string")
        let length = try readLength()
        let start = position
        let text = bytes.withUnsafeBufferPointer { buffer in
            String(validating: UnsafeBufferPointer(rebasing: buffer[start..<start + length]), as: UTF8.self)
        }
        guard let text else {
            throw error(.invalidUTF8, "field \(fieldNumber) is a string but its \(length) bytes are not valid UTF-8")
        }
        position += length
        return text
    }

    /// Reads a `bytes` field, copying its content once into a new array.
    public mutating func readBytes() throws -> [UInt8] {
        try expect(.lengthDelimited, "bytes")
        let length = try readLength()
        let value = Array(bytes[position..<position + length])
        position += length
        return value
    }

    /// Reads a nested message, merging it into `message` when the field occurred before.
    public mutating func readMessage<M: ProtobufMessage>(into message: inout M?) throws {
        var value = message ?? M()
        try readNested("message") { reader in try value.merge(from: &reader) }
        message = value
    }

    /// Reads a nested message field into a new value.
    public mutating func readMessage<M: ProtobufMessage>(_ type: M.Type = M.self) throws -> M {
        var value = M()
        try readNested("message") { reader in try value.merge(from: &reader) }
        return value
    }

    /// Narrows the reader to a LEN field's content one level deeper, runs `body`, and restores it.
    private mutating func readNested(_ typeName: String, _ body: (inout ProtobufReader) throws -> Void) throws {
        try expect(.lengthDelimited, typeName)
        let length = try readLength()
        guard depth < maxDepth else {
            throw error(.nestingTooDeep, "messages are nested more than \(maxDepth) levels deep")
        }
        let outerEnd = end
        let outerField = fieldNumber
        end = position + length
        depth += 1

        try body(&self)

        // A merge(from:) that stops before the end leaves the rest unread, so skip it and
        // let the outer message resume at its next tag.
        position = end
        depth -= 1
        end = outerEnd
        fieldNumber = outerField
        wireType = .lengthDelimited
    }

    // MARK: Repeated fields

    /// Appends `int32` values from either encoding: one VARINT element or a packed LEN run.
    public mutating func readRepeatedInt32(into values: inout [Int32]) throws {
        try readRepeatedVarints(into: &values, "int32") { Int32(truncatingIfNeeded: $0) }
    }

    /// Appends `int64` values from a VARINT element or a packed run.
    public mutating func readRepeatedInt64(into values: inout [Int64]) throws {
        try readRepeatedVarints(into: &values, "int64") { Int64(bitPattern: $0) }
    }

    /// Appends `uint32` values from a VARINT element or a packed run.
    public mutating func readRepeatedUInt32(into values: inout [UInt32]) throws {
        try readRepeatedVarints(into: &values, "uint32") { UInt32(truncatingIfNeeded: $0) }
    }

    /// Appends `uint64` values from a VARINT element or a packed run.
    public mutating func readRepeatedUInt64(into values: inout [UInt64]) throws {
        try readRepeatedVarints(into: &values, "uint64") { $0 }
    }

    /// Appends zigzag `sint32` values from a VARINT element or a packed run.
    public mutating func readRepeatedSInt32(into values: inout [Int32]) throws {
        try readRepeatedVarints(into: &values, "sint32") { ProtobufZigZag.decode32(UInt32(truncatingIfNeeded: $0)) }
    }

    /// Appends zigzag `sint64` values from a VARINT element or a packed run.
    public mutating func readRepeatedSInt64(into values: inout [Int64]) throws {
        try readRepeatedVarints(into: &values, "sint64") { ProtobufZigZag.decode64($0) }
    }

    /// Appends `bool` values from a VARINT element or a packed run.
    public mutating func readRepeatedBool(into values: inout [Bool]) throws {
        try readRepeatedVarints(into: &values, "bool") { $0 != 0 }
    }

    /// Appends enum values from a VARINT element or a packed run, unknown numbers included.
    public mutating func readRepeatedEnum<E: ProtobufEnum>(into values: inout [E]) throws {
        try readRepeatedVarints(into: &values, "enum") { E(rawValue: Int32(truncatingIfNeeded: $0)) }
    }

    /// Appends `fixed32` values from an I32 element or a packed run.
    public mutating func readRepeatedFixed32(into values: inout [UInt32]) throws {
        try readRepeatedFixed32Bits(into: &values, "fixed32") { $0 }
    }

    /// Appends `sfixed32` values from an I32 element or a packed run.
    public mutating func readRepeatedSFixed32(into values: inout [Int32]) throws {
        try readRepeatedFixed32Bits(into: &values, "sfixed32") { Int32(bitPattern: $0) }
    }

    /// Appends `float` values from an I32 element or a packed run.
    public mutating func readRepeatedFloat(into values: inout [Float]) throws {
        try readRepeatedFixed32Bits(into: &values, "float") { Float(bitPattern: $0) }
    }

    /// Appends `fixed64` values from an I64 element or a packed run.
    public mutating func readRepeatedFixed64(into values: inout [UInt64]) throws {
        try readRepeatedFixed64Bits(into: &values, "fixed64") { $0 }
    }

    /// Appends `sfixed64` values from an I64 element or a packed run.
    public mutating func readRepeatedSFixed64(into values: inout [Int64]) throws {
        try readRepeatedFixed64Bits(into: &values, "sfixed64") { Int64(bitPattern: $0) }
    }

    /// Appends `double` values from an I64 element or a packed run.
    public mutating func readRepeatedDouble(into values: inout [Double]) throws {
        try readRepeatedFixed64Bits(into: &values, "double") { Double(bitPattern: $0) }
    }

    private mutating func readRepeatedVarints<T>(
        into values: inout [T], _ typeName: String, _ convert: (UInt64) -> T
    ) throws {
        guard wireType == .lengthDelimited else {
            values.append(convert(try readVarintField(typeName)))
            return
        }
        let length = try readLength()
        let outerEnd = end
        end = position + length
        values.reserveCapacity(values.count + countVarintEnds())
        // A varint cut off by the packed run's end is reported as truncated by readVarint.
        while position < end {
            values.append(convert(try readVarint()))
        }
        end = outerEnd
    }

    private mutating func readRepeatedFixed32Bits<T>(
        into values: inout [T], _ typeName: String, _ convert: (UInt32) -> T
    ) throws {
        guard wireType == .lengthDelimited else {
            try expect(.fixed32, typeName)
            values.append(convert(try readLittleEndian32()))
            return
        }
        let length = try readPackedLength(elementSize: 4, typeName)
        values.reserveCapacity(values.count + length / 4)
        let packedEnd = position + length
        while position < packedEnd {
            values.append(convert(try readLittleEndian32()))
        }
    }

    private mutating func readRepeatedFixed64Bits<T>(
        into values: inout [T], _ typeName: String, _ convert: (UInt64) -> T
    ) throws {
        guard wireType == .lengthDelimited else {
            try expect(.fixed64, typeName)
            values.append(convert(try readLittleEndian64()))
            return
        }
        let length = try readPackedLength(elementSize: 8, typeName)
        values.reserveCapacity(values.count + length / 8)
        let packedEnd = position + length
        while position < packedEnd {
            values.append(convert(try readLittleEndian64()))
        }
    }

    private mutating func readPackedLength(elementSize: Int, _ typeName: String) throws -> Int {
        let length = try readLength()
        guard length % elementSize == 0 else {
            throw error(
                .invalidPackedLength,
                "field \(fieldNumber) is packed \(typeName) with length \(length): "
                    + "expected a multiple of \(elementSize) bytes")
        }
        return length
    }

    /// Appends one string element of a `repeated string` field.
    public mutating func readRepeatedString(into values: inout [String]) throws {
        values.append(try readString())
    }

    /// Appends one element of a `repeated bytes` field.
    public mutating func readRepeatedBytes(into values: inout [[UInt8]]) throws {
        values.append(try readBytes())
    }

    /// Appends one element of a repeated message field.
    public mutating func readRepeatedMessage<M: ProtobufMessage>(into values: inout [M]) throws {
        values.append(try readMessage(M.self))
    }

    // MARK: Maps

    /// Reads one entry of a `map<string, string>` field and stores it, replacing an earlier key.
    public mutating func readMapEntry(into map: inout [String: String]) throws {
        try readMapEntry(
            into: &map, defaultKey: "", defaultValue: "",
            readKey: { try $0.readString() }, readValue: { try $0.readString() })
    }

    /// Reads one entry of a `map<string, int32>` field and stores it, replacing an earlier key.
    public mutating func readMapEntry(into map: inout [String: Int32]) throws {
        try readMapEntry(
            into: &map, defaultKey: "", defaultValue: 0,
            readKey: { try $0.readString() }, readValue: { try $0.readInt32() })
    }

    /// Reads one map entry message (key = field 1, value = field 2) and stores it.
    ///
    /// A missing key or value takes its default, as the protobuf map encoding specifies.
    public mutating func readMapEntry<Key: Hashable, Value>(
        into map: inout [Key: Value], defaultKey: Key, defaultValue: Value,
        readKey: (inout ProtobufReader) throws -> Key, readValue: (inout ProtobufReader) throws -> Value
    ) throws {
        var key = defaultKey
        var value = defaultValue
        try readNested("map entry") { reader in
            while let field = try reader.nextField() {
                switch field {
                case 1: key = try readKey(&reader)
                case 2: value = try readValue(&reader)
                default: try reader.skipField()
                }
            }
        }
        map[key] = value
    }

    // MARK: Raw decoding

    private mutating func readVarintField(_ typeName: String) throws -> UInt64 {
        try expect(.varint, typeName)
        return try readVarint()
    }

    /// Reads a base-128 varint of at most 10 bytes within the current message.
    private mutating func readVarint() throws -> UInt64 {
        // Most tags and small values are one byte.
        if position < end, bytes[position] < 0x80 {
            position += 1
            return UInt64(bytes[position - 1])
        }

        let start = position
        let limit = min(end, start + ProtobufLimits.maxVarintBytes)
        // The loop works on locals through a buffer pointer so that it touches `self` once.
        let (value, next) = bytes.withUnsafeBufferPointer { buffer -> (UInt64, Int) in
            var result: UInt64 = 0
            var shift: UInt64 = 0
            var index = start
            while index < limit {
                let byte = buffer[index]
                index += 1
                // Bits past 64 in the 10th byte are dropped rather than rejected, as Python's
                // protobuf (upb) does.
                result |= UInt64(byte & 0x7F) << shift
                if byte < 0x80 {
                    return (result, index)
                }
                shift += 7
            }
            return (0, -1)
        }
        if next >= 0 {
            position = next
            return value
        }

        if limit - start == ProtobufLimits.maxVarintBytes {
            throw error(.varintTooLong, "varint is longer than \(ProtobufLimits.maxVarintBytes) bytes", at: start)
        }
        throw error(
            .truncatedVarint, "truncated varint: the message ends after \(end - start) byte(s) of it", at: start)
    }

    /// Returns the number of bytes without the continuation bit from here to the end, which
    /// is the number of varints in a well-formed packed run.
    private func countVarintEnds() -> Int {
        let range = position..<end
        return bytes.withUnsafeBufferPointer { buffer in
            var count = 0
            for index in range where buffer[index] < 0x80 {
                count += 1
            }
            return count
        }
    }

    /// Reads a LEN prefix and checks that its content lies within the current message.
    private mutating func readLength() throws -> Int {
        let lengthOffset = position
        let length = try readVarint()
        let remaining = end - position
        guard length <= UInt64(remaining) else {
            throw error(
                .truncated,
                "field \(fieldNumber) has length \(length) but only \(remaining) byte(s) remain in the message",
                at: lengthOffset)
        }
        return Int(length)
    }

    private mutating func skip(_ count: Int) throws {
        try requireBytes(count)
        position += count
    }

    private func requireBytes(_ count: Int) throws {
        let remaining = end - position
        guard count <= remaining else {
            throw error(
                .truncated,
                "field \(fieldNumber) needs \(count) bytes but only \(remaining) byte(s) remain in the message")
        }
    }

    private mutating func readLittleEndian32() throws -> UInt32 {
        try requireBytes(4)
        var value: UInt32 = 0
        for index in 0..<4 {
            value |= UInt32(bytes[position + index]) << (8 * index)
        }
        position += 4
        return value
    }

    private mutating func readLittleEndian64() throws -> UInt64 {
        try requireBytes(8)
        let low = try readLittleEndian32()
        let high = try readLittleEndian32()
        return UInt64(high) << 32 | UInt64(low)
    }

    private func expect(_ expected: ProtobufWireType, _ typeName: String) throws {
        guard wireType == expected else {
            throw error(
                .wrongWireType,
                "field \(fieldNumber) has wire type \(wireType), expected \(expected) for a \(typeName) field",
                at: tagOffset)
        }
    }

    private func error(_ kind: ProtobufError.Kind, _ message: String, at offset: Int? = nil) -> ProtobufError {
        ProtobufError(kind, message, offset: offset ?? position)
    }
}
