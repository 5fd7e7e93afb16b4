import GRPCLite

/// `jobworker.v1.StreamResponse`: one chunk of job output, or the final status after the last chunk.
public struct Jobworker_V1_StreamResponse: ProtobufMessage, Equatable, Sendable {
    /// Output bytes, at most 64 KiB per message.
    public var data: [UInt8] = []
    public var stream = Jobworker_V1_OutputStream.unspecified
    /// Set only in the last message of a stream.
    public var finalStatus: Jobworker_V1_JobStatus?

    public static let dataField = 1

    public init() {}

    public init(data: [UInt8], stream: Jobworker_V1_OutputStream) {
        self.data = data
        self.stream = stream
    }

    public init(finalStatus: Jobworker_V1_JobStatus) {
        self.finalStatus = finalStatus
    }

    public mutating func merge(from reader: inout ProtobufReader) throws {
        while let field = try reader.nextField() {
            switch field {
            case 1: data = try reader.readBytes()
            case 2: stream = try reader.readEnum()
            case 3: try reader.readMessage(into: &finalStatus)
            default: try reader.skipField()
            }
        }
    }

    public func encode(to writer: inout ProtobufWriter) {
        writer.writeBytes(data, field: 1)
        writer.writeEnum(stream, field: 2)
        writer.writeMessage(finalStatus, field: 3)
    }

    /// Returns the encoding of a message carrying `dataCount` output bytes from `stream`,
    /// minus the output bytes themselves, which the caller sends right after.
    ///
    /// The `data` field goes last so that the prefix and the payload together are one
    /// valid message (protobuf allows fields in any order). This lets the server send a
    /// shared output chunk by reference instead of copying it into every message.
    public static func serializedPrefix(stream: Jobworker_V1_OutputStream, dataCount: Int) -> [UInt8] {
        var writer = ProtobufWriter(capacity: 16)
        writer.writeEnum(stream, field: 2)
        if dataCount > 0 {
            writer.writeLengthDelimitedHeader(field: dataField, length: dataCount)
        }
        return writer.bytes
    }
}
