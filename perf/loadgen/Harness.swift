import Glibc
import Reactor

/// The event loop of one benchmark run and the helpers every benchmark shares: opening
/// many connections with a bounded number of handshakes in flight, and running the loop
/// until a condition is true or a time limit passes.
final class Harness {
    let loop: EventLoop
    /// One read buffer for all connections: the loop handles one connection at a time.
    let readBuffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 256 * 1024, alignment: 16)

    init() throws {
        loop = try EventLoop()
    }

    deinit {
        readBuffer.deallocate()
    }

    /// Opens `count` HTTP/2 connections to `server`, with at most 32 handshakes pending at a
    /// time, fewer than a default listen backlog. Throws when one fails or `timeout` passes.
    func connectHTTP2(
        count: Int, server: (host: String, port: UInt16), tls: TLSClientContext, timeout: Double = 60
    ) throws
        -> [HTTP2Connection]
    {
        var connections: [HTTP2Connection] = []
        var opened = 0
        var failure: String?
        while connections.count < count || opened < connections.count {
            while connections.count < count && connections.count - opened < 32 {
                let connection = try HTTP2Connection(
                    loop: loop, host: server.host, port: server.port, tls: tls, readBuffer: readBuffer)
                connection.onOpen = { opened += 1 }
                connection.onClose = { reason in failure = failure ?? reason ?? "closed" }
                connections.append(connection)
            }
            let target = min(count, opened + 1)
            try run(
                until: { opened >= target || failure != nil }, timeout: timeout,
                what: "opening connection \(opened + 1) of \(count)")
            if let failure {
                connections.forEach { $0.close() }
                throw LoadError("connection to \(server.host):\(server.port) failed: \(failure)")
            }
        }
        for connection in connections {
            connection.onClose = nil
        }
        return connections
    }

    /// Runs the loop until `condition` is true, and throws a timeout error naming `what` after
    /// `timeout` seconds.
    func run(until condition: () -> Bool, timeout: Double, what: String) throws {
        let met = try loop.run(until: condition, timeout: .milliseconds(Int64(timeout * 1000)))
        if !met {
            throw LoadError("timed out after \(timeout) s while \(what)")
        }
    }

    /// Runs the loop for `seconds` of wall time, handling whatever arrives.
    func run(for seconds: Double) throws {
        let deadline = MonotonicClock.nanoseconds() + UInt64(seconds * 1e9)
        _ = try loop.run(
            until: { MonotonicClock.nanoseconds() >= deadline }, timeout: .milliseconds(Int64(seconds * 1000) + 1000))
    }
}
