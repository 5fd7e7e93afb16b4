import Foundation
import GRPCLite
import XCTest

/// A grpcio client (C core) calls a GRPCLite server over mutual TLS.
final class InteropServerTests: XCTestCase {
    func testGrpcioClientAgainstGRPCLiteServer() throws {
        let python = try PythonEnvironment.python()
        let fixtures = try TLSFixtures()
        defer { fixtures.remove() }
        let workspace = try PythonWorkspace(python: python)
        defer { workspace.remove() }
        let script = try workspace.write(script: PythonClientScript.source, named: "client.py")

        let server = try TestServer(tls: fixtures.server) { server, _, recorder in
            EchoService.install(on: server, recorder: recorder)
        }
        defer { server.stop() }

        let result = try runProcess(
            python,
            [
                script, workspace.directory, String(server.port), fixtures.caFile, fixtures.clientCertificate,
                fixtures.clientKey,
            ],
            timeout: 180)
        let results = PythonWorkspace.results(result.output)
        let scenarios = [
            "unary", "stream", "large", "too_large", "deadline", "cancel_stream", "error_message", "unknown_method",
            "health", "compressed",
        ]
        for scenario in scenarios {
            XCTAssertEqual(results[scenario], "ok", "scenario \(scenario); stderr: \(result.error.suffix(2000))")
        }
        XCTAssertEqual(result.status, 0, "python exit status; stderr: \(result.error.suffix(2000))")
    }
}
