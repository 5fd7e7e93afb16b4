/// Immutable bytes on the heap, shared by reference: an output chunk is read from a pipe
/// once, then appended to the log and sent to every subscriber from this same storage.
public final class SharedBytes {
    /// The number of bytes.
    public let count: Int
    private let storage: UnsafeMutableRawPointer

    /// Copies `bytes` into new storage.
    public init(copying bytes: UnsafeRawBufferPointer) {
        count = bytes.count
        storage = .allocate(byteCount: max(count, 1), alignment: 16)
        if let base = bytes.baseAddress, count > 0 {
            storage.copyMemory(from: base, byteCount: count)
        }
    }

    /// Copies `bytes` into new storage.
    public convenience init(_ bytes: [UInt8]) {
        self.init(copying: bytes.withUnsafeBytes { $0 })
    }

    /// Allocates `capacity` bytes and lets `fill` write into them, e.g. with read(2); `fill`
    /// returns how many bytes it wrote. Storage much larger than the result is shrunk to fit,
    /// so a short read does not pin a full-size buffer in memory while the chunk is kept.
    public init(capacity: Int, fill: (UnsafeMutableRawBufferPointer) throws -> Int) rethrows {
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: max(capacity, 1), alignment: 16)
        let written: Int
        do {
            written = try fill(UnsafeMutableRawBufferPointer(start: buffer, count: capacity))
        } catch {
            buffer.deallocate()
            throw error
        }
        precondition(written >= 0 && written <= capacity, "fill wrote \(written) of \(capacity) bytes")

        count = written
        if written * 2 < capacity {
            storage = .allocate(byteCount: max(written, 1), alignment: 16)
            storage.copyMemory(from: buffer, byteCount: written)
            buffer.deallocate()
        } else {
            storage = buffer
        }
    }

    deinit {
        storage.deallocate()
    }

    /// Calls `body` with the bytes; the pointer is valid only inside `body` unless the caller
    /// keeps this object alive for as long as it uses the pointer.
    public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try body(UnsafeRawBufferPointer(start: storage, count: count))
    }

    /// The start of the bytes, valid while this object is alive.
    public var baseAddress: UnsafeRawPointer { UnsafeRawPointer(storage) }

    /// Returns a copy of the bytes as an array.
    public var array: [UInt8] {
        withUnsafeBytes { Array($0) }
    }
}
