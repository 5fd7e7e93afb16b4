import GRPCLite
import TestSupport
import XCTest

/// Round trips of every field kind against Python protobuf, an independent implementation.
final class ProtobufInteropTests: XCTestCase {
    private let script = FixturePython.packageRoot.appendingPathComponent(
        "Tests/GRPCLiteTests/Fixtures/protobuf/codec_fixtures.py")

    func testDecodesPythonEncodings() throws {
        let pythonCases = try FixturePython.emit(script: script)
        XCTAssertEqual(Set(pythonCases.keys), Set(CodecCases.all.keys), "python and swift case names differ")

        for (name, bytes) in pythonCases.sorted(by: { $0.key < $1.key }) {
            guard let expected = CodecCases.all[name] else { continue }
            XCTAssertNoThrow(
                try {
                    let decoded = try AllKinds(serializedBytes: bytes)
                    XCTAssertEqual(decoded, expected, "case \(name): decoded value differs from the swift case")
                }(), "case \(name)")
        }
    }

    func testEncodesPythonBytesExactly() throws {
        let pythonCases = try FixturePython.emit(script: script)

        for name in CodecCases.byteExact.sorted() {
            let encoded = CodecCases.all[name]!.serializedBytes()
            XCTAssertEqual(
                FixturePython.hex(encoded), FixturePython.hex(pythonCases[name] ?? []),
                "case \(name): swift bytes differ from python bytes")
        }
    }

    func testPythonParsesSwiftEncodings() throws {
        let encoded = CodecCases.all.mapValues { $0.serializedBytes() }

        let results = try FixturePython.check(script: script, encoded: encoded)

        XCTAssertEqual(Set(results.keys), Set(encoded.keys))
        for (name, mismatch) in results.sorted(by: { $0.key < $1.key }) {
            XCTAssertNil(mismatch ?? nil, "case \(name)")
        }
    }

    func testPythonParsesUnpackedSwiftEncodings() throws {
        // Parsers must accept either encoding of a packable field, whatever the .proto declares.
        let encoded = CodecCases.all.mapValues { value in
            var unpacked = value
            unpacked.encodesUnpacked = true
            return unpacked.serializedBytes()
        }

        let results = try FixturePython.check(script: script, encoded: encoded)

        for (name, mismatch) in results.sorted(by: { $0.key < $1.key }) {
            XCTAssertNil(mismatch ?? nil, "case \(name), packed fields written unpacked and vice versa")
        }
    }

    func testSkipsUnknownFieldsOfPythonEncodings() throws {
        let pythonCases = try FixturePython.emit(script: script)

        for (name, bytes) in pythonCases.sorted(by: { $0.key < $1.key }) {
            let decoded = try OnlyString(serializedBytes: bytes)
            XCTAssertEqual(decoded.fString, CodecCases.all[name]?.fString, "case \(name)")
        }
    }
}
