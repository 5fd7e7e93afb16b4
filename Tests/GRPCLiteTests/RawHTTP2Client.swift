import CNghttp2
import Foundation
import Glibc
import XCTest

@testable import GRPCLite

/// One HTTP/2 frame as read from or written to the wire (RFC 9113, section 4.1).
struct RawFrame {
    var type: UInt8
    var flags: UInt8
    var stream: UInt32
    var payload: [UInt8]

    static let data: UInt8 = 0x0
    static let headers: UInt8 = 0x1
    static let rstStream: UInt8 = 0x3
    static let settings: UInt8 = 0x4
    static let ping: UInt8 = 0x6
    static let goAway: UInt8 = 0x7
    static let windowUpdate: UInt8 = 0x8
    static let continuation: UInt8 = 0x9

    static let endStream: UInt8 = 0x1
    static let endHeaders: UInt8 = 0x4
    static let ack: UInt8 = 0x1

    /// Returns the 9-byte header followed by the payload.
    var bytes: [UInt8] {
        let length = payload.count
        var out: [UInt8] = [UInt8(length >> 16 & 0xFF), UInt8(length >> 8 & 0xFF), UInt8(length & 0xFF), type, flags]
        out += RawFrame.uint32(stream & 0x7FFF_FFFF)
        out += payload
        return out
    }

    static func uint32(_ value: UInt32) -> [UInt8] {
        [UInt8(value >> 24), UInt8(value >> 16 & 0xFF), UInt8(value >> 8 & 0xFF), UInt8(value & 0xFF)]
    }

    /// The error code of a RST_STREAM or GOAWAY frame.
    var errorCode: UInt32? {
        let offset: Int
        switch type {
        case RawFrame.rstStream: offset = 0
        case RawFrame.goAway: offset = 4
        default: return nil
        }
        guard payload.count >= offset + 4 else { return nil }
        return payload[offset..<offset + 4].reduce(0) { $0 << 8 | UInt32($1) }
    }
}

/// Encodes header fields as HPACK literals without indexing and without Huffman coding
/// (RFC 7541, section 6.2.2), which any decoder accepts and which needs no table.
enum RawHPACK {
    static func encode(_ headers: [(String, String)]) -> [UInt8] {
        var out: [UInt8] = []
        for (name, value) in headers {
            out.append(0)
            appendString(Array(name.utf8), to: &out)
            appendString(Array(value.utf8), to: &out)
        }
        return out
    }

    private static func appendString(_ bytes: [UInt8], to out: inout [UInt8]) {
        appendInteger(bytes.count, prefixBits: 7, to: &out)
        out += bytes
    }

    /// RFC 7541, section 5.1: the prefix carries values below 2^N - 1, continuation bytes the rest.
    private static func appendInteger(_ value: Int, prefixBits: Int, to out: inout [UInt8]) {
        let limit = (1 << prefixBits) - 1
        if value < limit {
            out.append(UInt8(value))
            return
        }
        out.append(UInt8(limit))
        var rest = value - limit
        while rest >= 128 {
            out.append(UInt8(rest & 0x7F | 0x80))
            rest >>= 7
        }
        out.append(UInt8(rest))
    }
}

/// A hostile HTTP/2 client for attack tests: a blocking socket, a GRPCLite `TLSSession`
/// for TLS 1.3 with a client certificate, and hand-made frames, so it can send what no
/// well-behaved HTTP/2 library would.
final class RawHTTP2Client {
    let fd: Int32
    private(set) var tls: TLSSession?
    private var inbound: [UInt8] = []
    private let inflater: OpaquePointer
    /// True once a read returned end of file or a connection error.
    private(set) var isClosed = false
    /// True once a send timed out because the server stopped reading.
    private(set) var isStalled = false

    /// Connects over TCP to 127.0.0.1:`port` and, with `tls`, completes a TLS 1.3 handshake.
    init(port: UInt16, tls configuration: TLSConfiguration?) throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        self.fd = fd
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        // A server that stops reading must not block the test forever.
        var sendTimeout = timeval(tv_sec: 2, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &sendTimeout, socklen_t(MemoryLayout<timeval>.size))
        var created: OpaquePointer?
        _ = nghttp2_hd_inflate_new(&created)
        inflater = created!
        guard connected == 0 else {
            close(fd)
            throw RawClientError("connect to port \(port) failed: errno \(errno)")
        }
        if let configuration {
            let session = try TLSSession(context: TLSContext(configuration: configuration, isServer: false))
            tls = session
            try handshake(session)
        }
    }

    /// Takes an accepted connection and completes the server side of a TLS 1.3 handshake,
    /// for a fake server that tests the client; `fd` is closed with this object.
    init(acceptedFD fd: Int32, serverTLS configuration: TLSConfiguration) throws {
        self.fd = fd
        var created: OpaquePointer?
        _ = nghttp2_hd_inflate_new(&created)
        inflater = created!
        let session = try TLSSession(context: TLSContext(configuration: configuration, isServer: true))
        tls = session
        try handshake(session)
    }

    /// Reads the client connection preface, which precedes the client's first frame.
    func readClientPreface(timeout: Double = 5) -> Bool {
        let preface = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8)
        let deadline = Date().addingTimeInterval(timeout)
        while inbound.count < preface.count {
            guard let tls, !isClosed else { return false }
            var buffer = [UInt8](repeating: 0, count: 64 * 1024)
            if case .bytes(let count) = buffer.withUnsafeMutableBytes({ tls.read(into: $0) }) {
                inbound += buffer[0..<count]
                continue
            }
            guard let bytes = readSocket(timeout: max(0, deadline.timeIntervalSinceNow)), !bytes.isEmpty else {
                return false
            }
            bytes.withUnsafeBytes { tls.feedCiphertext($0) }
            flushCiphertext()
        }
        guard Array(inbound.prefix(preface.count)) == preface else { return false }
        inbound.removeFirst(preface.count)
        return true
    }

    deinit {
        nghttp2_hd_inflate_del(inflater)
        close(fd)
    }

    private func handshake(_ session: TLSSession) throws {
        while true {
            let progress = session.handshake()
            flushCiphertext()
            switch progress {
            case .complete: return
            case .failed(let reason): throw RawClientError("TLS handshake failed: \(reason)")
            case .wantRead:
                guard let bytes = readSocket(timeout: 5), !bytes.isEmpty else {
                    throw RawClientError("server closed the connection during the TLS handshake")
                }
                bytes.withUnsafeBytes { session.feedCiphertext($0) }
            }
        }
    }

    private func flushCiphertext() {
        guard let tls else { return }
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let count = buffer.withUnsafeMutableBytes { tls.readCiphertext(into: $0) }
            if count == 0 { return }
            writeSocket(Array(buffer[0..<count]))
        }
    }

    /// Sends bytes as they are, past TLS (for garbage before a handshake).
    func writeSocket(_ bytes: [UInt8]) {
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeBytes {
                Glibc.send(fd, $0.baseAddress! + offset, bytes.count - offset, Int32(MSG_NOSIGNAL))
            }
            if written <= 0 {
                if errno == EAGAIN || errno == EWOULDBLOCK {
                    isStalled = true
                } else {
                    isClosed = true
                }
                return
            }
            offset += written
        }
    }

    /// Returns what the socket has within `timeout` seconds, an empty array at end of file
    /// or on error, nil on timeout.
    func readSocket(timeout: Double) -> [UInt8]? {
        var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        let ready = poll(&poller, 1, Int32(timeout * 1000))
        if ready == 0 { return nil }
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        let count = recv(fd, &buffer, buffer.count, 0)
        if count <= 0 {
            isClosed = true
            return []
        }
        return Array(buffer[0..<count])
    }

    /// Encrypts and sends plaintext.
    func send(_ bytes: [UInt8]) throws {
        guard let tls else { throw RawClientError("no TLS session") }
        try bytes.withUnsafeBytes { try tls.write($0) }
        flushCiphertext()
    }

    func send(_ frames: [RawFrame]) throws {
        try send(frames.flatMap(\.bytes))
    }

    /// Sends the client connection preface and a SETTINGS frame with `settings` (RFC 9113, section 3.4).
    func sendPreface(settings: [(UInt16, UInt32)] = []) throws {
        var payload: [UInt8] = []
        for (id, value) in settings {
            payload += [UInt8(id >> 8), UInt8(id & 0xFF)] + RawFrame.uint32(value)
        }
        try send(
            Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8)
                + RawFrame(type: RawFrame.settings, flags: 0, stream: 0, payload: payload).bytes)
    }

    /// Returns the standard gRPC request headers for `method`, with `overrides` replacing
    /// or (with a nil value) removing fields by name.
    static func requestHeaders(
        _ method: String = "/interop.v1.Echo/Unary", _ overrides: [(String, String?)] = []
    ) -> [(String, String)] {
        var headers: [(String, String)] = [
            (":method", "POST"), (":scheme", "https"), (":path", method), (":authority", "127.0.0.1"),
            ("content-type", "application/grpc"), ("te", "trailers"),
        ]
        // Replaced in place, because pseudo-headers must precede the others (RFC 9113, section 8.3).
        for (name, value) in overrides {
            if let index = headers.firstIndex(where: { $0.0 == name }) {
                if let value { headers[index].1 = value } else { headers.remove(at: index) }
            } else if let value {
                headers.append((name, value))
            }
        }
        return headers
    }

    static func headersFrame(stream: UInt32, _ headers: [(String, String)], endStream: Bool = false) -> RawFrame {
        RawFrame(
            type: RawFrame.headers, flags: RawFrame.endHeaders | (endStream ? RawFrame.endStream : 0), stream: stream,
            payload: RawHPACK.encode(headers))
    }

    static func dataFrame(stream: UInt32, _ payload: [UInt8], endStream: Bool = false) -> RawFrame {
        RawFrame(type: RawFrame.data, flags: endStream ? RawFrame.endStream : 0, stream: stream, payload: payload)
    }

    /// Returns the next frame, nil at end of file or after `timeout` seconds without one.
    func readFrame(timeout: Double = 5) -> RawFrame? {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            if inbound.count >= 9 {
                let length = Int(inbound[0]) << 16 | Int(inbound[1]) << 8 | Int(inbound[2])
                if inbound.count >= 9 + length {
                    let stream = inbound[5..<9].reduce(UInt32(0)) { $0 << 8 | UInt32($1) } & 0x7FFF_FFFF
                    let frame = RawFrame(
                        type: inbound[3], flags: inbound[4], stream: stream, payload: Array(inbound[9..<9 + length]))
                    inbound.removeFirst(9 + length)
                    return frame
                }
            }
            guard !isClosed, let tls else { return nil }
            var buffer = [UInt8](repeating: 0, count: 64 * 1024)
            switch buffer.withUnsafeMutableBytes({ tls.read(into: $0) }) {
            case .bytes(let count):
                inbound += buffer[0..<count]
                continue
            case .closed, .failed:
                isClosed = true
                return nil
            case .wantRead:
                break
            }
            let remaining = deadline.timeIntervalSinceNow
            guard remaining > 0, let bytes = readSocket(timeout: remaining) else { return nil }
            if bytes.isEmpty { return nil }
            bytes.withUnsafeBytes { tls.feedCiphertext($0) }
            flushCiphertext()
        }
    }

    /// Reads frames until `match` returns true for one, which is returned; nil when the
    /// connection ends or `timeout` passes first. Decodes every HEADERS block on the way,
    /// so the HPACK table stays in step.
    func readFrame(timeout: Double = 5, until match: (RawFrame) -> Bool) -> RawFrame? {
        let deadline = Date().addingTimeInterval(timeout)
        while let frame = readFrame(timeout: max(0, deadline.timeIntervalSinceNow)) {
            if frame.type == RawFrame.headers {
                lastHeaders[frame.stream, default: []] += decode(frame)
            }
            if match(frame) { return frame }
        }
        return nil
    }

    /// Header fields received per stream, response headers and trailers in order.
    private(set) var lastHeaders: [UInt32: [(String, String)]] = [:]

    /// Reads until `stream` ends and returns its grpc-status and grpc-message, or nil.
    func readStatus(stream: UInt32, timeout: Double = 5) -> (code: Int, message: String)? {
        let end = readFrame(timeout: timeout) { frame in
            (frame.stream == stream && frame.flags & RawFrame.endStream != 0
                && (frame.type == RawFrame.headers || frame.type == RawFrame.data))
                || (frame.stream == stream && frame.type == RawFrame.rstStream) || frame.type == RawFrame.goAway
        }
        guard end != nil, let headers = lastHeaders[stream],
            let code = headers.last(where: { $0.0 == "grpc-status" }).flatMap({ Int($0.1) })
        else { return nil }
        return (code, headers.last { $0.0 == "grpc-message" }?.1 ?? "")
    }

    /// Decodes one complete HEADERS block (END_HEADERS set, no padding or priority).
    private func decode(_ frame: RawFrame) -> [(String, String)] {
        var headers: [(String, String)] = []
        var payload = frame.payload
        if frame.flags & 0x8 != 0, let padLength = payload.first {
            payload = Array(payload.dropFirst().dropLast(Int(padLength)))
        }
        payload.withUnsafeBufferPointer { buffer in
            var offset = 0
            while true {
                var pair = nghttp2_nv()
                var flags: Int32 = 0
                let consumed = nghttp2_hd_inflate_hd2(
                    inflater, &pair, &flags, buffer.baseAddress! + offset, buffer.count - offset, 1)
                if consumed < 0 { return }
                offset += consumed
                if flags & Int32(NGHTTP2_HD_INFLATE_EMIT.rawValue) != 0 {
                    let name = String(
                        decoding: UnsafeBufferPointer(start: pair.name, count: pair.namelen), as: UTF8.self)
                    let value = String(
                        decoding: UnsafeBufferPointer(start: pair.value, count: pair.valuelen), as: UTF8.self)
                    headers.append((name, value))
                }
                if flags & Int32(NGHTTP2_HD_INFLATE_FINAL.rawValue) != 0 {
                    nghttp2_hd_inflate_end_headers(inflater)
                    return
                }
                if consumed == 0 && flags & Int32(NGHTTP2_HD_INFLATE_EMIT.rawValue) == 0 { return }
            }
        }
        return headers
    }

    /// True when the server closes the connection within `timeout` seconds; frames it
    /// sends first are read and dropped.
    func waitForClose(timeout: Double = 5) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while deadline.timeIntervalSinceNow > 0 {
            if tls != nil {
                if readFrame(timeout: deadline.timeIntervalSinceNow) == nil && isClosed { return true }
            } else {
                guard let bytes = readSocket(timeout: deadline.timeIntervalSinceNow) else { return false }
                if bytes.isEmpty { return true }
            }
        }
        return isClosed
    }
}

struct RawClientError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Returns the number of open file descriptors of this process (/proc/self/fd).
func openFileDescriptorCount() -> Int {
    ((try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []).count
}
