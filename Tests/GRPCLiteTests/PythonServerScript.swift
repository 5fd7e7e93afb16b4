/// The grpcio server of the interop test: argv is DIRECTORY CA CERT KEY. It serves
/// `interop.v1.Echo` with mutual TLS on 127.0.0.1 and a kernel-assigned port, prints
/// "port N", and exits when its standard input closes.
enum PythonServerScript {
    static let source = #"""
        import sys, time, threading
        sys.path.insert(0, sys.argv[1])
        from concurrent import futures
        import grpc
        import echo_pb2, echo_pb2_grpc

        ca, cert, key = sys.argv[2], sys.argv[3], sys.argv[4]
        lock = threading.Lock()
        cancelled = [0]

        def count_cancel():
            with lock:
                cancelled[0] += 1

        class Echo(echo_pb2_grpc.EchoServicer):
            def Unary(self, request, context):
                if request.text.startswith("fail:"):
                    context.abort(grpc.StatusCode.INVALID_ARGUMENT, request.text[5:])
                payload = b"b" * request.response_size if request.response_size > 0 else request.payload
                return echo_pb2.EchoResponse(text=request.text + "|python", payload=payload)

            def Stream(self, request, context):
                # The callback runs when the RPC ends; a stream that did not send everything was cancelled.
                completed = [False]
                context.add_callback(lambda: None if completed[0] else count_cancel())
                payload = b"a" * request.response_size
                for index in range(request.count):
                    yield echo_pb2.EchoResponse(index=index, payload=payload)
                completed[0] = True

            def Hang(self, request, context):
                while context.is_active():
                    time.sleep(0.01)
                count_cancel()
                return echo_pb2.EchoResponse()

            def Stats(self, request, context):
                with lock:
                    return echo_pb2.EchoResponse(text="cancelled=%d" % cancelled[0])

        credentials = grpc.ssl_server_credentials(
            [(open(key, "rb").read(), open(cert, "rb").read())], root_certificates=open(ca, "rb").read(),
            require_client_auth=True)
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=16), options=[
            ("grpc.max_receive_message_length", 8 * 1024 * 1024), ("grpc.max_send_message_length", 8 * 1024 * 1024)])
        echo_pb2_grpc.add_EchoServicer_to_server(Echo(), server)
        port = server.add_secure_port("127.0.0.1:0", credentials)
        server.start()
        print("port %d" % port, flush=True)
        sys.stdin.read()
        server.stop(0)
        """#
}
