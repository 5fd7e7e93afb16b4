import GRPCLite
import XCTest

/// The wire format byte by byte, against the examples of the protobuf encoding guide.
final class ProtobufCodecTests: XCTestCase {
    private static let varints: [(description: String, value: UInt64, bytes: [UInt8])] = [
        ("zero takes one byte", 0, [0x00]),
        ("largest one-byte value", 127, [0x7F]),
        ("smallest two-byte value", 128, [0x80, 0x01]),
        ("300 from the encoding guide", 300, [0xAC, 0x02]),
        ("2^32", 1 << 32, [0x80, 0x80, 0x80, 0x80, 0x10]),
        ("largest value takes ten bytes", .max, Array(repeating: 0xFF, count: 9) + [0x01]),
    ]

    func testVarintEncoding() {
        for testCase in Self.varints {
            var writer = ProtobufWriter()
            writer.writeVarint(testCase.value)
            XCTAssertEqual(writer.bytes, testCase.bytes, testCase.description)
            XCTAssertEqual(ProtobufWriter.varintSize(testCase.value), testCase.bytes.count, testCase.description)
        }
    }

    func testVarintDecoding() throws {
        for testCase in Self.varints {
            // 0x20 is the tag of field 4, f_uint64.
            let decoded = try AllKinds(serializedBytes: [0x20] + testCase.bytes)
            XCTAssertEqual(decoded.fUInt64, testCase.value, testCase.description)
        }
    }

    func testZigZag() {
        let cases32: [(Int32, UInt32)] = [(0, 0), (-1, 1), (1, 2), (-2, 3), (.max, 0xFFFF_FFFE), (.min, 0xFFFF_FFFF)]
        for (value, encoded) in cases32 {
            XCTAssertEqual(ProtobufZigZag.encode32(value), encoded, "encode32(\(value))")
            XCTAssertEqual(ProtobufZigZag.decode32(encoded), value, "decode32(\(encoded))")
        }

        let cases64: [(Int64, UInt64)] = [(0, 0), (-1, 1), (1, 2), (.max, .max - 1), (.min, .max)]
        for (value, encoded) in cases64 {
            XCTAssertEqual(ProtobufZigZag.encode64(value), encoded, "encode64(\(value))")
            XCTAssertEqual(ProtobufZigZag.decode64(encoded), value, "decode64(\(encoded))")
        }
    }

    func testDefaultsNotWritten() {
        var writer = ProtobufWriter()
        writer.writeInt32(0, field: 1)
        writer.writeSInt64(0, field: 2)
        writer.writeFixed64(0, field: 3)
        writer.writeDouble(0, field: 4)
        writer.writeBool(false, field: 5)
        writer.writeString("", field: 6)
        writer.writeBytes([], field: 7)
        writer.writeEnum(Color.unspecified, field: 8)
        writer.writeMessage(Inner?.none, field: 9)
        writer.writeRepeatedInt32([], field: 10)
        writer.writeRepeatedString([], field: 11)
        writer.writeMap([String: String](), field: 12)

        XCTAssertEqual(writer.bytes, [])
        XCTAssertEqual(AllKinds().serializedBytes(), [])
    }

    func testNegativeZeroWritten() {
        var writer = ProtobufWriter()
        writer.writeDouble(-0.0, field: 1)

        XCTAssertEqual(writer.bytes, [0x09, 0, 0, 0, 0, 0, 0, 0, 0x80])
    }

    func testEmptyRepeatedElementsWritten() throws {
        var message = AllKinds()
        message.rString = [""]
        message.rBytes = [[]]

        let bytes = message.serializedBytes()

        XCTAssertEqual(bytes, [0x8A, 0x02, 0x00, 0x92, 0x02, 0x00])
        XCTAssertEqual(try AllKinds(serializedBytes: bytes), message)
    }

    func testNegativeInt32TakesTenBytes() throws {
        var writer = ProtobufWriter()
        writer.writeInt32(-1, field: 1)

        XCTAssertEqual(writer.bytes, [0x08] + Array(repeating: 0xFF, count: 9) + [0x01])
        XCTAssertEqual(try AllKinds(serializedBytes: writer.bytes).fInt32, -1)
    }

    func testWideVarintTruncatesTo32Bits() throws {
        // 2^32 + 5 as a varint, under the tags of f_int32 (field 1) and f_uint32 (field 3).
        let value: [UInt8] = [0x85, 0x80, 0x80, 0x80, 0x10]

        XCTAssertEqual(try AllKinds(serializedBytes: [0x08] + value).fInt32, 5)
        XCTAssertEqual(try AllKinds(serializedBytes: [0x18] + value).fUInt32, 5)
    }

    func testNestedLengthPrefixSizes() throws {
        // Inner content is a 1-byte tag, the label length and the label: 127, 128 and 16384 bytes
        // of content need one, two and three length bytes.
        for (labelLength, lengthBytes) in [(125, [UInt8(127)]), (126, [0x80, 0x01]), (16381, [0x80, 0x80, 0x01])] {
            var message = AllKinds()
            message.fInner = Inner(label: String(repeating: "z", count: labelLength))

            let bytes = message.serializedBytes()

            XCTAssertEqual(Array(bytes[2..<2 + lengthBytes.count]), lengthBytes, "label of \(labelLength)")
            XCTAssertEqual(try AllKinds(serializedBytes: bytes), message, "label of \(labelLength)")
        }
    }

    func testPackedAndUnpackedDecodeAlike() throws {
        var message = CodecCases.all["repeated"]!
        message.encodesUnpacked = true
        let unpacked = message.serializedBytes()
        message.encodesUnpacked = false
        let packed = message.serializedBytes()

        XCTAssertNotEqual(unpacked, packed)
        XCTAssertEqual(try AllKinds(serializedBytes: unpacked), message)
        XCTAssertEqual(try AllKinds(serializedBytes: packed), message)
    }

    func testPackedAndUnpackedRunsConcatenate() throws {
        var writer = ProtobufWriter()
        writer.writeRepeatedInt32([1, 2], field: 18, packed: true)
        writer.writeRepeatedInt32([3], field: 18, packed: false)
        writer.writeRepeatedInt32([4, 5], field: 18, packed: true)

        XCTAssertEqual(try AllKinds(serializedBytes: writer.bytes).rInt32, [1, 2, 3, 4, 5])
    }

    func testRepeatedOccurrencesMerge() throws {
        // A scalar that occurs twice keeps the last value; a message merges field by field.
        var writer = ProtobufWriter()
        writer.writeInt32(1, field: 1)
        writer.writeMessage(Inner(id: 5), field: 17)
        writer.writeInt32(2, field: 1)
        writer.writeMessage(Inner(label: "x"), field: 17)

        let decoded = try AllKinds(serializedBytes: writer.bytes)

        XCTAssertEqual(decoded.fInt32, 2)
        XCTAssertEqual(decoded.fInner, Inner(id: 5, label: "x"))
    }

    func testMapEntryDefaultsAndDuplicates() throws {
        // Entry without key, entry without value, then a duplicate key that replaces the first.
        let bytes: [UInt8] =
            [0xA2, 0x02, 0x03, 0x12, 0x01, 0x76]
            + [0xA2, 0x02, 0x03, 0x0A, 0x01, 0x6B]
            + [0xA2, 0x02, 0x06, 0x0A, 0x01, 0x6B, 0x12, 0x01, 0x77]

        let decoded = try AllKinds(serializedBytes: bytes)

        XCTAssertEqual(decoded.mString, ["": "v", "k": "w"])
    }

    func testUnknownEnumPreserved() throws {
        var message = AllKinds()
        message.fEnum = .unrecognized(-3)
        message.rEnum = [.unrecognized(1000)]

        let decoded = try AllKinds(serializedBytes: message.serializedBytes())

        XCTAssertEqual(decoded.fEnum, .unrecognized(-3))
        XCTAssertEqual(decoded.rEnum, [.unrecognized(1000)])
    }

    func testLengthDelimitedHeaderPlusPayload() throws {
        let payload = (0..<300).map { UInt8($0 & 0xFF) }
        var header = ProtobufWriter()
        header.writeString("before", field: 14)
        header.writeLengthDelimitedHeader(field: 15, length: payload.count)

        let decoded = try AllKinds(serializedBytes: header.bytes + payload)

        XCTAssertEqual(decoded.fString, "before")
        XCTAssertEqual(decoded.fBytes, payload)
    }

    func testReaderExposesTag() throws {
        var reader = ProtobufReader(bytes: [0x3D, 1, 0, 0, 0, 0xA2, 0x06, 0x00])

        XCTAssertEqual(try reader.nextField(), 7)
        XCTAssertEqual(reader.wireType, .fixed32)
        XCTAssertEqual(try reader.readFixed32(), 1)
        XCTAssertEqual(try reader.nextField(), 100)
        XCTAssertEqual(reader.wireType, .lengthDelimited)
        try reader.skipField()
        XCTAssertTrue(reader.isAtEnd)
        XCTAssertNil(try reader.nextField())
    }

    func testHealthMessages() throws {
        XCTAssertEqual(HealthCheckRequest(service: "x").serializedBytes(), [0x0A, 0x01, 0x78])
        XCTAssertEqual(HealthCheckResponse(status: .serving).serializedBytes(), [0x08, 0x01])
        XCTAssertEqual(HealthCheckResponse(status: .unknown).serializedBytes(), [])
        XCTAssertEqual(try HealthCheckRequest(serializedBytes: [0x0A, 0x01, 0x78]).service, "x")
        XCTAssertEqual(try HealthCheckResponse(serializedBytes: [0x08, 0x02]).status, .notServing)
        XCTAssertEqual(try HealthCheckResponse(serializedBytes: [0x08, 0x03]).status, .serviceUnknown)
        XCTAssertEqual(try HealthCheckResponse(serializedBytes: [0x08, 0x09]).status, .unrecognized(9))
        XCTAssertEqual(HealthService.check, "/grpc.health.v1.Health/Check")
    }
}
