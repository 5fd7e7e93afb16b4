import XCTest

@testable import GRPCLite

/// Status codes, grpc-message percent-encoding and grpc-timeout parsing, as tables.
final class StatusTests: XCTestCase {
    func testCodeNamesAndValues() {
        let table: [(Status.Code, Int, String)] = [
            (.ok, 0, "OK"), (.cancelled, 1, "CANCELLED"), (.unknown, 2, "UNKNOWN"),
            (.invalidArgument, 3, "INVALID_ARGUMENT"), (.deadlineExceeded, 4, "DEADLINE_EXCEEDED"),
            (.notFound, 5, "NOT_FOUND"), (.alreadyExists, 6, "ALREADY_EXISTS"),
            (.permissionDenied, 7, "PERMISSION_DENIED"), (.resourceExhausted, 8, "RESOURCE_EXHAUSTED"),
            (.failedPrecondition, 9, "FAILED_PRECONDITION"), (.aborted, 10, "ABORTED"),
            (.outOfRange, 11, "OUT_OF_RANGE"),
            (.unimplemented, 12, "UNIMPLEMENTED"), (.internal, 13, "INTERNAL"), (.unavailable, 14, "UNAVAILABLE"),
            (.dataLoss, 15, "DATA_LOSS"), (.unauthenticated, 16, "UNAUTHENTICATED"),
        ]
        XCTAssertEqual(Status.Code.allCases.count, 17)
        for (code, value, name) in table {
            XCTAssertEqual(code.rawValue, value, name)
            XCTAssertEqual(code.name, name)
            XCTAssertEqual(Status.Code(rawValue: value), code, name)
        }
        XCTAssertNil(Status.Code(rawValue: 17))
        XCTAssertNil(Status.Code(rawValue: -1))
    }

    func testTrailerParsing() {
        let table: [(description: String, status: String?, message: String?, expected: Status)] = [
            ("ok without message", "0", nil, Status(.ok)),
            ("not found with message", "5", "no job \"x\"", Status(.notFound, "no job \"x\"")),
            ("encoded message", "3", "caf%C3%A9 50%25", Status(.invalidArgument, "café 50%")),
            ("missing status", nil, nil, Status(.unknown, "invalid grpc-status none in the response trailers")),
            ("out of range", "17", nil, Status(.unknown, "invalid grpc-status \"17\" in the response trailers")),
            ("not a number", "x", "m", Status(.unknown, "invalid grpc-status \"x\" in the response trailers: m")),
            ("plus sign", "+0", nil, Status(.unknown, "invalid grpc-status \"+0\" in the response trailers")),
            ("minus sign", "-0", nil, Status(.unknown, "invalid grpc-status \"-0\" in the response trailers")),
            ("empty", "", nil, Status(.unknown, "invalid grpc-status \"\" in the response trailers")),
            ("leading zero", "05", nil, Status(.notFound)),
        ]
        for row in table {
            XCTAssertEqual(
                Status.parse(statusValue: row.status, messageValue: row.message), row.expected, row.description)
        }
    }

    func testHTTPStatusMapping() {
        let table: [(Int, Status.Code)] = [
            (400, .internal), (401, .unauthenticated), (403, .permissionDenied), (404, .unimplemented),
            (429, .unavailable), (502, .unavailable), (503, .unavailable), (504, .unavailable), (500, .unknown),
        ]
        for (http, code) in table {
            XCTAssertEqual(Status.fromHTTPStatus(http).code, code, "HTTP \(http)")
        }
    }

    func testPercentEncoding() {
        let table: [(description: String, plain: String, encoded: String)] = [
            ("printable ASCII unchanged", "job 42 not found", "job 42 not found"),
            ("percent sign", "50%", "50%25"),
            ("two-byte UTF-8", "café", "caf%C3%A9"),
            ("three-byte UTF-8", "☃", "%E2%98%83"),
            ("newline and tab", "a\nb\tc", "a%0Ab%09c"),
            ("quotes and colon kept", "invalid \"x\": y", "invalid \"x\": y"),
            ("DEL", "\u{7F}", "%7F"),
            ("empty", "", ""),
        ]
        for row in table {
            XCTAssertEqual(PercentEncoding.encode(row.plain), row.encoded, row.description)
            XCTAssertEqual(PercentEncoding.decode(row.encoded), row.plain, row.description)
        }
    }

    func testPercentEncodingCutsLongMessages() {
        let long = String(repeating: "é", count: 10_000)

        let encoded = PercentEncoding.encode(long, maxBytes: 100)

        XCTAssertLessThanOrEqual(encoded.utf8.count, 100)
        XCTAssertTrue(encoded.hasSuffix(PercentEncoding.truncationMarker), encoded)
        XCTAssertTrue(encoded.hasPrefix("%C3%A9"), encoded)
        XCTAssertFalse(
            encoded.dropLast(PercentEncoding.truncationMarker.count).hasSuffix("%C3"),
            "the cut must not split a character: \(encoded)")
    }

    func testTrailersBoundTheMessage() {
        let status = Status(.failedPrecondition, String(repeating: "x", count: 200_000))

        let trailers = ServerCall.trailers(for: status)

        let message = trailers.first { $0.0 == "grpc-message" }?.1 ?? ""
        XCTAssertLessThanOrEqual(message.utf8.count, ServerCall.maxEncodedMessageBytes)
        XCTAssertTrue(message.hasSuffix(PercentEncoding.truncationMarker))
    }

    func testPercentDecodingKeepsMalformedSequences() {
        let table: [(description: String, encoded: String, plain: String)] = [
            ("truncated", "50%2", "50%2"),
            ("not hex", "%zz", "%zz"),
            ("lower-case hex", "caf%c3%a9", "café"),
            ("percent at end", "%", "%"),
        ]
        for row in table {
            XCTAssertEqual(PercentEncoding.decode(row.encoded), row.plain, row.description)
        }
    }

    func testTimeoutParsing() {
        let table: [(value: String, expected: Duration?)] = [
            ("1H", .seconds(3600)), ("2M", .seconds(120)), ("30S", .seconds(30)), ("100m", .milliseconds(100)),
            ("250u", .microseconds(250)), ("99999999n", .nanoseconds(99_999_999)), ("0S", .zero),
            ("", nil), ("S", nil), ("10", nil), ("10s", nil), ("-1S", nil), ("1.5S", nil), ("123456789S", nil),
            (" 1S", nil),
        ]
        for row in table {
            XCTAssertEqual(GRPCTimeout(headerValue: row.value)?.duration, row.expected, "grpc-timeout \"\(row.value)\"")
        }
    }

    func testTimeoutEncodingRoundsUp() {
        let table: [(Duration, String)] = [
            (.nanoseconds(1), "1n"), (.milliseconds(300), "300000u"), (.seconds(1), "1000000u"),
            (.seconds(100), "100000m"), (.seconds(100_000), "100000S"), (.seconds(360_000_000), "6000000M"),
            (.nanoseconds(100_000_001), "100001u"),
        ]
        for (duration, value) in table {
            XCTAssertEqual(GRPCTimeout(duration).headerValue, value, "\(duration)")
            let parsed = GRPCTimeout(headerValue: value)?.duration
            XCTAssertNotNil(parsed)
            XCTAssertGreaterThanOrEqual(parsed ?? .zero, duration, "\(value) must not shorten \(duration)")
        }
    }

    func testDeframer() throws {
        var deframer = MessageDeframer(maxMessageSize: 10)
        let messages: [[UInt8]] = [[], [1, 2, 3], Array(repeating: 9, count: 10)]
        var stream: [UInt8] = []
        for message in messages {
            stream += MessageFraming.frame(message)
        }
        // Feed one byte at a time: a message may be split anywhere.
        var decoded: [[UInt8]] = []
        for byte in stream {
            deframer.append([byte])
            while let message = try deframer.next() {
                decoded.append(message)
            }
        }
        XCTAssertEqual(decoded, messages)
        XCTAssertEqual(deframer.bufferedBytes, 0)
    }

    func testDeframerRejectsOversizeAndCompressed() {
        var oversize = MessageDeframer(maxMessageSize: 10)
        oversize.append(MessageFraming.prefix(length: 11))
        XCTAssertThrowsError(try oversize.next()) { error in
            XCTAssertEqual((error as? Status)?.code, .resourceExhausted)
        }

        var compressed = MessageDeframer(maxMessageSize: 10)
        compressed.append([1, 0, 0, 0, 1, 0])
        XCTAssertThrowsError(try compressed.next()) { error in
            XCTAssertEqual((error as? Status)?.code, .unimplemented)
        }
    }
}
