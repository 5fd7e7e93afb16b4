import GRPCLite
import JobAPI
import TestSupport
import XCTest

final class JobAPITests: XCTestCase {
    func testMethodPaths() {
        XCTAssertEqual(JobService.start, "/jobworker.v1.JobService/Start")
        XCTAssertEqual(JobService.stop, "/jobworker.v1.JobService/Stop")
        XCTAssertEqual(JobService.query, "/jobworker.v1.JobService/Query")
        XCTAssertEqual(JobService.list, "/jobworker.v1.JobService/List")
        XCTAssertEqual(JobService.stream, "/jobworker.v1.JobService/Stream")
        XCTAssertEqual(JobService.allMethods.count, 5)
    }

    func testMethodPathsMatchProto() throws {
        // The descriptor must name every rpc of the .proto, which is the source of truth.
        let proto = try String(
            contentsOf: FixturePython.packageRoot.appendingPathComponent("proto/jobworker/v1/jobworker.proto"),
            encoding: .utf8)
        let rpcNames = proto.split(separator: "\n").compactMap { line -> String? in
            let words = line.split(whereSeparator: { $0 == " " || $0 == "(" })
            guard words.first == "rpc", words.count > 1 else { return nil }
            return String(words[1])
        }

        XCTAssertEqual(rpcNames.map { "/jobworker.v1.JobService/\($0)" }, JobService.allMethods)
    }

    func testStreamPrefixDecodesWithPayload() throws {
        let payload: [UInt8] = Array(repeating: 0xAB, count: 200)

        let prefix = Jobworker_V1_StreamResponse.serializedPrefix(stream: .stderr, dataCount: payload.count)
        let decoded = try Jobworker_V1_StreamResponse(serializedBytes: prefix + payload)

        XCTAssertEqual(prefix, [0x10, 0x02, 0x0A, 0xC8, 0x01], "stream field, then data tag and length 200")
        XCTAssertEqual(decoded.data, payload)
        XCTAssertEqual(decoded.stream, .stderr)
        XCTAssertNil(decoded.finalStatus)
    }

    func testStreamPrefixWithoutData() throws {
        let prefix = Jobworker_V1_StreamResponse.serializedPrefix(stream: .stdout, dataCount: 0)

        XCTAssertEqual(prefix, [0x10, 0x01])
        XCTAssertEqual(try Jobworker_V1_StreamResponse(serializedBytes: prefix).data, [])
    }

    func testEnumsKeepUnknownNumbers() {
        XCTAssertEqual(Jobworker_V1_JobState(rawValue: 3), .stopped)
        XCTAssertEqual(Jobworker_V1_JobState(rawValue: 12), .unrecognized(12))
        XCTAssertEqual(Jobworker_V1_JobState.unrecognized(12).rawValue, 12)
        XCTAssertEqual(Jobworker_V1_OutputStream(rawValue: 2), .stderr)
        XCTAssertEqual(Jobworker_V1_OutputStream(rawValue: -1), .unrecognized(-1))
    }

    func testMalformedRequestThrows() {
        // job_id (field 1) sent as a varint, as a confused client might.
        XCTAssertThrowsError(try Jobworker_V1_QueryRequest(serializedBytes: [0x08, 0x01])) { error in
            XCTAssertEqual((error as? ProtobufError)?.kind, .wrongWireType)
        }
    }
}
