import GRPCLite
import Reactor

/// The Swift implementation of `interop.v1.Echo`, served by GRPCLite in the tests:
/// - Unary echoes `text` with the caller's CN and roles, and `payload` (or `response_size`
///   bytes); `text` "fail:MESSAGE" fails with INVALID_ARGUMENT and MESSAGE.
/// - Stream sends `count` messages of `response_size` bytes under backpressure, the
///   payload shared by reference.
/// - Hang never answers; its cancellation is counted.
/// - Stats returns "cancelled=N" in `text`.
enum EchoService {
    static func install(on server: GRPCServer, recorder: TestServer) {
        server.registerUnary(EchoProto.service + "Unary") { context, bytes, responder in
            guard let request = try? EchoRequest(serializedBytes: bytes) else {
                responder.fail(Status(.invalidArgument, "invalid EchoRequest"))
                return
            }
            if request.text.hasPrefix("fail:") {
                responder.fail(Status(.invalidArgument, String(request.text.dropFirst(5))))
                return
            }
            let roles = context.peer.utf8StringExtension(oid: CertificateAuthority.rolesOID) ?? "-"
            var response = EchoResponse(text: "\(request.text)|cn=\(context.peer.commonName ?? "-")|roles=\(roles)")
            response.payload =
                request.responseSize > 0 ? [UInt8](repeating: 0x62, count: Int(request.responseSize)) : request.payload
            responder.succeed(response.serializedBytes())
        }

        server.registerServerStreaming(EchoProto.service + "Stream") { context, bytes, writer in
            guard let request = try? EchoRequest(serializedBytes: bytes) else {
                writer.finish(Status(.invalidArgument, "invalid EchoRequest"))
                return
            }
            let payload = SharedBytes([UInt8](repeating: 0x61, count: Int(request.responseSize)))
            var next: Int32 = 0
            context.onCancel = {
                recorder.increment("cancelled")
            }
            func pump() {
                while writer.isWritable && next < request.count {
                    var prefix = ProtobufWriter()
                    prefix.writeInt32(next, field: 2)
                    if payload.count > 0 {
                        prefix.writeLengthDelimitedHeader(field: 3, length: payload.count)
                    }
                    writer.write(prefix: prefix.bytes, payload: payload)
                    next += 1
                }
                if next == request.count && !writer.isFinished {
                    writer.finish(.ok)
                }
            }
            writer.onWritable = pump
            pump()
        }

        server.registerUnary(EchoProto.service + "Hang") { context, _, responder in
            context.onCancel = {
                recorder.increment("cancelled")
                // Kept alive by this closure until the call ends; answering now is ignored.
                responder.succeed([])
            }
        }

        server.registerUnary(EchoProto.service + "Stats") { _, _, responder in
            responder.succeed(EchoResponse(text: "cancelled=\(recorder.counter("cancelled"))").serializedBytes())
        }
    }
}
