import GRPCLite

/// `jobworker.v1.StartRequest`: the command, arguments, limits and environment of a new job.
public struct Jobworker_V1_StartRequest: ProtobufMessage, Equatable, Sendable {
    /// The command to execute, an absolute path or a name looked up in PATH.
    public var name = ""
    public var args: [String] = []
    public var resources: Jobworker_V1_ResourceConfig?
    /// The job's working directory, or empty for the server's default.
    public var workingDirectory = ""
    /// The job's environment, or empty for the server's default environment.
    public var env: [String: String] = [:]

    public init() {}

    public init(
        name: String, args: [String] = [], resources: Jobworker_V1_ResourceConfig? = nil,
        workingDirectory: String = "", env: [String: String] = [:]
    ) {
        self.name = name
        self.args = args
        self.resources = resources
        self.workingDirectory = workingDirectory
        self.env = env
    }

    public mutating func merge(from reader: inout ProtobufReader) throws {
        while let field = try reader.nextField() {
            switch field {
            case 1: name = try reader.readString()
            case 2: try reader.readRepeatedString(into: &args)
            case 3: try reader.readMessage(into: &resources)
            case 4: workingDirectory = try reader.readString()
            case 5: try reader.readMapEntry(into: &env)
            default: try reader.skipField()
            }
        }
    }

    public func encode(to writer: inout ProtobufWriter) {
        writer.writeString(name, field: 1)
        writer.writeRepeatedString(args, field: 2)
        writer.writeMessage(resources, field: 3)
        writer.writeString(workingDirectory, field: 4)
        writer.writeMap(env, field: 5)
    }
}

/// `jobworker.v1.StartResponse`: the id of the job that was started.
public struct Jobworker_V1_StartResponse: ProtobufMessage, Equatable, Sendable {
    public var jobID = ""

    public init() {}

    public init(jobID: String) {
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
