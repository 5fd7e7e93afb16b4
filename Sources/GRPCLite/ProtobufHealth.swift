// Messages of the standard gRPC health checking protocol, package grpc.health.v1
// (grpc/grpc doc/health-checking.md, proto src/proto/grpc/health/v1/health.proto).

/// The method names of the `grpc.health.v1.Health` service, as they appear in the HTTP/2 `:path`.
public enum HealthService {
    public static let check = "/grpc.health.v1.Health/Check"
    public static let watch = "/grpc.health.v1.Health/Watch"
}

/// The request of `Health/Check`: `message HealthCheckRequest { string service = 1; }`.
///
/// An empty `service` asks about the server as a whole.
public struct HealthCheckRequest: ProtobufMessage, Equatable, Sendable {
    public var service = ""

    public init() {}

    public init(service: String) {
        self.service = service
    }

    public mutating func merge(from reader: inout ProtobufReader) throws {
        while let field = try reader.nextField() {
            switch field {
            case 1: service = try reader.readString()
            default: try reader.skipField()
            }
        }
    }

    public func encode(to writer: inout ProtobufWriter) {
        writer.writeString(service, field: 1)
    }
}

/// The response of `Health/Check`: `message HealthCheckResponse { ServingStatus status = 1; }`.
public struct HealthCheckResponse: ProtobufMessage, Equatable, Sendable {
    /// The health of a service. Numbers not listed here are kept as `.unrecognized`.
    public enum ServingStatus: ProtobufEnum, Sendable {
        case unknown
        case serving
        case notServing
        /// Only `Watch` sends this, for a service name the server does not know.
        case serviceUnknown
        case unrecognized(Int32)

        public init(rawValue: Int32) {
            switch rawValue {
            case 0: self = .unknown
            case 1: self = .serving
            case 2: self = .notServing
            case 3: self = .serviceUnknown
            default: self = .unrecognized(rawValue)
            }
        }

        public var rawValue: Int32 {
            switch self {
            case .unknown: 0
            case .serving: 1
            case .notServing: 2
            case .serviceUnknown: 3
            case .unrecognized(let value): value
            }
        }
    }

    public var status = ServingStatus.unknown

    public init() {}

    public init(status: ServingStatus) {
        self.status = status
    }

    public mutating func merge(from reader: inout ProtobufReader) throws {
        while let field = try reader.nextField() {
            switch field {
            case 1: status = try reader.readEnum()
            default: try reader.skipField()
            }
        }
    }

    public func encode(to writer: inout ProtobufWriter) {
        writer.writeEnum(status, field: 1)
    }
}
