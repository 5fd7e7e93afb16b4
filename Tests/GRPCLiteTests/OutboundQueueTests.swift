import Reactor
import XCTest

@testable import GRPCLite

final class OutboundQueueTests: XCTestCase {
    private func drain(_ queue: inout OutboundQueue) -> [UInt8] {
        var out: [UInt8] = []
        _ = queue.consume(queue.count) { piece in
            out += piece
            return true
        }
        return out
    }

    func testRemoveAllKeepsPromisedBytes() {
        let table: [(description: String, consumed: Int, kept: Int, expected: [UInt8])] = [
            ("nothing kept", 0, 0, []),
            ("inside the first piece", 0, 2, [1, 2]),
            ("whole first piece", 0, 3, [1, 2, 3]),
            ("into the shared piece", 0, 5, [1, 2, 3, 4, 5]),
            ("after a partial consume", 2, 3, [3, 4, 5]),
            ("everything", 1, 6, [2, 3, 4, 5, 6, 7]),
        ]
        for row in table {
            var queue = OutboundQueue()
            queue.append([1, 2, 3])
            queue.append(SharedBytes([4, 5, 6]))
            queue.append([7])
            _ = queue.consume(row.consumed) { _ in true }
            queue.removeAll(keepingFirst: row.kept)
            XCTAssertEqual(queue.count, row.kept, row.description)
            XCTAssertEqual(drain(&queue), row.expected, row.description)
            queue.append([9])
            XCTAssertEqual(drain(&queue), [9], "\(row.description): append after trimming")
        }
    }
}
