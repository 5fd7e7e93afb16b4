import Reactor

/// One call on a client stream: the framed request goes out as DATA, response headers,
/// messages and trailers come back and end in a `Status`.
final class ClientCall {
    let method: String
    var stream: Int32 = 0
    var outbound = OutboundQueue()
    var deframer: MessageDeframer
    var headers: [HTTP2Header] = []
    var trailers: [HTTP2Header] = []
    var headerBlocks = 0
    /// Bytes of response headers and trailers received, counted as in SETTINGS_MAX_HEADER_LIST_SIZE.
    var headerBytes = 0
    /// The client reset the stream because the response headers passed the size limit.
    var headerListTooLarge = false
    var messageCount = 0
    var deadlineTimer: TimerID?
    let onMessage: ([UInt8]) -> Bool
    let onFinish: (Status) -> Void
    /// Treats a 200 response without grpc-status as OK, for plain HTTP/2 servers.
    let acceptsPlainHTTPResponses: Bool
    private(set) var status: Status?

    init(
        method: String, request: [UInt8], maxMessageSize: Int, acceptsPlainHTTPResponses: Bool = false,
        onMessage: @escaping ([UInt8]) -> Bool, onFinish: @escaping (Status) -> Void
    ) {
        self.method = method
        self.acceptsPlainHTTPResponses = acceptsPlainHTTPResponses
        self.outbound.append(MessageFraming.frame(request))
        self.deframer = MessageDeframer(maxMessageSize: maxMessageSize)
        self.onMessage = onMessage
        self.onFinish = onFinish
    }

    var isFinished: Bool { status != nil }

    /// Records the final status once and reports it.
    func finish(_ status: Status, loop: EventLoop) {
        guard self.status == nil else { return }
        self.status = status
        if let timer = deadlineTimer {
            loop.cancelTimer(timer)
            deadlineTimer = nil
        }
        outbound.removeAll()
        onFinish(status)
    }

    /// Returns the status the response headers and trailers carry (gRPC over HTTP/2,
    /// "Responses"; HTTP status mapping from grpc's http-grpc-status-mapping.md).
    func statusFromResponse() -> Status {
        let all = headers + trailers
        func value(_ name: String) -> String? { all.last { $0.name == name }?.value }

        if let httpStatus = headers.first(where: { $0.name == ":status" }).flatMap({ Int($0.value) }), httpStatus != 200
        {
            return Status.fromHTTPStatus(httpStatus)
        }
        if acceptsPlainHTTPResponses && value("grpc-status") == nil {
            return .ok
        }
        if let contentType = headers.first(where: { $0.name == "content-type" })?.value,
            !contentType.hasPrefix("application/grpc")
        {
            return Status(.unknown, "server replied with content-type \"\(contentType)\", not application/grpc")
        }
        return Status.parse(statusValue: value("grpc-status"), messageValue: value("grpc-message"))
    }
}
