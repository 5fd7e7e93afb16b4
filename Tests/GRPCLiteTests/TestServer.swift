import Foundation
import GRPCLite
import Reactor
import XCTest

/// Runs a `GRPCServer` on its own thread and `EventLoop`, as jobd does on its main thread.
/// The loop's objects are used only on that thread; the test thread reads what the server
/// thread publishes under a lock and stops it through a `LoopWaker`.
final class TestServer: @unchecked Sendable {
    private let lock = NSLock()
    private let started = DispatchSemaphore(value: 0)
    private let finished = DispatchSemaphore(value: 0)
    private var waker: LoopWaker?
    private var startError: Error?
    private var boundPort: UInt16 = 0
    private var recordedEvents: [ConnectionEvent] = []
    private var maxBuffered = 0
    private var lastBuffered = 0
    private var lastActiveCalls = 0
    private var counters: [String: Int] = [:]
    private var pendingWork: [@Sendable (GRPCServer) -> Void] = []

    /// Starts the server; `configure` runs on the server thread to register handlers.
    init(
        tls: TLSConfiguration, options: GRPCServer.Options = .init(), host: String = "127.0.0.1",
        configure: @escaping @Sendable (GRPCServer, EventLoop, TestServer) -> Void
    ) throws {
        let thread = Thread { [self] in
            self.serve(tls: tls, options: options, host: host, configure: configure)
        }
        thread.stackSize = 4 << 20
        thread.start()
        started.wait()
        if let startError {
            throw startError
        }
    }

    var port: UInt16 { lock.withLock { boundPort } }
    var events: [ConnectionEvent] { lock.withLock { recordedEvents } }
    /// The maximum bytes the server held for output at any sample (every 2 ms).
    var maxBufferedBytes: Int { lock.withLock { maxBuffered } }
    var bufferedBytes: Int { lock.withLock { lastBuffered } }
    var activeCalls: Int { lock.withLock { lastActiveCalls } }

    func counter(_ name: String) -> Int { lock.withLock { counters[name] ?? 0 } }

    /// Adds to a named counter; handlers call it on the server thread.
    func increment(_ name: String, by amount: Int = 1) {
        lock.withLock { counters[name, default: 0] += amount }
    }

    /// Runs `body` on the server thread within a few milliseconds, without waiting for it.
    func perform(_ body: @escaping @Sendable (GRPCServer) -> Void) {
        lock.withLock { pendingWork.append(body) }
    }

    func resetMaxBufferedBytes() {
        lock.withLock { maxBuffered = lastBuffered }
    }

    /// Waits until `condition` holds, polling; returns false on timeout.
    func wait(timeout: TimeInterval = 10, until condition: () -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if condition() { return true }
            Thread.sleep(forTimeInterval: 0.01)
        }
        return condition()
    }

    /// Stops the loop, closes every connection and joins the server thread.
    func stop() {
        lock.withLock { waker }?.requestStop()
        finished.wait()
    }

    private func serve(
        tls: TLSConfiguration, options: GRPCServer.Options, host: String,
        configure: @Sendable (GRPCServer, EventLoop, TestServer) -> Void
    ) {
        let loop: EventLoop
        let server: GRPCServer
        do {
            loop = try EventLoop()
            server = try GRPCServer(loop: loop, tls: tls, options: options)
            server.onConnectionEvent = { [self] event in
                self.lock.withLock { self.recordedEvents.append(event) }
            }
            configure(server, loop, self)
            let bound = try server.listen(host: host, port: 0)
            lock.withLock {
                boundPort = bound.port
                waker = loop.makeWaker()
            }
        } catch {
            startError = error
            started.signal()
            finished.signal()
            return
        }
        sample(server: server, loop: loop)
        started.signal()

        do {
            try loop.run()
            var closed = false
            server.shutdown(gracePeriod: .zero) { closed = true }
            _ = try loop.run(until: { closed }, timeout: .seconds(5))
        } catch {
            XCTFail("server loop failed: \(error)")
        }
        finished.signal()
    }

    private func sample(server: GRPCServer, loop: EventLoop) {
        let buffered = server.bufferedBytes
        let active = server.activeCallCount
        let work = lock.withLock {
            lastBuffered = buffered
            lastActiveCalls = active
            maxBuffered = max(maxBuffered, buffered)
            defer { pendingWork.removeAll() }
            return pendingWork
        }
        for body in work {
            body(server)
        }
        loop.scheduleTimer(after: .milliseconds(2)) { [weak server, self] in
            guard let server else { return }
            self.sample(server: server, loop: loop)
        }
    }
}
