import Reactor
import XCTest

final class TimerTests: XCTestCase {
    func testTimersFireInDeadlineOrder() throws {
        let loop = try EventLoop()
        var fired: [Int] = []
        for (label, delay) in [(3, 60), (1, 20), (2, 40), (0, 0)] {
            loop.scheduleTimer(after: .milliseconds(delay)) { fired.append(label) }
        }

        XCTAssertTrue(try loop.run(until: { fired.count == 4 }, timeout: .seconds(2)))
        XCTAssertEqual(fired, [0, 1, 2, 3])
    }

    func testTimerDoesNotFireEarly() throws {
        let loop = try EventLoop()
        let started = MonotonicClock.nanoseconds()
        var firedAt: UInt64 = 0
        loop.scheduleTimer(after: .milliseconds(100)) { firedAt = MonotonicClock.nanoseconds() }

        XCTAssertTrue(try loop.run(until: { firedAt != 0 }, timeout: .seconds(2)))
        XCTAssertGreaterThanOrEqual(firedAt - started, 100_000_000)
    }

    func testCancelledTimerNeverFires() throws {
        let loop = try EventLoop()
        var fired: [String] = []
        let cancelled = loop.scheduleTimer(after: .milliseconds(10)) { fired.append("cancelled") }
        loop.scheduleTimer(after: .milliseconds(50)) { fired.append("kept") }
        loop.cancelTimer(cancelled)

        XCTAssertTrue(try loop.run(until: { !fired.isEmpty }, timeout: .seconds(2)))
        try loop.runOnce(timeout: .milliseconds(20))
        XCTAssertEqual(fired, ["kept"])
        XCTAssertEqual(loop.pendingTimerCount, 0)
    }

    func testTimerCancelsAnotherDueInSameBatch() throws {
        let loop = try EventLoop()
        var fired: [String] = []
        var second: TimerID?
        loop.scheduleTimer(after: .milliseconds(5)) {
            fired.append("first")
            if let second { loop.cancelTimer(second) }
        }
        second = loop.scheduleTimer(after: .milliseconds(5)) { fired.append("second") }

        try loop.runOnce(timeout: .milliseconds(50))
        try loop.runOnce(timeout: .milliseconds(20))
        XCTAssertEqual(fired, ["first"])
    }

    func testThousandsOfTimersFireInOrder() throws {
        let loop = try EventLoop()
        let count = 5_000
        var fired: [Int] = []
        fired.reserveCapacity(count)
        var ids: [TimerID] = []
        // Deadlines from one base in a scrambled order; every third one is cancelled.
        let base = MonotonicClock.nanoseconds() + 20_000_000
        for index in 0..<count {
            let slot = (index * 7_919) % count
            ids.append(loop.scheduleTimer(atNanoseconds: base + UInt64(slot) * 20_000) { fired.append(slot) })
        }
        var expected: [Int] = []
        for index in 0..<count {
            let slot = (index * 7_919) % count
            if index % 3 == 0 {
                loop.cancelTimer(ids[index])
            } else {
                expected.append(slot)
            }
        }
        expected.sort()

        XCTAssertTrue(try loop.run(until: { fired.count == expected.count }, timeout: .seconds(10)))
        let firstMismatch = zip(fired, expected).enumerated().first { $0.element.0 != $0.element.1 }?.offset
        XCTAssertNil(firstMismatch, "timer \(firstMismatch.map { fired[$0] } ?? -1) fired out of deadline order")
        XCTAssertEqual(fired.count, expected.count)
    }
}
