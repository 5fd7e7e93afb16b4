import GRPCLite
import Glibc
import Reactor

/// The event loop of one benchmark run and the helpers every benchmark shares: opening
/// many connections with a bounded number of handshakes in flight, and running the loop
/// until a condition is true or a time limit passes.
final class Harness {
    let loop: EventLoop
    /// One read buffer for all Redis connections: the loop handles one connection at a time.
    let readBuffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 256 * 1024, alignment: 16)

    init() throws {
        loop = try EventLoop()
    }

    deinit {
        readBuffer.deallocate()
    }

    /// Opens `count` GRPCLite channels to `server`, with at most 32 handshakes pending at a
    /// time, fewer than a default listen backlog. Returns once each has received the server's
    /// SETTINGS; throws when one fails or `timeout` passes.
    func connectChannels(
        count: Int, server: (host: String, port: UInt16), tls: TLSConfiguration, timeout: Double = 60
    ) throws -> [GRPCChannel] {
        var channels: [GRPCChannel] = []
        var failure: Status?
        var opened: Int { channels.lazy.filter(\.isConnected).count }
        while channels.count < count || opened < channels.count {
            while channels.count < count && channels.count - opened < 32 {
                let channel = try GRPCChannel(
                    loop: loop, host: server.host, port: server.port, tls: tls, options: Harness.channelOptions)
                channel.onClose = { status in
                    failure = failure ?? status ?? Status(.unavailable, "closed")
                }
                channels.append(channel)
            }
            let target = min(count, opened + 1)
            try run(
                until: { opened >= target || failure != nil }, timeout: timeout,
                what: "opening connection \(opened + 1) of \(count)")
            if let failure {
                channels.forEach { $0.close() }
                throw LoadError("connection to \(server.host):\(server.port) failed: \(failure)")
            }
        }
        for channel in channels {
            channel.onClose = nil
        }
        return channels
    }

    /// Client settings for every benchmark channel: receive windows large enough that flow
    /// control does not pace the output benchmark (RFC 9113, section 6.9.2).
    static var channelOptions: GRPCClient.Options {
        var options = GRPCClient.Options()
        options.initialWindowSize = 16 << 20
        options.maxQueuedCalls = 1 << 20
        return options
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
