import GRPCLite

/// The interop test service, also written to `echo.proto` for grpcio's generated stubs.
enum EchoProto {
    static let service = "/interop.v1.Echo/"

    static let source = """
        syntax = "proto3";
        package interop.v1;
        message EchoRequest { string text = 1; int32 count = 2; int32 response_size = 3; bytes payload = 4; }
        message EchoResponse { string text = 1; int32 index = 2; bytes payload = 3; }
        service Echo {
          rpc Unary(EchoRequest) returns (EchoResponse);
          rpc Stream(EchoRequest) returns (stream EchoResponse);
          rpc Hang(EchoRequest) returns (EchoResponse);
          rpc Stats(EchoRequest) returns (EchoResponse);
        }
        """
}

struct EchoRequest: ProtobufMessage, Equatable {
    var text = ""
    var count: Int32 = 0
    var responseSize: Int32 = 0
    var payload: [UInt8] = []

    init() {}

    init(text: String = "", count: Int32 = 0, responseSize: Int32 = 0, payload: [UInt8] = []) {
        self.text = text
        self.count = count
        self.responseSize = responseSize
        self.payload = payload
    }

    mutating func merge(from reader: inout ProtobufReader) throws {
        while let field = try reader.nextField() {
            switch field {
            case 1: text = try reader.readString()
            case 2: count = try reader.readInt32()
            case 3: responseSize = try reader.readInt32()
            case 4: payload = try reader.readBytes()
            default: try reader.skipField()
            }
        }
    }

    func encode(to writer: inout ProtobufWriter) {
        writer.writeString(text, field: 1)
        writer.writeInt32(count, field: 2)
        writer.writeInt32(responseSize, field: 3)
        writer.writeBytes(payload, field: 4)
    }
}

struct EchoResponse: ProtobufMessage, Equatable {
    var text = ""
    var index: Int32 = 0
    var payload: [UInt8] = []

    init() {}

    init(text: String = "", index: Int32 = 0, payload: [UInt8] = []) {
        self.text = text
        self.index = index
        self.payload = payload
    }

    mutating func merge(from reader: inout ProtobufReader) throws {
        while let field = try reader.nextField() {
            switch field {
            case 1: text = try reader.readString()
            case 2: index = try reader.readInt32()
            case 3: payload = try reader.readBytes()
            default: try reader.skipField()
            }
        }
    }

    func encode(to writer: inout ProtobufWriter) {
        writer.writeString(text, field: 1)
        writer.writeInt32(index, field: 2)
        writer.writeBytes(payload, field: 3)
    }
}
