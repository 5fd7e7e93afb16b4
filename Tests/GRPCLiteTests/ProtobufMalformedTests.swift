import GRPCLite
import XCTest

/// Malformed inputs must throw a `ProtobufError` of the right kind, never trap or hang.
final class ProtobufMalformedTests: XCTestCase {
    private struct Case {
        let description: String
        let bytes: [UInt8]
        let kind: ProtobufError.Kind
        /// A fragment the error message must contain, so it names the field or value.
        let messageFragment: String
    }

    /// Field tags of AllKinds used below, encoded as varints.
    private enum Tag {
        static let int32Varint = tag(1, .varint)
        static let int32Length = tag(1, .lengthDelimited)
        static let fixed32 = tag(7, .fixed32)
        static let fixed64 = tag(8, .fixed64)
        static let stringLength = tag(14, .lengthDelimited)
        static let stringVarint = tag(14, .varint)
        static let innerLength = tag(17, .lengthDelimited)
        static let innerFixed32 = tag(17, .fixed32)
        static let packedInt32 = tag(18, .lengthDelimited)
        static let packedFixed32 = tag(25, .lengthDelimited)
        static let repeatedFixed32Varint = tag(25, .varint)
        static let packedFixed64 = tag(26, .lengthDelimited)
        static let mapString = tag(36, .lengthDelimited)
        static let unknownLength = tag(100, .lengthDelimited)
        static let unknownFixed64 = tag(100, .fixed64)
        static let unknownFixed32 = tag(100, .fixed32)
        static let unknownVarint = tag(100, .varint)

        static func tag(_ field: Int, _ wireType: ProtobufWireType) -> [UInt8] {
            var writer = ProtobufWriter()
            writer.writeTag(field: field, wireType: wireType)
            return writer.bytes
        }

        /// Returns a tag with a raw wire type number, including the invalid ones the writer cannot produce.
        static func raw(_ field: UInt8, wireType: UInt8) -> [UInt8] {
            precondition(field < 16, "one-byte tags only")
            return [field << 3 | wireType]
        }
    }

    private static let cases: [Case] = [
        Case(
            description: "varint value cut off by the end of input", bytes: Tag.int32Varint + [0x80],
            kind: .truncatedVarint, messageFragment: "truncated varint"),
        Case(
            description: "tag cut off by the end of input", bytes: [0x80],
            kind: .truncatedVarint, messageFragment: "truncated varint"),
        Case(
            description: "varint of 11 bytes", bytes: Tag.int32Varint + Array(repeating: 0xFF, count: 10) + [0x01],
            kind: .varintTooLong, messageFragment: "longer than 10 bytes"),
        Case(
            description: "tag varint of 11 bytes", bytes: Array(repeating: 0x80, count: 11) + [0x01],
            kind: .varintTooLong, messageFragment: "longer than 10 bytes"),
        Case(
            description: "string length past the end", bytes: Tag.stringLength + [0x05, 0x61],
            kind: .truncated, messageFragment: "field 14 has length 5 but only 1 byte(s) remain"),
        Case(
            description: "string length of 2^63", bytes: Tag.stringLength + Array(repeating: 0x80, count: 9) + [0x01],
            kind: .truncated, messageFragment: "field 14 has length 9223372036854775808"),
        Case(
            description: "string length of 2^64 - 1",
            bytes: Tag.stringLength + Array(repeating: 0xFF, count: 9) + [0x01],
            kind: .truncated, messageFragment: "field 14 has length 18446744073709551615"),
        Case(
            description: "fixed32 cut off", bytes: Tag.fixed32 + [0x01, 0x02],
            kind: .truncated, messageFragment: "field 7 needs 4 bytes but only 2"),
        Case(
            description: "fixed64 cut off", bytes: Tag.fixed64 + [0x01, 0x02, 0x03, 0x04, 0x05],
            kind: .truncated, messageFragment: "field 8 needs 8 bytes but only 5"),
        Case(
            description: "int32 field sent as LEN", bytes: Tag.int32Length + [0x00],
            kind: .wrongWireType, messageFragment: "field 1 has wire type LEN, expected VARINT for a int32 field"),
        Case(
            description: "string field sent as VARINT", bytes: Tag.stringVarint + [0x01],
            kind: .wrongWireType, messageFragment: "field 14 has wire type VARINT, expected LEN for a string field"),
        Case(
            description: "message field sent as I32", bytes: Tag.innerFixed32 + [0x00, 0x00, 0x00, 0x00],
            kind: .wrongWireType, messageFragment: "field 17 has wire type I32, expected LEN for a message field"),
        Case(
            description: "repeated fixed32 sent as VARINT", bytes: Tag.repeatedFixed32Varint + [0x01],
            kind: .wrongWireType, messageFragment: "expected I32 for a fixed32 field"),
        Case(
            description: "field number 0", bytes: [0x00, 0x01],
            kind: .invalidFieldNumber, messageFragment: "field number 0 is invalid"),
        Case(
            description: "field number 2^29, one past the maximum", bytes: [0x80, 0x80, 0x80, 0x80, 0x10],
            kind: .invalidFieldNumber, messageFragment: "field number 536870912 is invalid"),
        Case(
            description: "field number 2^60 from a 64-bit tag",
            bytes: Array(repeating: 0x80, count: 9) + [0x01],
            kind: .invalidFieldNumber, messageFragment: "field number 1152921504606846976 is invalid"),
        Case(
            description: "start group wire type", bytes: Tag.raw(1, wireType: 3),
            kind: .groupNotSupported, messageFragment: "field 1 uses group wire type 3"),
        Case(
            description: "end group wire type", bytes: Tag.raw(1, wireType: 4),
            kind: .groupNotSupported, messageFragment: "field 1 uses group wire type 4"),
        Case(
            description: "undefined wire type 6", bytes: Tag.raw(1, wireType: 6),
            kind: .invalidWireType, messageFragment: "wire type 6, which is undefined"),
        Case(
            description: "undefined wire type 7 on an unknown field", bytes: [0xA7, 0x06],
            kind: .invalidWireType, messageFragment: "wire type 7, which is undefined"),
        Case(
            description: "string with a stray continuation byte", bytes: Tag.stringLength + [0x02, 0x61, 0x80],
            kind: .invalidUTF8, messageFragment: "field 14 is a string but its 2 bytes are not valid UTF-8"),
        Case(
            description: "string with an overlong encoding of NUL", bytes: Tag.stringLength + [0x02, 0xC0, 0x80],
            kind: .invalidUTF8, messageFragment: "not valid UTF-8"),
        Case(
            description: "string with a UTF-16 surrogate", bytes: Tag.stringLength + [0x03, 0xED, 0xA0, 0x80],
            kind: .invalidUTF8, messageFragment: "not valid UTF-8"),
        Case(
            description: "string cut inside a multi-byte character", bytes: Tag.stringLength + [0x01, 0xC3],
            kind: .invalidUTF8, messageFragment: "not valid UTF-8"),
        Case(
            description: "invalid UTF-8 in a map key", bytes: Tag.mapString + [0x03, 0x0A, 0x01, 0xFF],
            kind: .invalidUTF8, messageFragment: "field 1 is a string"),
        Case(
            description: "invalid UTF-8 in a nested message", bytes: Tag.innerLength + [0x03, 0x12, 0x01, 0xFE],
            kind: .invalidUTF8, messageFragment: "field 2 is a string"),
        Case(
            description: "nested string longer than its message, though within the input",
            bytes: Tag.innerLength + [0x02, 0x12, 0x05, 0x61, 0x61, 0x61, 0x61, 0x61],
            kind: .truncated, messageFragment: "field 2 has length 5 but only 0 byte(s) remain"),
        Case(
            description: "nested message length past the end", bytes: Tag.innerLength + [0x09, 0x08, 0x01],
            kind: .truncated, messageFragment: "field 17 has length 9 but only 2"),
        Case(
            description: "packed varint cut off by the packed length",
            bytes: Tag.packedInt32 + [0x02, 0x01, 0x80, 0x01],
            kind: .truncatedVarint, messageFragment: "truncated varint"),
        Case(
            description: "packed fixed32 length not a multiple of 4",
            bytes: Tag.packedFixed32 + [0x03, 0x01, 0x02, 0x03],
            kind: .invalidPackedLength, messageFragment: "field 25 is packed fixed32 with length 3"),
        Case(
            description: "packed fixed64 length not a multiple of 8",
            bytes: Tag.packedFixed64 + [0x04, 0x01, 0x02, 0x03, 0x04],
            kind: .invalidPackedLength, messageFragment: "expected a multiple of 8 bytes"),
        Case(
            description: "unknown LEN field past the end", bytes: Tag.unknownLength + [0x0A],
            kind: .truncated, messageFragment: "field 100 has length 10 but only 0"),
        Case(
            description: "unknown I64 field cut off", bytes: Tag.unknownFixed64 + [0x01],
            kind: .truncated, messageFragment: "field 100 needs 8 bytes"),
        Case(
            description: "unknown I32 field cut off", bytes: Tag.unknownFixed32,
            kind: .truncated, messageFragment: "field 100 needs 4 bytes"),
        Case(
            description: "unknown VARINT field cut off", bytes: Tag.unknownVarint + [0xFF],
            kind: .truncatedVarint, messageFragment: "truncated varint"),
        Case(
            description: "map entry with a truncated value", bytes: Tag.mapString + [0x04, 0x0A, 0x00, 0x12, 0x05],
            kind: .truncated, messageFragment: "field 2 has length 5 but only 0"),
        Case(
            description: "101 nested messages", bytes: nestedInner(depth: 101),
            kind: .nestingTooDeep, messageFragment: "nested more than 100 levels deep"),
    ]

    func testMalformedInputsThrow() {
        for testCase in Self.cases {
            XCTAssertThrowsError(try AllKinds(serializedBytes: testCase.bytes), testCase.description) { error in
                guard let error = error as? ProtobufError else {
                    XCTFail("\(testCase.description): threw \(type(of: error)), expected ProtobufError")
                    return
                }
                XCTAssertEqual(error.kind, testCase.kind, "\(testCase.description): \(error)")
                XCTAssertTrue(
                    error.description.contains(testCase.messageFragment),
                    "\(testCase.description): \"\(error)\" lacks \"\(testCase.messageFragment)\"")
            }
        }
    }

    func testErrorNamesOffset() {
        let bytes: [UInt8] = Tag.int32Varint + [0x01] + Tag.stringLength + [0x05, 0x61]

        XCTAssertThrowsError(try AllKinds(serializedBytes: bytes)) { error in
            XCTAssertEqual((error as? ProtobufError)?.offset, 3, "offset of the bad length prefix")
            XCTAssertEqual(
                "\(error)",
                "invalid protobuf message at byte 3: field 14 has length 5 but only 1 byte(s) remain in the message")
        }
    }

    func testNestingAtMaxDepthDecodes() throws {
        // AllKinds.f_inner is level 1, so 100 levels of messages in total.
        let decoded = try AllKinds(serializedBytes: Self.nestedInner(depth: 100))

        var depth = 0
        var inner = decoded.fInner
        while let current = inner {
            depth += 1
            inner = current.child
        }
        XCTAssertEqual(depth, 100)
    }

    func testSmallerMaxDepthApplies() {
        var reader = ProtobufReader(bytes: Self.nestedInner(depth: 3), maxDepth: 2)

        XCTAssertThrowsError(try AllKinds(from: &reader)) { error in
            XCTAssertEqual((error as? ProtobufError)?.kind, .nestingTooDeep)
        }
    }

    func testEveryTruncationThrowsOrDecodes() throws {
        // Cutting a valid encoding anywhere must end in a thrown error or a shorter message.
        // A trap would crash the test process.
        for (name, value) in CodecCases.all where name != "large_bytes" {
            let bytes = value.serializedBytes()
            for length in 0..<bytes.count {
                do {
                    _ = try AllKinds(serializedBytes: Array(bytes[..<length]))
                } catch is ProtobufError {
                    continue
                } catch {
                    XCTFail("case \(name) cut to \(length) bytes threw \(error), expected ProtobufError")
                }
            }
        }
    }

    func testRandomMutationsThrowOrDecode() {
        // A fixed-seed generator keeps failures reproducible.
        var generator = SplitMix64(seed: 0x5EED)
        let seeds = CodecCases.all.filter { $0.key != "large_bytes" }.sorted { $0.key < $1.key }.map {
            $0.value.serializedBytes()
        }

        for iteration in 0..<20_000 {
            var bytes = seeds[iteration % seeds.count]
            guard !bytes.isEmpty else { continue }
            for _ in 0..<(1 + Int(generator.next() % 4)) {
                let index = Int(generator.next() % UInt64(bytes.count))
                bytes[index] = UInt8(truncatingIfNeeded: generator.next())
            }
            do {
                _ = try AllKinds(serializedBytes: bytes)
            } catch is ProtobufError {
                continue
            } catch {
                XCTFail("mutation \(iteration) threw \(error), expected ProtobufError")
            }
        }
    }

    /// Returns an AllKinds encoding whose f_inner contains `depth` levels of Inner in total.
    private static func nestedInner(depth: Int) -> [UInt8] {
        var inner = Inner(id: Int32(depth))
        for level in stride(from: depth - 1, to: 0, by: -1) {
            inner = Inner(id: Int32(level), child: inner)
        }
        var message = AllKinds()
        message.fInner = inner
        return message.serializedBytes()
    }
}

/// SplitMix64 (Steele, Lea and Flood, 2014): a small seeded generator for reproducible fuzzing.
struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) {
        state = seed
    }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var value = state
        value = (value ^ (value >> 30)) &* 0xBF58_476D_1CE4_E5B9
        value = (value ^ (value >> 27)) &* 0x94D0_49BB_1331_11EB
        return value ^ (value >> 31)
    }
}
