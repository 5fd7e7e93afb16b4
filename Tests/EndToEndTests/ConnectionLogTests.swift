import Foundation
import XCTest

/// Refused connections repeat for as long as their cause lasts, so jobd rate-limits their log
/// lines and counts the ones it leaves out.
final class ConnectionLogTests: EndToEndTestCase {
    func testRefusedConnectionsAreRateLimited() throws {
        let jobd = try startJobd()
        let port = try XCTUnwrap(UInt16(jobd.address.split(separator: ":").last ?? ""))

        for _ in 0..<60 {
            try sendGarbage(to: port)
        }
        XCTAssertTrue(waitForLog(jobd) { Self.refusedLines($0).count >= 1 }, "no refusal was logged:\n\(jobd.log)")
        let burst = Self.refusedLines(jobd.log).count
        XCTAssertLessThanOrEqual(burst, 40, "60 refusals in well under 2 s logged \(burst) lines")

        Thread.sleep(forTimeInterval: 1.1)
        try sendGarbage(to: port)
        XCTAssertTrue(
            waitForLog(jobd) { Self.refusedLines($0).contains { $0.contains("suppressed=") } },
            "no line counted the refusals left out:\n\(jobd.log)")
        XCTAssertEqual(try jobctl(["list"], on: jobd).status, 0, "jobd must keep serving")
    }

    private static func refusedLines(_ log: String) -> [Substring] {
        log.split(separator: "\n").filter { $0.contains("connection refused") }
    }

    private func waitForLog(_ jobd: Jobd, until condition: (String) -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline {
            if condition(jobd.log) { return true }
            Thread.sleep(forTimeInterval: 0.05)
        }
        return condition(jobd.log)
    }

    /// Connects to 127.0.0.1:`port`, sends bytes that are not a TLS ClientHello and closes.
    private func sendGarbage(to port: UInt16) throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw SubprocessError(message: "socket failed: errno \(errno)") }
        defer { close(fd) }

        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard connected == 0 else { throw SubprocessError(message: "connect failed: errno \(errno)") }
        let garbage = Array("GET / HTTP/1.0\r\n\r\n".utf8)
        _ = garbage.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        shutdown(fd, Int32(SHUT_WR))
        var byte: UInt8 = 0
        _ = recv(fd, &byte, 1, 0)  // wait until jobd closes its side
    }
}
