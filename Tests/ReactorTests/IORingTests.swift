import Foundation
import Glibc
@testable import Reactor
import XCTest

final class IORingTests: XCTestCase {
    private var directory: URL!

    override func setUpWithError() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("ioring-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: directory)
    }

    private func openFile(_ name: String, flags: Int32 = O_WRONLY | O_CREAT | O_TRUNC) throws -> (Int32, String) {
        let path = directory.appendingPathComponent(name).path
        let fd = try Syscall.call("open", path) { open(path, flags | O_CLOEXEC, 0o600) }
        return (fd, path)
    }

    func testTenThousandAppendsLandInOrder() throws {
        let loop = try EventLoop()
        let ring = try IORing(loop: loop, entries: 64, maxQueuedWrites: 10_000)
        let (fd, path) = try openFile("appends")
        defer { close(fd) }

        var expected: [UInt8] = []
        var offset: UInt64 = 0
        var completed = 0
        var failures: [SystemError] = []
        for index in 0..<10_000 {
            // Records of varying length, so a misplaced write shifts every later byte.
            let record = Array("record \(index) \(String(repeating: "x", count: index % 37))\n".utf8)
            expected += record
            try ring.write(SharedBytes(record), to: fd, at: offset) { result in
                switch result {
                case .success(let count): XCTAssertEqual(count, record.count)
                case .failure(let error): failures.append(error)
                }
                completed += 1
            }
            offset += UInt64(record.count)
        }

        XCTAssertTrue(try loop.run(until: { completed == 10_000 }, timeout: .seconds(30)))
        XCTAssertEqual(failures, [])
        XCTAssertEqual(ring.pendingWrites, 0)
        ring.close()
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: path)), Data(expected))
    }

    func testShortWriteIsResubmitted() throws {
        let loop = try EventLoop()
        let ring = try IORing(loop: loop)
        ring.maxBytesPerSubmission = 1_000
        let (fd, path) = try openFile("short")
        defer { close(fd) }

        let payload = (0..<10_007).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        var result: Result<Int, SystemError>?
        try ring.write(SharedBytes(payload), to: fd, at: 5) { result = $0 }

        XCTAssertTrue(try loop.run(until: { result != nil }, timeout: .seconds(5)))
        XCTAssertEqual(try result?.get(), payload.count)
        ring.close()
        let written = try Data(contentsOf: URL(fileURLWithPath: path))
        XCTAssertEqual(written.count, 5 + payload.count)
        XCTAssertEqual(Array(written.dropFirst(5)), payload)
    }

    func testWriteToReadOnlyFDReportsErrno() throws {
        let loop = try EventLoop()
        let ring = try IORing(loop: loop)
        let (writable, _) = try openFile("readonly")
        close(writable)
        let (fd, _) = try openFile("readonly", flags: O_RDONLY)
        defer { close(fd) }

        var result: Result<Int, SystemError>?
        try ring.write(SharedBytes([1, 2, 3]), to: fd, at: 0) { result = $0 }

        XCTAssertTrue(try loop.run(until: { result != nil }, timeout: .seconds(5)))
        guard case .failure(let error) = result else {
            return XCTFail("a write to a read-only fd must fail, got \(String(describing: result))")
        }
        XCTAssertEqual(error.errno, EBADF)
        XCTAssertEqual(error.call, "io_uring write")
        XCTAssertEqual(error.subject, "fd \(fd)")
        ring.close()
    }

    func testFullWaitQueueRejectsWithEAGAIN() throws {
        let loop = try EventLoop()
        let ring = try IORing(loop: loop, entries: 4, maxQueuedWrites: 2)
        let (fd, _) = try openFile("bounded")
        defer { close(fd) }

        var completed = 0
        for index in 0..<6 {
            try ring.write(SharedBytes([UInt8(index)]), to: fd, at: UInt64(index)) { _ in completed += 1 }
        }
        XCTAssertEqual(ring.pendingWrites, 6)
        XCTAssertThrowsError(try ring.write(SharedBytes([9]), to: fd, at: 6) { _ in }) { error in
            XCTAssertEqual((error as? SystemError)?.errno, EAGAIN)
        }

        XCTAssertTrue(try loop.run(until: { completed == 6 }, timeout: .seconds(5)))
        ring.close()
    }

    func testCloseWaitsForPendingWrites() throws {
        let loop = try EventLoop()
        let ring = try IORing(loop: loop)
        let (fd, path) = try openFile("close")
        defer { close(fd) }

        var completed = 0
        for index in 0..<100 {
            try ring.write(SharedBytes([UInt8(index)]), to: fd, at: UInt64(index)) { _ in completed += 1 }
        }
        ring.close()

        XCTAssertEqual(completed, 100)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: path)), Data((0..<100).map { UInt8($0) }))
    }
}
