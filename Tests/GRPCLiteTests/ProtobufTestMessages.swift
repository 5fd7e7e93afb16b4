import GRPCLite

// Swift twins of Fixtures/protobuf/codec_test.proto, written against ProtobufReader and
// ProtobufWriter the way JobAPI writes its messages.

enum Color: ProtobufEnum, Hashable {
    case unspecified
    case red
    case green
    case unrecognized(Int32)

    init(rawValue: Int32) {
        switch rawValue {
        case 0: self = .unspecified
        case 1: self = .red
        case 2: self = .green
        default: self = .unrecognized(rawValue)
        }
    }

    var rawValue: Int32 {
        switch self {
        case .unspecified: 0
        case .red: 1
        case .green: 2
        case .unrecognized(let value): value
        }
    }
}

struct Inner: ProtobufMessage, Equatable {
    var id: Int32 = 0
    var label = ""
    // A struct cannot contain an optional of itself; an array stores the child on the heap.
    var childBox: [Inner] = []

    var child: Inner? {
        get { childBox.first }
        set { childBox = newValue.map { [$0] } ?? [] }
    }

    init() {}

    init(id: Int32 = 0, label: String = "", child: Inner? = nil) {
        self.id = id
        self.label = label
        self.child = child
    }

    mutating func merge(from reader: inout ProtobufReader) throws {
        while let field = try reader.nextField() {
            switch field {
            case 1: id = try reader.readInt32()
            case 2: label = try reader.readString()
            case 3:
                var value = child
                try reader.readMessage(into: &value)
                child = value
            default: try reader.skipField()
            }
        }
    }

    func encode(to writer: inout ProtobufWriter) {
        writer.writeInt32(id, field: 1)
        writer.writeString(label, field: 2)
        writer.writeMessage(child, field: 3)
    }
}

struct AllKinds: ProtobufMessage, Equatable {
    var fInt32: Int32 = 0
    var fInt64: Int64 = 0
    var fUInt32: UInt32 = 0
    var fUInt64: UInt64 = 0
    var fSInt32: Int32 = 0
    var fSInt64: Int64 = 0
    var fFixed32: UInt32 = 0
    var fFixed64: UInt64 = 0
    var fSFixed32: Int32 = 0
    var fSFixed64: Int64 = 0
    var fBool = false
    var fFloat: Float = 0
    var fDouble: Double = 0
    var fString = ""
    var fBytes: [UInt8] = []
    var fEnum = Color.unspecified
    var fInner: Inner?

    var rInt32: [Int32] = []
    var rInt32Unpacked: [Int32] = []
    var rInt64: [Int64] = []
    var rUInt32: [UInt32] = []
    var rUInt64: [UInt64] = []
    var rSInt32: [Int32] = []
    var rSInt64: [Int64] = []
    var rFixed32: [UInt32] = []
    var rFixed64: [UInt64] = []
    var rSFixed32: [Int32] = []
    var rSFixed64Unpacked: [Int64] = []
    var rBool: [Bool] = []
    var rFloat: [Float] = []
    var rDoubleUnpacked: [Double] = []
    var rEnum: [Color] = []
    var rString: [String] = []
    var rBytes: [[UInt8]] = []
    var rInner: [Inner] = []

    var mString: [String: String] = [:]
    var mInt32: [String: Int32] = [:]

    var fMaxField = ""

    /// When true, packable repeated fields are written one element per tag, as an old
    /// encoder or a `[packed = false]` declaration would.
    var encodesUnpacked = false

    init() {}

    static func == (lhs: AllKinds, rhs: AllKinds) -> Bool {
        var left = lhs
        var right = rhs
        left.encodesUnpacked = false
        right.encodesUnpacked = false
        return left.fieldsEqual(right)
    }

    private func fieldsEqual(_ other: AllKinds) -> Bool {
        // Compares floating-point values by bit pattern so -0.0 differs from 0.0.
        fInt32 == other.fInt32 && fInt64 == other.fInt64 && fUInt32 == other.fUInt32
            && fUInt64 == other.fUInt64 && fSInt32 == other.fSInt32 && fSInt64 == other.fSInt64
            && fFixed32 == other.fFixed32 && fFixed64 == other.fFixed64 && fSFixed32 == other.fSFixed32
            && fSFixed64 == other.fSFixed64 && fBool == other.fBool
            && fFloat.bitPattern == other.fFloat.bitPattern && fDouble.bitPattern == other.fDouble.bitPattern
            && fString == other.fString && fBytes == other.fBytes && fEnum == other.fEnum
            && fInner == other.fInner && rInt32 == other.rInt32 && rInt32Unpacked == other.rInt32Unpacked
            && rInt64 == other.rInt64 && rUInt32 == other.rUInt32 && rUInt64 == other.rUInt64
            && rSInt32 == other.rSInt32 && rSInt64 == other.rSInt64 && rFixed32 == other.rFixed32
            && rFixed64 == other.rFixed64 && rSFixed32 == other.rSFixed32
            && rSFixed64Unpacked == other.rSFixed64Unpacked && rBool == other.rBool
            && rFloat.map(\.bitPattern) == other.rFloat.map(\.bitPattern)
            && rDoubleUnpacked.map(\.bitPattern) == other.rDoubleUnpacked.map(\.bitPattern)
            && rEnum == other.rEnum && rString == other.rString && rBytes == other.rBytes
            && rInner == other.rInner && mString == other.mString && mInt32 == other.mInt32
            && fMaxField == other.fMaxField
    }

    mutating func merge(from reader: inout ProtobufReader) throws {
        while let field = try reader.nextField() {
            switch field {
            case 1: fInt32 = try reader.readInt32()
            case 2: fInt64 = try reader.readInt64()
            case 3: fUInt32 = try reader.readUInt32()
            case 4: fUInt64 = try reader.readUInt64()
            case 5: fSInt32 = try reader.readSInt32()
            case 6: fSInt64 = try reader.readSInt64()
            case 7: fFixed32 = try reader.readFixed32()
            case 8: fFixed64 = try reader.readFixed64()
            case 9: fSFixed32 = try reader.readSFixed32()
            case 10: fSFixed64 = try reader.readSFixed64()
            case 11: fBool = try reader.readBool()
            case 12: fFloat = try reader.readFloat()
            case 13: fDouble = try reader.readDouble()
            case 14: fString = try reader.readString()
            case 15: fBytes = try reader.readBytes()
            case 16: fEnum = try reader.readEnum()
            case 17: try reader.readMessage(into: &fInner)
            case 18: try reader.readRepeatedInt32(into: &rInt32)
            case 19: try reader.readRepeatedInt32(into: &rInt32Unpacked)
            case 20: try reader.readRepeatedInt64(into: &rInt64)
            case 21: try reader.readRepeatedUInt32(into: &rUInt32)
            case 22: try reader.readRepeatedUInt64(into: &rUInt64)
            case 23: try reader.readRepeatedSInt32(into: &rSInt32)
            case 24: try reader.readRepeatedSInt64(into: &rSInt64)
            case 25: try reader.readRepeatedFixed32(into: &rFixed32)
            case 26: try reader.readRepeatedFixed64(into: &rFixed64)
            case 27: try reader.readRepeatedSFixed32(into: &rSFixed32)
            case 28: try reader.readRepeatedSFixed64(into: &rSFixed64Unpacked)
            case 29: try reader.readRepeatedBool(into: &rBool)
            case 30: try reader.readRepeatedFloat(into: &rFloat)
            case 31: try reader.readRepeatedDouble(into: &rDoubleUnpacked)
            case 32: try reader.readRepeatedEnum(into: &rEnum)
            case 33: try reader.readRepeatedString(into: &rString)
            case 34: try reader.readRepeatedBytes(into: &rBytes)
            case 35: try reader.readRepeatedMessage(into: &rInner)
            case 36: try reader.readMapEntry(into: &mString)
            case 37: try reader.readMapEntry(into: &mInt32)
            case ProtobufLimits.maxFieldNumber: fMaxField = try reader.readString()
            default: try reader.skipField()
            }
        }
    }

    func encode(to writer: inout ProtobufWriter) {
        let packed = !encodesUnpacked
        writer.writeInt32(fInt32, field: 1)
        writer.writeInt64(fInt64, field: 2)
        writer.writeUInt32(fUInt32, field: 3)
        writer.writeUInt64(fUInt64, field: 4)
        writer.writeSInt32(fSInt32, field: 5)
        writer.writeSInt64(fSInt64, field: 6)
        writer.writeFixed32(fFixed32, field: 7)
        writer.writeFixed64(fFixed64, field: 8)
        writer.writeSFixed32(fSFixed32, field: 9)
        writer.writeSFixed64(fSFixed64, field: 10)
        writer.writeBool(fBool, field: 11)
        writer.writeFloat(fFloat, field: 12)
        writer.writeDouble(fDouble, field: 13)
        writer.writeString(fString, field: 14)
        writer.writeBytes(fBytes, field: 15)
        writer.writeEnum(fEnum, field: 16)
        writer.writeMessage(fInner, field: 17)
        writer.writeRepeatedInt32(rInt32, field: 18, packed: packed)
        writer.writeRepeatedInt32(rInt32Unpacked, field: 19, packed: encodesUnpacked)
        writer.writeRepeatedInt64(rInt64, field: 20, packed: packed)
        writer.writeRepeatedUInt32(rUInt32, field: 21, packed: packed)
        writer.writeRepeatedUInt64(rUInt64, field: 22, packed: packed)
        writer.writeRepeatedSInt32(rSInt32, field: 23, packed: packed)
        writer.writeRepeatedSInt64(rSInt64, field: 24, packed: packed)
        writer.writeRepeatedFixed32(rFixed32, field: 25, packed: packed)
        writer.writeRepeatedFixed64(rFixed64, field: 26, packed: packed)
        writer.writeRepeatedSFixed32(rSFixed32, field: 27, packed: packed)
        writer.writeRepeatedSFixed64(rSFixed64Unpacked, field: 28, packed: encodesUnpacked)
        writer.writeRepeatedBool(rBool, field: 29, packed: packed)
        writer.writeRepeatedFloat(rFloat, field: 30, packed: packed)
        writer.writeRepeatedDouble(rDoubleUnpacked, field: 31, packed: encodesUnpacked)
        writer.writeRepeatedEnum(rEnum, field: 32, packed: packed)
        writer.writeRepeatedString(rString, field: 33)
        writer.writeRepeatedBytes(rBytes, field: 34)
        writer.writeRepeatedMessage(rInner, field: 35)
        writer.writeMap(mString, field: 36)
        writer.writeMap(mInt32, field: 37)
        writer.writeString(fMaxField, field: ProtobufLimits.maxFieldNumber)
    }
}

/// A message that declares only field 14 of `AllKinds`, for checking that unknown fields are skipped.
struct OnlyString: ProtobufMessage, Equatable {
    var fString = ""

    init() {}

    mutating func merge(from reader: inout ProtobufReader) throws {
        while let field = try reader.nextField() {
            switch field {
            case 14: fString = try reader.readString()
            default: try reader.skipField()
            }
        }
    }

    func encode(to writer: inout ProtobufWriter) {
        writer.writeString(fString, field: 14)
    }
}

/// The cases of codec_fixtures.py, built in Swift under the same names.
enum CodecCases {
    static let all: [String: AllKinds] = {
        var cases: [String: AllKinds] = ["empty": AllKinds()]

        var positive = AllKinds()
        positive.fInt32 = 150
        positive.fInt64 = 1 << 40
        positive.fUInt32 = 300
        positive.fUInt64 = 1 << 63
        positive.fSInt32 = 63
        positive.fSInt64 = 1 << 50
        positive.fFixed32 = 0xDEAD_BEEF
        positive.fFixed64 = 0x0123_4567_89AB_CDEF
        positive.fSFixed32 = 7
        positive.fSFixed64 = 1 << 60
        positive.fBool = true
        positive.fFloat = 1.5
        positive.fDouble = 3.141592653589793
        positive.fEnum = .green
        cases["positive_scalars"] = positive

        var negative = AllKinds()
        negative.fInt32 = -1
        negative.fInt64 = .min
        negative.fSInt32 = .min
        negative.fSInt64 = .min
        negative.fSFixed32 = -2
        negative.fSFixed64 = -3
        negative.fFloat = -0.25
        negative.fDouble = -1e300
        cases["negative_scalars"] = negative

        var extreme = AllKinds()
        extreme.fInt32 = .max
        extreme.fInt64 = .max
        extreme.fUInt32 = .max
        extreme.fUInt64 = .max
        extreme.fSInt32 = .max
        extreme.fSInt64 = .max
        extreme.fFixed32 = .max
        extreme.fFixed64 = .max
        extreme.fSFixed32 = .min
        extreme.fSFixed64 = .min
        extreme.fFloat = -0.0
        extreme.fDouble = .leastNonzeroMagnitude
        cases["extreme_scalars"] = extreme

        var strings = AllKinds()
        strings.fString = "h\u{e9}llo, \u{4e16}\u{754c} \u{1F680}"
        strings.fBytes = [0x00, 0xFF, 0x80, 0x7F, 0x0A]
        strings.fMaxField = "last"
        cases["strings_and_bytes"] = strings

        var large = AllKinds()
        large.fBytes = (0..<70000).map { UInt8($0 % 251) }
        cases["large_bytes"] = large

        var nested = AllKinds()
        nested.fInner = Inner(
            id: 1, label: String(repeating: "a", count: 200), child: Inner(id: 2, child: Inner(label: "leaf")))
        nested.fEnum = .unrecognized(7)
        cases["nested"] = nested

        var emptyNested = AllKinds()
        emptyNested.fInner = Inner()
        cases["empty_nested"] = emptyNested

        var repeated = AllKinds()
        repeated.rInt32 = [0, 1, -1, 150, .max, .min]
        repeated.rInt32Unpacked = [3, -270, 86942]
        repeated.rInt64 = [.min, 0, .max]
        repeated.rUInt32 = [0, .max]
        repeated.rUInt64 = [1, .max]
        repeated.rSInt32 = [-1, 1, -64, 64]
        repeated.rSInt64 = [.min, .max]
        repeated.rFixed32 = [1, 0xFFFF_FFFF]
        repeated.rFixed64 = [2, .max]
        repeated.rSFixed32 = [-1, 1]
        repeated.rSFixed64Unpacked = [-5, 5]
        repeated.rBool = [true, false, true]
        repeated.rFloat = [0.5, -2.0]
        repeated.rDoubleUnpacked = [1.25, -0.0]
        repeated.rEnum = [.red, .unspecified, .unrecognized(9)]
        repeated.rString = ["", "one", "tw\u{f6}"]
        repeated.rBytes = [[], [0x00, 0x01]]
        repeated.rInner = [Inner(id: 1), Inner(), Inner(label: "x")]
        cases["repeated"] = repeated

        var maps = AllKinds()
        maps.mString = ["PATH": "/usr/bin:/bin", "": "empty key", "EMPTY": "", "\u{fc}": "\u{e9}"]
        maps.mInt32 = ["a": 1, "minus": -5, "zero": 0]
        cases["maps"] = maps

        return cases
    }()

    /// Cases whose Swift encoding must equal Python's byte for byte. Map entries may be
    /// written in any order and with or without default keys and values, so "maps" is
    /// compared by parsed value only.
    static let byteExact: Set<String> = Set(all.keys).subtracting(["maps"])
}
