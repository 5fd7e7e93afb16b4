import Foundation
import Glibc
import XCTest

@testable import GRPCLite

/// A fake gRPC server for client tests: it accepts one connection on 127.0.0.1, completes
/// TLS, reads the first request, and then runs a script that may send any frames or close.
final class RawHTTP2Server: @unchecked Sendable {
    let port: UInt16
    private let listener: Int32
    private let finished = DispatchSemaphore(value: 0)

    /// Listens on a kernel-assigned port and serves one connection with `script` on its
    /// own thread; the script gets the stream id of the request.
    /// With `waitForRequestEnd` false the script starts at the request's HEADERS frame.
    init(
        tls: TLSConfiguration, waitForRequestEnd: Bool = true,
        script: @escaping @Sendable (RawHTTP2Client, UInt32) throws -> Void
    ) throws {
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        self.listener = listener
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
                bind(listener, pointer, length) == 0 && Glibc.listen(listener, 4) == 0
                    && getsockname(listener, pointer, &length) == 0
            }
        }
        guard bound else {
            close(listener)
            throw RawClientError("cannot listen on 127.0.0.1: errno \(errno)")
        }
        port = UInt16(bigEndian: address.sin_port)

        let finished = self.finished
        Thread.detachNewThread {
            defer { finished.signal() }
            let fd = accept(listener, nil, nil)
            guard fd >= 0 else { return }
            do {
                let peer = try RawHTTP2Client(acceptedFD: fd, serverTLS: tls)
                guard peer.readClientPreface() else { return }
                try peer.send([RawFrame(type: RawFrame.settings, flags: 0, stream: 0, payload: [])])
                // A request ends with a DATA frame that carries END_STREAM.
                guard
                    let end = peer.readFrame(until: {
                        waitForRequestEnd
                            ? $0.type == RawFrame.data && $0.flags & RawFrame.endStream != 0
                            : $0.type == RawFrame.headers
                    })
                else { return }
                try script(peer, end.stream)
            } catch {
                XCTFail("fake server: \(error)")
            }
        }
    }

    /// Waits for the script to end and closes the listening socket.
    func stop() {
        shutdown(listener, Int32(SHUT_RDWR))
        _ = finished.wait(timeout: .now() + 10)
        close(listener)
    }

    /// Returns response HEADERS for `stream` (:status 200, content-type application/grpc).
    static func responseHeaders(stream: UInt32, _ extra: [(String, String)] = [], endStream: Bool = false) -> RawFrame {
        RawHTTP2Client.headersFrame(
            stream: stream, [(":status", "200"), ("content-type", "application/grpc")] + extra, endStream: endStream)
    }

    static func trailers(stream: UInt32, _ fields: [(String, String)]) -> RawFrame {
        RawHTTP2Client.headersFrame(stream: stream, fields, endStream: true)
    }
}
