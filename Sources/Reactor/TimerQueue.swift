/// A handle for a scheduled timer, used to cancel it.
public struct TimerID: Hashable, Sendable {
    let rawValue: UInt64
}

/// Pending timers ordered by deadline in an indexed binary min-heap: scheduling, cancelling
/// and popping the earliest each cost O(log n). Equal deadlines fire in scheduling order.
struct TimerQueue {
    final class Entry {
        let id: UInt64
        let deadline: UInt64  // CLOCK_MONOTONIC nanoseconds
        let body: () -> Void
        var heapIndex: Int

        init(id: UInt64, deadline: UInt64, body: @escaping () -> Void, heapIndex: Int) {
            self.id = id
            self.deadline = deadline
            self.body = body
            self.heapIndex = heapIndex
        }
    }

    private var heap: [Entry] = []
    private var entriesByID: [UInt64: Entry] = [:]
    private var nextID: UInt64 = 1

    var count: Int { heap.count }
    var earliestDeadline: UInt64? { heap.first?.deadline }

    mutating func schedule(deadline: UInt64, body: @escaping () -> Void) -> TimerID {
        let entry = Entry(id: nextID, deadline: deadline, body: body, heapIndex: heap.count)
        nextID += 1
        heap.append(entry)
        entriesByID[entry.id] = entry
        siftUp(entry.heapIndex)
        return TimerID(rawValue: entry.id)
    }

    /// Removes the timer; returns false when it already fired or was cancelled.
    @discardableResult
    mutating func cancel(_ id: TimerID) -> Bool {
        guard let entry = entriesByID.removeValue(forKey: id.rawValue) else { return false }
        removeFromHeap(at: entry.heapIndex)
        return true
    }

    /// Removes and returns the earliest timer if its deadline is at or before `now`.
    mutating func popExpired(now: UInt64) -> Entry? {
        guard let first = heap.first, first.deadline <= now else { return nil }
        entriesByID[first.id] = nil
        removeFromHeap(at: 0)
        return first
    }

    private mutating func removeFromHeap(at index: Int) {
        let last = heap.count - 1
        if index != last {
            swapAt(index, last)
        }
        heap.removeLast()
        if index < heap.count {
            siftDown(index)
            siftUp(index)
        }
    }

    private func precedes(_ a: Int, _ b: Int) -> Bool {
        let left = heap[a]
        let right = heap[b]
        return left.deadline != right.deadline ? left.deadline < right.deadline : left.id < right.id
    }

    private mutating func swapAt(_ a: Int, _ b: Int) {
        heap.swapAt(a, b)
        heap[a].heapIndex = a
        heap[b].heapIndex = b
    }

    private mutating func siftUp(_ start: Int) {
        var child = start
        while child > 0 {
            let parent = (child - 1) / 2
            guard precedes(child, parent) else { return }
            swapAt(child, parent)
            child = parent
        }
    }

    private mutating func siftDown(_ start: Int) {
        var parent = start
        while true {
            let left = 2 * parent + 1
            let right = left + 1
            var smallest = parent
            if left < heap.count && precedes(left, smallest) { smallest = left }
            if right < heap.count && precedes(right, smallest) { smallest = right }
            if smallest == parent { return }
            swapAt(parent, smallest)
            parent = smallest
        }
    }
}
