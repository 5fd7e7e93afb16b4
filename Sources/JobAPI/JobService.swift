/// The `jobworker.v1.JobService` descriptor: the method paths a client sends in the HTTP/2
/// `:path` header and a server registers handlers under (gRPC over HTTP/2, "Path").
///
/// Messages are the `Jobworker_V1_*` types of this module, encoded from
/// `proto/jobworker/v1/jobworker.proto`, which is the source of truth for names and numbers.
public enum JobService {
    /// The fully qualified service name.
    public static let name = "jobworker.v1.JobService"

    /// Unary: `Jobworker_V1_StartRequest` -> `Jobworker_V1_StartResponse`, for the writer or admin role.
    public static let start = "/jobworker.v1.JobService/Start"
    /// Unary: `Jobworker_V1_StopRequest` -> `Jobworker_V1_StopResponse`, for the writer or admin role.
    public static let stop = "/jobworker.v1.JobService/Stop"
    /// Unary: `Jobworker_V1_QueryRequest` -> `Jobworker_V1_QueryResponse`, for any role.
    public static let query = "/jobworker.v1.JobService/Query"
    /// Unary: `Jobworker_V1_ListRequest` -> `Jobworker_V1_ListResponse`, for any role.
    public static let list = "/jobworker.v1.JobService/List"
    /// Server streaming: `Jobworker_V1_StreamRequest` -> `Jobworker_V1_StreamResponse`s, for any role.
    public static let stream = "/jobworker.v1.JobService/Stream"

    /// Every method path, in the order the service declares them.
    public static let allMethods = [start, stop, query, list, stream]
}
