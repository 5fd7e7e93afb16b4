import Glibc
import Reactor

/// The on-disk format of a job's output log, `<state dir>/jobs/<id>.log`.
///
/// The file starts with the 8-byte magic `JOBLOG1\n`. Records follow back to back, one per
/// read from the job's pipes, in the order the reads happened:
///
///     offset  size  field
///     0       1     stream tag: 1 = stdout, 2 = stderr
///     1       3     zero (reserved)
///     4       4     payload length, UInt32 little-endian, 1 to 65536
///     8       n     payload: the bytes exactly as read from the pipe
///
/// jobd writes a record's payload first and its header only after the payload write has
/// completed, so a header never points at bytes that were not written, even when jobd stops
/// between the two. A reader stops at the first record that is not complete: a zero tag
/// (a header not written yet, or a hole left by a later record written first), an invalid
/// header, or a payload that runs past the end of the file. That torn tail is ignored.
enum OutputLogFormat {
    static let magic: [UInt8] = Array("JOBLOG1\n".utf8)
    /// Offset of the first record.
    static let firstRecordOffset = UInt64(8)
    static let recordHeaderSize = 8
    /// Largest payload of one record, also the largest read from a pipe.
    static let maxPayloadSize = 64 * 1024

    /// Returns the 8-byte header of a record.
    static func header(stream: OutputStream, length: Int) -> [UInt8] {
        precondition(length > 0 && length <= maxPayloadSize, "record length \(length) out of range")
        let size = UInt32(length)
        return [
            stream.rawValue, 0, 0, 0,
            UInt8(truncatingIfNeeded: size), UInt8(truncatingIfNeeded: size >> 8),
            UInt8(truncatingIfNeeded: size >> 16), UInt8(truncatingIfNeeded: size >> 24),
        ]
    }

    /// Decodes a record header; nil when the bytes are not a complete, valid header.
    static func decodeHeader(_ bytes: UnsafeRawBufferPointer) -> (stream: OutputStream, length: Int)? {
        guard bytes.count >= recordHeaderSize, bytes[1] == 0, bytes[2] == 0, bytes[3] == 0,
            let stream = OutputStream(rawValue: bytes[0])
        else { return nil }
        let length = Int(bytes[4]) | Int(bytes[5]) << 8 | Int(bytes[6]) << 16 | Int(bytes[7]) << 24
        guard length > 0 && length <= maxPayloadSize else { return nil }
        return (stream, length)
    }
}

/// One record read back from a log file.
struct OutputRecord {
    let offset: UInt64
    let stream: OutputStream
    let bytes: SharedBytes

    /// Offset of the record after this one.
    var nextOffset: UInt64 { offset + UInt64(OutputLogFormat.recordHeaderSize + bytes.count) }
}

/// Reads records from a log file with pread(2). Does not own `fd`.
struct OutputLogReader {
    let fd: Int32
    let path: String

    /// Checks the magic at the start of the file; throws JobError.corruptLog when it differs.
    func validateMagic() throws {
        var magic = [UInt8](repeating: 0, count: OutputLogFormat.magic.count)
        let count = try Syscall.call("pread", path) { pread(fd, &magic, magic.count, 0) }
        guard count == magic.count, magic == OutputLogFormat.magic else {
            throw JobError(.corruptLog, "output log \"\(path)\" does not start with \"JOBLOG1\": remove the file")
        }
    }

    /// Returns the record at `offset`, or nil when no complete record starts there (end of
    /// file or a torn tail).
    func record(at offset: UInt64) throws -> OutputRecord? {
        var header = [UInt8](repeating: 0, count: OutputLogFormat.recordHeaderSize)
        let headerCount = try readFully(into: &header, at: offset)
        guard headerCount == header.count,
            let (stream, length) = header.withUnsafeBytes({ OutputLogFormat.decodeHeader($0) })
        else { return nil }

        let payloadOffset = offset + UInt64(OutputLogFormat.recordHeaderSize)
        var payloadCount = 0
        let payload = try SharedBytes(capacity: length) { buffer in
            payloadCount = try readFully(into: buffer, at: payloadOffset)
            return payloadCount
        }
        guard payloadCount == length else { return nil }
        return OutputRecord(offset: offset, stream: stream, bytes: payload)
    }

    /// Returns the end of the last complete record, walking the headers from the start.
    func endOfCompleteRecords() throws -> UInt64 {
        var info = stat()
        _ = try Syscall.call("fstat", path) { fstat(fd, &info) }
        let fileSize = UInt64(info.st_size)

        var offset = OutputLogFormat.firstRecordOffset
        var header = [UInt8](repeating: 0, count: OutputLogFormat.recordHeaderSize)
        while offset + UInt64(header.count) <= fileSize {
            guard try readFully(into: &header, at: offset) == header.count,
                let (_, length) = header.withUnsafeBytes({ OutputLogFormat.decodeHeader($0) })
            else { break }
            let next = offset + UInt64(header.count + length)
            if next > fileSize { break }
            offset = next
        }
        return offset
    }

    private func readFully(into bytes: inout [UInt8], at offset: UInt64) throws -> Int {
        try bytes.withUnsafeMutableBytes { try readFully(into: $0, at: offset) }
    }

    /// Reads until `buffer` is full or the file ends; returns the count read.
    private func readFully(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws -> Int {
        var total = 0
        while total < buffer.count {
            let count = try Syscall.call("pread", path) {
                pread(fd, buffer.baseAddress! + total, buffer.count - total, off_t(offset) + off_t(total))
            }
            if count == 0 { break }
            total += count
        }
        return total
    }
}
