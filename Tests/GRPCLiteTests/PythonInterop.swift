import Foundation
import XCTest

/// Writes `echo.proto` and the given script into a temporary directory and generates the
/// grpcio stubs there with grpc_tools.protoc, as the interop tests need them.
struct PythonWorkspace {
    let python: String
    let directory: String

    init(python: String) throws {
        self.python = python
        directory = NSTemporaryDirectory() + "grpclite-py-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try EchoProto.source.write(toFile: directory + "/echo.proto", atomically: true, encoding: .utf8)
        let result = try runProcess(
            python,
            [
                "-m", "grpc_tools.protoc", "-I", directory, "--python_out=\(directory)",
                "--grpc_python_out=\(directory)", directory + "/echo.proto",
            ])
        guard result.status == 0 else {
            throw XCTSkip("grpc_tools.protoc failed (status \(result.status)): \(result.error)")
        }
    }

    func write(script: String, named name: String) throws -> String {
        let path = directory + "/" + name
        try script.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    func remove() {
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// Parses "ok NAME" / "FAIL NAME: detail" lines into NAME -> "ok" or the detail.
    static func results(_ output: String) -> [String: String] {
        var results: [String: String] = [:]
        for line in output.split(separator: "\n") {
            if line.hasPrefix("ok ") {
                results[String(line.dropFirst(3))] = "ok"
            } else if line.hasPrefix("FAIL ") {
                let rest = line.dropFirst(5)
                let name = rest.prefix { $0 != ":" }
                results[String(name)] = String(rest)
            }
        }
        return results
    }
}
