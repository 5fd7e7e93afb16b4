/// The grpcio client of the interop test: argv is DIRECTORY PORT CA CERT KEY. It prints one
/// "ok NAME" or "FAIL NAME: detail" line per scenario.
enum PythonClientScript {
    static let source = #"""
        import sys, time, hashlib
        sys.path.insert(0, sys.argv[1])
        import grpc
        import echo_pb2, echo_pb2_grpc

        port, ca, cert, key = sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
        creds = grpc.ssl_channel_credentials(open(ca, "rb").read(), open(key, "rb").read(), open(cert, "rb").read())
        channel = grpc.secure_channel("127.0.0.1:" + port, creds, options=[
            ("grpc.max_receive_message_length", 8 * 1024 * 1024), ("grpc.max_send_message_length", 8 * 1024 * 1024)])
        stub = echo_pb2_grpc.EchoStub(channel)

        def check(name, fn):
            try:
                fn()
                print("ok " + name, flush=True)
            except Exception as error:
                text = repr(error).replace("\n", " ")[:400]
                print("FAIL " + name + ": " + text, flush=True)

        def expect_code(call, code):
            try:
                call()
            except grpc.RpcError as error:
                if error.code() != code:
                    raise AssertionError("expected %s, got %s: %s" % (code, error.code(), error.details()))
                return error
            raise AssertionError("expected %s, call succeeded" % code)

        def unary():
            response = stub.Unary(echo_pb2.EchoRequest(text="hello"), timeout=10)
            assert response.text == "hello|cn=alice|roles=admin", response.text

        def stream():
            indexes = [m.index for m in stub.Stream(echo_pb2.EchoRequest(count=10000, response_size=100), timeout=60)]
            assert indexes == list(range(10000)), "got %d messages" % len(indexes)

        def large():
            payload = bytes(range(256)) * (4 * 1024 * 1024 // 256 - 1)
            response = stub.Unary(echo_pb2.EchoRequest(text="big", payload=payload), timeout=30)
            assert hashlib.sha256(response.payload).digest() == hashlib.sha256(payload).digest(), len(response.payload)

        def too_large():
            payload = b"x" * (4 * 1024 * 1024 + 1)
            expect_code(lambda: stub.Unary(echo_pb2.EchoRequest(payload=payload), timeout=30), grpc.StatusCode.RESOURCE_EXHAUSTED)

        def deadline():
            before = int(stub.Stats(echo_pb2.EchoRequest(), timeout=10).text.split("=")[1])
            expect_code(lambda: stub.Hang(echo_pb2.EchoRequest(), timeout=0.3), grpc.StatusCode.DEADLINE_EXCEEDED)
            for _ in range(100):
                after = int(stub.Stats(echo_pb2.EchoRequest(), timeout=10).text.split("=")[1])
                if after > before:
                    return
                time.sleep(0.05)
            raise AssertionError("server handler was not cancelled after the deadline")

        def cancel_stream():
            before = int(stub.Stats(echo_pb2.EchoRequest(), timeout=10).text.split("=")[1])
            call = stub.Stream(echo_pb2.EchoRequest(count=100000000, response_size=1000), timeout=60)
            for index, message in enumerate(call):
                if index == 10:
                    break
            call.cancel()
            for _ in range(100):
                after = int(stub.Stats(echo_pb2.EchoRequest(), timeout=10).text.split("=")[1])
                if after > before:
                    return
                time.sleep(0.05)
            raise AssertionError("server handler was not cancelled")

        def error_message():
            message = "bad value \"50%\": caf\u00e9 \u2603 done"
            error = expect_code(lambda: stub.Unary(echo_pb2.EchoRequest(text="fail:" + message), timeout=10), grpc.StatusCode.INVALID_ARGUMENT)
            assert error.details() == message, repr(error.details())

        def unknown_method():
            call = channel.unary_unary("/interop.v1.Echo/Nope")
            expect_code(lambda: call(b"", timeout=10), grpc.StatusCode.UNIMPLEMENTED)

        def health():
            call = channel.unary_unary("/grpc.health.v1.Health/Check")
            assert call(b"", timeout=10) == b"\x08\x01"
            service = b"interop.v1.Echo"
            assert call(b"\x0a" + bytes([len(service)]) + service, timeout=10) == b"\x08\x01"
            unknown = b"no.such.Service"
            expect_code(lambda: call(b"\x0a" + bytes([len(unknown)]) + unknown, timeout=10), grpc.StatusCode.NOT_FOUND)

        def compressed():
            expect_code(lambda: stub.Unary(echo_pb2.EchoRequest(text="zip" * 100), timeout=10, compression=grpc.Compression.Gzip),
                        grpc.StatusCode.UNIMPLEMENTED)

        names = sys.argv[6].split(",") if len(sys.argv) > 6 else None
        for name, fn in [("unary", unary), ("stream", stream), ("large", large), ("too_large", too_large),
                         ("deadline", deadline), ("cancel_stream", cancel_stream), ("error_message", error_message),
                         ("unknown_method", unknown_method), ("health", health), ("compressed", compressed)]:
            if names is None or name in names:
                check(name, fn)
        """#
}
