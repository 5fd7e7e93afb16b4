import Glibc
import Reactor
import XCTest

final class SyscallTests: XCTestCase {
    func testErrorNamesCallAndPath() {
        let path = "/no/such/file"
        XCTAssertThrowsError(try Syscall.call("open", path) { open(path, O_RDONLY) }) { error in
            let systemError = error as? SystemError
            XCTAssertEqual(systemError?.errno, ENOENT)
            XCTAssertEqual(systemError?.call, "open")
            XCTAssertEqual(systemError?.subject, path)
            XCTAssertEqual(
                systemError?.description, "open(/no/such/file) failed: no such file or directory (errno 2)")
        }
    }

    func testNonBlockingReadReturnsNilOnEAGAIN() throws {
        let pipe = try Syscall.pipe()
        defer {
            close(pipe.read)
            close(pipe.write)
        }
        var byte: UInt8 = 0
        let result = try Syscall.callNonBlocking("read", "fd \(pipe.read)") { read(pipe.read, &byte, 1) }
        XCTAssertNil(result)
    }

    func testSharedBytesShrinksShortFill() {
        let bytes = SharedBytes(capacity: 65_536) { buffer in
            buffer[0] = 7
            buffer[1] = 9
            return 2
        }
        XCTAssertEqual(bytes.count, 2)
        XCTAssertEqual(bytes.array, [7, 9])
    }
}
