import Foundation
import XCTest

/// Requests no well-behaved client sends, made through the generated grpcio client so jobctl's own checks
/// cannot hide what jobd does with them.
final class HostileInputTests: EndToEndTestCase {
    func testMalformedJobIDsAreInvalidArguments() throws {
        let jobd = try startJobd()
        let jobID = try startJob(["sleep", "1000"], on: jobd, as: writer)
        let cases: [(id: String, description: String)] = [
            ("../" + jobID, "relative path to a real job"),
            ("/etc/passwd", "absolute path"),
            (jobID + "\u{0}", "real id with a NUL byte"),
            ("a\nb", "newline that could forge a log line"),
            (String(repeating: "x", count: 100_000), "100,000 characters"),
            ("jöb", "non-ASCII letter"),
            (".hidden", "leading dot"),
        ]
        var calls: [[String: Any]] = []
        for (id, _) in cases {
            for method in ["Query", "Stop", "Stream"] {
                calls.append(["method": method, "request": ["job_id": id]])
            }
        }

        let results = try RawCalls.run(calls, on: jobd, as: writer, test: self)

        for (index, result) in results.enumerated() {
            let (id, description) = cases[index / 3]
            let label = "\(calls[index]["method"]!) with \(description)"
            XCTAssertEqual(result.code, "INVALID_ARGUMENT", "\(label): \(result.details.prefix(300))")
            XCTAssertTrue(result.details.contains("invalid job id"), "\(label): \(result.details.prefix(300))")
            XCTAssertLessThan(result.details.utf8.count, 400, "\(label) echoed the whole id")
            let hasControl = result.details.contains("\u{0}") || result.details.contains("\n")
            XCTAssertFalse(hasControl, "\(label): \(id.prefix(9))")
        }
        let status = try queryJSON(jobID, on: jobd, as: writer)
        XCTAssertEqual(status["state"] as? String, "JOB_STATE_RUNNING", "a malformed id reached the real job")
    }

    func testStartRejectsStringsExecveCannotTake() throws {
        let jobd = try startJobd()
        let cases: [(request: [String: Any], expected: String, description: String)] = [
            (["name": "ec\u{0}ho"], "invalid command \"ec\\0ho\"", "NUL in the command"),
            (["name": "echo", "args": ["ok", "a\u{0}b"]], "invalid argument 2 \"a\\0b\"", "NUL in an argument"),
            (["name": "env", "env": ["A=B": "C"]], "invalid environment variable name \"A=B\"", "'=' in a name"),
            (["name": "env", "env": ["": "C"]], "invalid environment variable name \"\"", "empty name"),
            (
                ["name": "env", "env": ["A": "B\u{0}C"]],
                "invalid value of environment variable \"A\": \"B\\0C\" contains a NUL byte", "NUL in a value"
            ),
            (["name": "pwd", "working_directory": "tmp"], "expected an absolute path", "relative directory"),
            (["name": "pwd", "working_directory": "/tmp\u{0}x"], "invalid working directory", "NUL in directory"),
        ]

        let results = try RawCalls.run(
            cases.map { ["method": "Start", "request": $0.request] }, on: jobd, as: writer, test: self)

        for (result, testCase) in zip(results, cases) {
            XCTAssertEqual(result.code, "INVALID_ARGUMENT", "\(testCase.description): \(result.details)")
            XCTAssertTrue(
                result.details.contains(testCase.expected),
                "\(testCase.description): \(result.details) lacks \(testCase.expected)")
        }
        let list = try jobctl(["list", "--json"], on: jobd)
        let jobs = try JSONSerialization.jsonObject(with: Data(list.stdout)) as? [Any]
        XCTAssertEqual(jobs?.count, 0, "a rejected start left a job: \(list.stdoutText)")
    }

    /// Error messages quote the value at fault; a huge value must not make the message undeliverable.
    func testHugeStartValuesGetBoundedErrors() throws {
        let jobd = try startJobd()
        let huge = String(repeating: "x", count: 100_000)
        let cases: [(request: [String: Any], expected: String, description: String)] = [
            // execve(2) and chdir(2) reject these with ENAMETOOLONG.
            (["name": huge], "FAILED_PRECONDITION", "100 KB command name"),
            (["name": "/" + huge], "FAILED_PRECONDITION", "100 KB command path"),
            (["name": "true", "working_directory": "/" + huge], "FAILED_PRECONDITION", "100 KB working directory"),
            (["name": "true", "resources": ["memory_limit": String(repeating: "9", count: 100_000)]],
             "INVALID_ARGUMENT", "100 KB memory limit"),
            (["name": "true", "resources": ["cpu_quota": String(repeating: "\n", count: 100_000)]],
             "INVALID_ARGUMENT", "100 KB of newlines as CPU limit"),
            (["name": "no-such-program", "env": ["PATH": String(repeating: "/x:", count: 30_000)]],
             "FAILED_PRECONDITION", "90 KB PATH"),
        ]

        let results = try RawCalls.run(
            cases.map { ["method": "Start", "request": $0.request] }, on: jobd, as: writer, test: self)

        for (result, testCase) in zip(results, cases) {
            XCTAssertEqual(result.code, testCase.expected, "\(testCase.description): \(result.details.prefix(300))")
            XCTAssertLessThanOrEqual(result.details.utf8.count, 1100, "\(testCase.description)")
            XCTAssertTrue(result.details.contains("elided") || result.details.contains("bytes)"), testCase.description)
        }
    }

    func testListOfManyLongJobsFitsJobctl() throws {
        let jobd = try startJobd()
        let argument = String(repeating: "y", count: 100_000)
        let starts = Array(repeating: ["method": "Start", "request": ["name": "true", "args": [argument]]], count: 50)
        let results = try RawCalls.run(starts, on: jobd, as: writer, test: self)
        XCTAssertEqual(results.filter { $0.code == "OK" }.count, 50, "\(results.prefix(3))")

        let list = try jobctl(["list", "--json"], on: jobd, as: writer)

        XCTAssertEqual(list.status, 0, "a 5 MB List response failed: \(list.stderrText)")
        let jobs = try JSONSerialization.jsonObject(with: Data(list.stdout)) as? [Any]
        XCTAssertEqual(jobs?.count, 50)
    }

    /// tmpfs has no disk of its own, so a --disk-io limit cannot apply; the message must point at the
    /// --io-device flag, not at root or cgroup permissions, which are fine.
    func testDiskIOLimitOnTmpfsNamesTheFlag() throws {
        let mounts = try String(contentsOfFile: "/proc/self/mounts", encoding: .utf8)
        // Each line of /proc/self/mounts: source, mount point, type, options, ...
        let isTmpfs = mounts.split(separator: "\n").contains { line in
            line.split(separator: " ").dropFirst().prefix(2) == ["/dev/shm", "tmpfs"]
        }
        guard isTmpfs else {
            throw XCTSkip("/dev/shm is not a tmpfs mount here")
        }
        var template = Array("/dev/shm/jobworker-e2e-state-XXXXXX".utf8CString)
        let state = try XCTUnwrap(mkdtemp(&template).map { String(cString: $0) }, "mkdtemp in /dev/shm failed")
        defer { TemporaryDirectory.remove(state) }
        let jobd = try startJobd(stateDirectory: state)

        let result = try jobctl(["start", "--disk-io", "10MB/s", "--", "true"], on: jobd)

        XCTAssertEqual(result.status, 65, result.stderrText)
        XCTAssertTrue(result.stderrText.contains("--io-device"), result.stderrText)
        XCTAssertFalse(result.stderrText.contains("runs as root"), result.stderrText)
        let plain = try jobctl(["start", "--", "true"], on: jobd)
        XCTAssertEqual(plain.status, 0, "a job without --disk-io failed on tmpfs: \(plain.stderrText)")
    }
}

/// Runs a list of calls through the grpcio stubs and returns each call's status code name and details.
enum RawCalls {
    struct Result {
        let code: String
        let details: String
    }

    /// Runs `calls`, each `["method": name, "request": fields as proto3 JSON]`, one after another on one
    /// channel with a 30 s deadline each. Stream calls are read to their end.
    static func run(
        _ calls: [[String: Any]], on jobd: Jobd, as identity: Identity, test: EndToEndTestCase
    ) throws -> [Result] {
        let python = try GRPCInterop.requirePython()
        let generated = try GRPCInterop.generateStubs(python: python, into: test.scratch + "/python")
        let script = test.scratch + "/raw_calls.py"
        let input = test.scratch + "/raw_calls.json"
        try rawCallsScript.write(toFile: script, atomically: true, encoding: .utf8)
        try JSONSerialization.data(withJSONObject: calls).write(to: URL(fileURLWithPath: input))

        let result = try Command.run(
            python,
            [script, generated, jobd.address, test.pki.caFile, identity.certificate, identity.key, input],
            timeout: .seconds(60 + 35 * calls.count))
        guard result.status == 0 else {
            throw SubprocessError(message: "raw call script failed:\n\(result.stdoutText)\n\(result.stderrText)")
        }
        guard let lines = try JSONSerialization.jsonObject(with: Data(result.stdout)) as? [[String: String]] else {
            throw SubprocessError(message: "raw call script printed no result list: \(result.stdoutText)")
        }
        return lines.map { Result(code: $0["code"] ?? "?", details: $0["details"] ?? "") }
    }

    static let rawCallsScript = """
        import json
        import sys
        import grpc
        from google.protobuf import json_format

        generated, address, ca, cert, key, calls_file = sys.argv[1:7]
        sys.path.insert(0, generated)
        from jobworker.v1 import jobworker_pb2 as pb
        from jobworker.v1 import jobworker_pb2_grpc as pb_grpc

        credentials = grpc.ssl_channel_credentials(
            open(ca, "rb").read(), open(key, "rb").read(), open(cert, "rb").read())
        options = [("grpc.max_send_message_length", 64 << 20)]
        channel = grpc.secure_channel(address, credentials, options=options)
        stub = pb_grpc.JobServiceStub(channel)
        results = []
        for call in json.load(open(calls_file)):
            method = call["method"]
            request = json_format.ParseDict(call["request"], getattr(pb, method + "Request")())
            try:
                if method == "Stream":
                    for _ in stub.Stream(request, timeout=30):
                        pass
                else:
                    getattr(stub, method)(request, timeout=30)
                results.append({"code": "OK", "details": ""})
            except grpc.RpcError as error:
                results.append({"code": error.code().name, "details": error.details() or ""})
        channel.close()
        print(json.dumps(results))
        """
}
