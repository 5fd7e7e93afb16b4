import Foundation
import Glibc
import Reactor
import XCTest

@testable import Jobs

final class OutputLogFormatTests: XCTestCase {
    func testHeaderRoundTrip() {
        let cases: [(stream: Jobs.OutputStream, length: Int)] = [(.stdout, 1), (.stderr, 65536), (.stdout, 300)]
        for testCase in cases {
            let header = OutputLogFormat.header(stream: testCase.stream, length: testCase.length)
            let decoded = header.withUnsafeBytes { OutputLogFormat.decodeHeader($0) }
            XCTAssertEqual(decoded?.stream, testCase.stream, "\(testCase)")
            XCTAssertEqual(decoded?.length, testCase.length, "\(testCase)")
        }
    }

    func testInvalidHeadersAreRejected() {
        let cases: [(description: String, bytes: [UInt8])] = [
            ("zero header: not written yet", [0, 0, 0, 0, 0, 0, 0, 0]),
            ("unknown stream tag", [3, 0, 0, 0, 1, 0, 0, 0]),
            ("reserved bytes set", [1, 0, 1, 0, 1, 0, 0, 0]),
            ("zero length", [1, 0, 0, 0, 0, 0, 0, 0]),
            ("length above 64 KiB", [1, 0, 0, 0, 1, 0, 1, 0]),
            ("short header", [1, 0, 0, 0, 1]),
        ]
        for testCase in cases {
            XCTAssertNil(testCase.bytes.withUnsafeBytes { OutputLogFormat.decodeHeader($0) }, testCase.description)
        }
    }

    func testReaderStopsAtTornTail() throws {
        let record1 = OutputLogFormat.header(stream: .stdout, length: 5) + Array("hello".utf8)
        let record2 = OutputLogFormat.header(stream: .stderr, length: 3) + Array("abc".utf8)
        let cases: [(description: String, tail: [UInt8])] = [
            ("no tail", []),
            ("half a header", [1, 0, 0]),
            ("payload shorter than its length", OutputLogFormat.header(stream: .stdout, length: 100) + [1, 2, 3]),
            ("hole of zeros left by a later record", [UInt8](repeating: 0, count: 20) + record2),
        ]
        for testCase in cases {
            let path = NSTemporaryDirectory() + "jobs-log-\(getpid())-\(UUID().uuidString.prefix(8))"
            defer { unlink(path) }
            try Data(OutputLogFormat.magic + record1 + record2 + testCase.tail).write(to: URL(fileURLWithPath: path))
            let fd = open(path, O_RDONLY)
            defer { close(fd) }
            let reader = OutputLogReader(fd: fd, path: path)

            XCTAssertNoThrow(try reader.validateMagic(), testCase.description)
            let end = try reader.endOfCompleteRecords()
            XCTAssertEqual(end, UInt64(8 + record1.count + record2.count), testCase.description)
            let first = try reader.record(at: 8)
            XCTAssertEqual(first?.stream, .stdout, testCase.description)
            XCTAssertEqual(first?.bytes.array, Array("hello".utf8), testCase.description)
            let second = try reader.record(at: try XCTUnwrap(first?.nextOffset))
            XCTAssertEqual(second?.stream, .stderr, testCase.description)
            XCTAssertEqual(second?.bytes.array, Array("abc".utf8), testCase.description)
            XCTAssertNil(try reader.record(at: end), testCase.description)
        }
    }

    func testWrongMagicIsReported() throws {
        let path = NSTemporaryDirectory() + "jobs-log-\(getpid())-magic"
        defer { unlink(path) }
        try Data("not a log".utf8).write(to: URL(fileURLWithPath: path))
        let fd = open(path, O_RDONLY)
        defer { close(fd) }
        XCTAssertThrowsError(try OutputLogReader(fd: fd, path: path).validateMagic()) { error in
            XCTAssertEqual((error as? JobError)?.kind, .corruptLog)
        }
    }
}

final class OutputRingTests: XCTestCase {
    private func chunk(at offset: UInt64, size: Int) -> OutputChunk {
        OutputChunk(offset: offset, stream: .stdout, bytes: SharedBytes([UInt8](repeating: 7, count: size)))
    }

    func testEvictsOnlyDurableChunksBeyondCapacity() {
        var ring = OutputRing(capacity: 100)
        var offset = OutputLogFormat.firstRecordOffset
        var offsets: [UInt64] = []
        for _ in 0..<5 {
            let next = chunk(at: offset, size: 40)
            offsets.append(offset)
            ring.append(next)
            offset = next.nextOffset
        }
        XCTAssertEqual(ring.byteCount, 200)

        ring.evict(durableOffset: offsets[0])
        XCTAssertEqual(ring.count, 5, "nothing is durable: nothing may leave")

        ring.evict(durableOffset: offset)
        XCTAssertEqual(ring.byteCount, 80, "down to capacity once durable")
        XCTAssertEqual(ring.firstOffset, offsets[3])
        XCTAssertNil(ring.chunk(at: offsets[2]))
        XCTAssertEqual(ring.chunk(at: offsets[4])?.offset, offsets[4])
        XCTAssertNil(ring.chunk(at: offsets[4] + 1), "offsets inside a record are not chunk starts")
    }
}
