import GRPCLite
import JobAPI
import TestSupport
import XCTest

/// jobworker.v1 messages against Python protobuf code generated from proto/jobworker/v1/jobworker.proto.
final class JobAPIInteropTests: XCTestCase {
    private let script = FixturePython.packageRoot.appendingPathComponent(
        "Tests/JobAPITests/Fixtures/jobapi_fixtures.py")

    func testDecodesPythonEncodings() throws {
        let pythonCases = try FixturePython.emit(script: script)
        XCTAssertEqual(Set(pythonCases.keys), Set(APICases.all.map(\.name)), "python and swift case names differ")

        for apiCase in APICases.all {
            guard let bytes = pythonCases[apiCase.name] else { continue }
            XCTAssertNil(try apiCase.mismatch(bytes), "case \(apiCase.name)")
        }
    }

    func testEncodesPythonBytesExactly() throws {
        let pythonCases = try FixturePython.emit(script: script)

        for apiCase in APICases.all where APICases.byteExactNames.contains(apiCase.name) {
            XCTAssertEqual(
                FixturePython.hex(apiCase.encoded), FixturePython.hex(pythonCases[apiCase.name] ?? []),
                "case \(apiCase.name): swift bytes differ from python bytes")
        }
    }

    func testPythonParsesSwiftEncodings() throws {
        var encoded: [String: [UInt8]] = [:]
        for apiCase in APICases.all {
            encoded[apiCase.name] = apiCase.encoded
        }

        let results = try FixturePython.check(script: script, encoded: encoded)

        XCTAssertEqual(Set(results.keys), Set(encoded.keys))
        for (name, mismatch) in results.sorted(by: { $0.key < $1.key }) {
            XCTAssertNil(mismatch ?? nil, "case \(name)")
        }
    }

    func testPythonParsesStreamPrefixPlusPayload() throws {
        // The server sends serializedPrefix and the shared chunk as two buffers. Together
        // they must parse as the same message as a plain encoding.
        let large =
            Jobworker_V1_StreamResponse.serializedPrefix(
                stream: .stdout, dataCount: APICases.stdoutChunk.count) + APICases.stdoutChunk
        let payload = [0x00] + Array("err\n".utf8)
        let small = Jobworker_V1_StreamResponse.serializedPrefix(stream: .stderr, dataCount: payload.count) + payload

        let results = try FixturePython.check(
            script: script, encoded: ["stream_stdout": large, "stream_stderr_small": small])

        XCTAssertNil(results["stream_stdout"] ?? "missing", "stream_stdout from prefix + payload")
        XCTAssertNil(results["stream_stderr_small"] ?? "missing", "stream_stderr_small from prefix + payload")
    }
}
