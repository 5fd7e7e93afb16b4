import GRPCLite

/// `jobworker.v1.StopRequest`: the job to stop.
public struct Jobworker_V1_StopRequest: JobIDRequest {
    public var jobID = ""

    public init() {}
}

/// `jobworker.v1.StopResponse`: the job's status after it ended.
public struct Jobworker_V1_StopResponse: JobStatusResponse {
    public var status: Jobworker_V1_JobStatus?

    public init() {}
}

/// `jobworker.v1.QueryRequest`: the job to look up.
public struct Jobworker_V1_QueryRequest: JobIDRequest {
    public var jobID = ""

    public init() {}
}

/// `jobworker.v1.QueryResponse`: the job's current status.
public struct Jobworker_V1_QueryResponse: JobStatusResponse {
    public var status: Jobworker_V1_JobStatus?

    public init() {}
}

/// `jobworker.v1.ListRequest`, which has no fields because the caller's identity selects the jobs.
public struct Jobworker_V1_ListRequest: ProtobufMessage, Equatable, Sendable {
    public init() {}

    public mutating func merge(from reader: inout ProtobufReader) throws {
        while try reader.nextField() != nil {
            try reader.skipField()
        }
    }

    public func encode(to writer: inout ProtobufWriter) {}
}

/// `jobworker.v1.ListResponse`: the status of every job the caller may see.
public struct Jobworker_V1_ListResponse: ProtobufMessage, Equatable, Sendable {
    public var jobs: [Jobworker_V1_JobStatus] = []

    public init() {}

    public init(jobs: [Jobworker_V1_JobStatus]) {
        self.jobs = jobs
    }

    public mutating func merge(from reader: inout ProtobufReader) throws {
        while let field = try reader.nextField() {
            switch field {
            case 1: try reader.readRepeatedMessage(into: &jobs)
            default: try reader.skipField()
            }
        }
    }

    public func encode(to writer: inout ProtobufWriter) {
        writer.writeRepeatedMessage(jobs, field: 1)
    }
}

/// `jobworker.v1.StreamRequest`: the job whose output to stream.
public struct Jobworker_V1_StreamRequest: JobIDRequest {
    public var jobID = ""

    public init() {}
}

/// A request whose one field is the job id (field 1): Stop, Query and Stream.
public protocol JobIDRequest: ProtobufMessage, Equatable, Sendable {
    var jobID: String { get set }
}

extension JobIDRequest {
    public init(jobID: String) {
        self.init()
        self.jobID = jobID
    }

    public mutating func merge(from reader: inout ProtobufReader) throws {
        while let field = try reader.nextField() {
            switch field {
            case 1: jobID = try reader.readString()
            default: try reader.skipField()
            }
        }
    }

    public func encode(to writer: inout ProtobufWriter) {
        writer.writeString(jobID, field: 1)
    }
}

/// A response whose one field is a job's status (field 1): Stop and Query.
public protocol JobStatusResponse: ProtobufMessage, Equatable, Sendable {
    var status: Jobworker_V1_JobStatus? { get set }
}

extension JobStatusResponse {
    public init(status: Jobworker_V1_JobStatus?) {
        self.init()
        self.status = status
    }

    public mutating func merge(from reader: inout ProtobufReader) throws {
        while let field = try reader.nextField() {
            switch field {
            case 1: try reader.readMessage(into: &status)
            default: try reader.skipField()
            }
        }
    }

    public func encode(to writer: inout ProtobufWriter) {
        writer.writeMessage(status, field: 1)
    }
}
