import CSystem
import CTestSignalMask
import Glibc
import Reactor
import XCTest

final class EventLoopTests: XCTestCase {
    private var openFDs: [Int32] = []

    override func tearDown() {
        for fd in openFDs { close(fd) }
        openFDs.removeAll()
        super.tearDown()
    }

    private func makePipe() throws -> (read: Int32, write: Int32) {
        let ends = try Syscall.pipe()
        openFDs += [ends.read, ends.write]
        return ends
    }

    private func makeSocketPair() throws -> (Int32, Int32) {
        var fds: [Int32] = [-1, -1]
        let kind = Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue)
        _ = try Syscall.call("socketpair") { socketpair(AF_UNIX, kind, 0, &fds) }
        openFDs += fds
        return (fds[0], fds[1])
    }

    private func writeByte(_ fd: Int32, _ byte: UInt8 = 0x2a) {
        var value = byte
        XCTAssertEqual(write(fd, &value, 1), 1)
    }

    private func closeTracked(_ fd: Int32) {
        close(fd)
        openFDs.removeAll { $0 == fd }
    }

    func testPipeReadable() throws {
        let loop = try EventLoop()
        let pipe = try makePipe()
        var seen: Readiness = []
        try loop.register(fd: pipe.read, interest: .readable) { seen = $0 }

        try loop.runOnce(timeout: .milliseconds(20))
        XCTAssertEqual(seen, [], "an empty pipe must not be readable")

        writeByte(pipe.write)
        XCTAssertTrue(try loop.run(until: { seen.contains(.readable) }, timeout: .seconds(2)))
        loop.deregister(fd: pipe.read)
    }

    func testPipeEOFReportsHangup() throws {
        let loop = try EventLoop()
        let pipe = try makePipe()
        var seen: Readiness = []
        try loop.register(fd: pipe.read, interest: .readable) { seen = $0 }

        closeTracked(pipe.write)
        XCTAssertTrue(try loop.run(until: { !seen.isEmpty }, timeout: .seconds(2)))
        XCTAssertTrue(seen.contains(.hangup), "closing the only write end must report EPOLLHUP, got \(seen)")

        var byte: UInt8 = 0
        XCTAssertEqual(read(pipe.read, &byte, 1), 0, "read after hangup must return EOF")
        loop.deregister(fd: pipe.read)
    }

    func testSocketPairBothDirections() throws {
        let loop = try EventLoop()
        let (left, right) = try makeSocketPair()
        var leftSeen: Readiness = []
        var rightSeen: Readiness = []
        try loop.register(fd: left, interest: .writable) { leftSeen = $0 }
        try loop.register(fd: right, interest: .readable) { rightSeen = $0 }

        XCTAssertTrue(try loop.run(until: { leftSeen.contains(.writable) }, timeout: .seconds(2)))
        XCTAssertEqual(rightSeen, [])

        writeByte(left)
        XCTAssertTrue(try loop.run(until: { rightSeen.contains(.readable) }, timeout: .seconds(2)))

        loop.deregister(fd: left)
        loop.deregister(fd: right)
    }

    func testSocketPeerCloseReportsReadHangup() throws {
        let loop = try EventLoop()
        let (left, right) = try makeSocketPair()
        var seen: Readiness = []
        try loop.register(fd: right, interest: .readable) { seen = $0 }

        closeTracked(left)
        XCTAssertTrue(try loop.run(until: { !seen.isEmpty }, timeout: .seconds(2)))
        XCTAssertTrue(seen.contains(.readHangup), "peer close must report EPOLLRDHUP, got \(seen)")
        XCTAssertTrue(seen.contains(.readable))
        loop.deregister(fd: right)
    }

    func testModifyChangesInterest() throws {
        let loop = try EventLoop()
        let (left, _) = try makeSocketPair()
        var calls = 0
        try loop.register(fd: left, interest: .readable) { _ in calls += 1 }

        try loop.runOnce(timeout: .milliseconds(20))
        XCTAssertEqual(calls, 0, "nothing to read yet")

        try loop.modify(fd: left, interest: .writable)
        XCTAssertTrue(try loop.run(until: { calls > 0 }, timeout: .seconds(2)))
        loop.deregister(fd: left)
    }

    func testHandlerRemovesAnotherInSameBatch() throws {
        let loop = try EventLoop()
        let first = try makePipe()
        let second = try makePipe()
        var called: [Int32] = []
        try loop.register(fd: first.read, interest: .readable) { _ in
            called.append(first.read)
            loop.deregister(fd: second.read)
        }
        try loop.register(fd: second.read, interest: .readable) { _ in
            called.append(second.read)
            loop.deregister(fd: first.read)
        }

        writeByte(first.write)
        writeByte(second.write)
        try loop.runOnce(timeout: .seconds(1))

        XCTAssertEqual(called.count, 1, "the handler that ran first removed the other, so only one may run: \(called)")
        loop.deregister(fd: first.read)
        loop.deregister(fd: second.read)
    }

    func testStaleEventNotDeliveredAfterFDReuse() throws {
        let loop = try EventLoop()
        let first = try makePipe()
        let second = try makePipe()
        let reusedFD = second.read
        var replacementCalls = 0
        var firstCalls = 0
        var secondCalls = 0

        // Whichever pipe's handler runs first replaces the other's read end with an empty
        // pipe under the same fd number; the ready event epoll already fetched for the old
        // pipe must not reach the new handler.
        try loop.register(fd: first.read, interest: .readable) { _ in
            firstCalls += 1
            guard secondCalls == 0 else { return }
            loop.deregister(fd: reusedFD)
            var fresh: [Int32] = [-1, -1]
            XCTAssertEqual(cs_pipe2(&fresh, O_CLOEXEC | O_NONBLOCK), 0)
            XCTAssertEqual(dup2(fresh[0], reusedFD), reusedFD)
            close(fresh[0])
            self.openFDs.append(fresh[1])
            do {
                try loop.register(fd: reusedFD, interest: .readable) { _ in replacementCalls += 1 }
            } catch {
                XCTFail("register of the reused fd failed: \(error)")
            }
        }
        try loop.register(fd: second.read, interest: .readable) { _ in
            secondCalls += 1
        }

        writeByte(first.write)
        writeByte(second.write)
        try loop.runOnce(timeout: .seconds(1))

        // epoll's ready list keeps the order in which fds became ready, and the first pipe
        // was written first, so its handler runs first and does the replacement.
        XCTAssertEqual(secondCalls, 0, "the second pipe's event must be the stale one")
        XCTAssertEqual(firstCalls, 1)
        XCTAssertEqual(replacementCalls, 0, "a stale event for a reused fd reached the new registration")

        try loop.runOnce(timeout: .milliseconds(20))
        XCTAssertEqual(replacementCalls, 0, "the replacement pipe is empty and must stay quiet")
        loop.deregister(fd: first.read)
        loop.deregister(fd: reusedFD)
    }

    func testWakerWakesFromAnotherThread() throws {
        let loop = try EventLoop()
        let waker = loop.makeWaker()
        let thread = Thread {
            usleep(50_000)
            waker.requestStop()
        }
        thread.start()

        let started = MonotonicClock.nanoseconds()
        try loop.run()
        let elapsed = MonotonicClock.nanoseconds() - started
        XCTAssertLessThan(elapsed, 5_000_000_000, "run() must return once another thread requests a stop")
    }

    func testSignalArrivesThroughSignalFD() throws {
        XCTAssertEqual(cts_sighup_blocked_at_start(), 1, "the test process must block SIGHUP before its threads start")
        let loop = try EventLoop()
        var received: [Int32] = []
        try loop.watchSignals([SIGHUP]) { received.append($0) }

        XCTAssertEqual(kill(getpid(), SIGHUP), 0)
        XCTAssertTrue(try loop.run(until: { !received.isEmpty }, timeout: .seconds(2)))
        XCTAssertEqual(received, [SIGHUP])
    }

    func testRegisteredCountExcludesLoopFDs() throws {
        let loop = try EventLoop()
        XCTAssertEqual(loop.registeredCount, 0)
        let pipe = try makePipe()
        try loop.register(fd: pipe.read, interest: .readable) { _ in }
        XCTAssertEqual(loop.registeredCount, 1)
        loop.deregister(fd: pipe.read)
        XCTAssertEqual(loop.registeredCount, 0)
    }
}
