import Foundation
import GRPCLite
import XCTest

/// Certificates for one test case, minted with `CertificateAuthority` into a temporary
/// directory: a CA, a server certificate for localhost / 127.0.0.1 / ::1, a client
/// certificate with roles, and a second CA with its own client, which the server must reject.
struct TLSFixtures {
    let directory: String
    let caFile: String
    let serverCertificate: String
    let serverKey: String
    let clientCertificate: String
    let clientKey: String
    let foreignCAFile: String
    let foreignClientCertificate: String
    let foreignClientKey: String

    init(clientCommonName: String = "alice", roles: String? = "admin") throws {
        directory = NSTemporaryDirectory() + "grpclite-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)

        let ca = try CertificateAuthority.create(commonName: "GRPCLite test CA")
        caFile = directory + "/ca.pem"
        try PEMFile.write(ca.certificatePEM, to: caFile, mode: 0o644)

        serverCertificate = directory + "/server.pem"
        serverKey = directory + "/server-key.pem"
        try ca.issueServerCertificate(commonName: "localhost")
            .write(certificateFile: serverCertificate, privateKeyFile: serverKey)

        clientCertificate = directory + "/client.pem"
        clientKey = directory + "/client-key.pem"
        try ca.issueClientCertificate(commonName: clientCommonName, roles: roles)
            .write(certificateFile: clientCertificate, privateKeyFile: clientKey)

        let foreign = try CertificateAuthority.create(commonName: "Another CA")
        foreignCAFile = directory + "/foreign-ca.pem"
        try PEMFile.write(foreign.certificatePEM, to: foreignCAFile, mode: 0o644)
        foreignClientCertificate = directory + "/foreign-client.pem"
        foreignClientKey = directory + "/foreign-client-key.pem"
        try foreign.issueClientCertificate(commonName: "mallory", roles: "admin")
            .write(certificateFile: foreignClientCertificate, privateKeyFile: foreignClientKey)
    }

    var server: TLSConfiguration {
        TLSConfiguration(caFile: caFile, certificateFile: serverCertificate, privateKeyFile: serverKey)
    }

    var client: TLSConfiguration {
        TLSConfiguration(caFile: caFile, certificateFile: clientCertificate, privateKeyFile: clientKey)
    }

    func remove() {
        try? FileManager.default.removeItem(atPath: directory)
    }
}

/// Finds the Python venv with grpcio: $JOBWORKER_VENV, else `.venv` at the package root.
/// Missing: fails when CI=true, else skips with the reason.
enum PythonEnvironment {
    static func python(file: StaticString = #filePath) throws -> String {
        var candidates: [String] = []
        if let venv = ProcessInfo.processInfo.environment["JOBWORKER_VENV"], !venv.isEmpty {
            candidates.append(venv + "/bin/python")
        }
        let root = URL(fileURLWithPath: "\(file)").deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        candidates.append(root.path + "/.venv/bin/python")

        for candidate in candidates where FileManager.default.isExecutableFile(atPath: candidate) {
            return candidate
        }
        let reason = "no Python venv with grpcio at \(candidates.joined(separator: " or ")): run `make venv`"
        if ProcessInfo.processInfo.environment["CI"] == "true" {
            throw MissingPython(description: reason)
        }
        throw XCTSkip(reason)
    }
}

/// The interop tests' failure when CI=true and the venv is missing.
struct MissingPython: Error, CustomStringConvertible {
    let description: String
}

/// The result of a finished child process.
struct ProcessResult {
    let status: Int32
    let output: String
    let error: String
}

/// Runs a child process to completion with a time limit, collecting its output.
func runProcess(
    _ executable: String, _ arguments: [String], input: String? = nil, timeout: TimeInterval = 120
) throws -> ProcessResult {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    let outputPipe = Pipe()
    let errorPipe = Pipe()
    let inputPipe = Pipe()
    process.standardOutput = outputPipe
    process.standardError = errorPipe
    process.standardInput = inputPipe
    try process.run()
    if let input {
        inputPipe.fileHandleForWriting.write(Data(input.utf8))
    }
    try? inputPipe.fileHandleForWriting.close()

    // Read both pipes on their own threads so a full pipe cannot block the child.
    let outputBox = DataBox()
    let errorBox = DataBox()
    let readers = DispatchGroup()
    for (pipe, box) in [(outputPipe, outputBox), (errorPipe, errorBox)] {
        readers.enter()
        Thread.detachNewThread {
            box.set(pipe.fileHandleForReading.readDataToEndOfFile())
            readers.leave()
        }
    }
    let deadline = Date().addingTimeInterval(timeout)
    while process.isRunning && Date() < deadline {
        Thread.sleep(forTimeInterval: 0.02)
    }
    if process.isRunning {
        process.terminate()  // our own child, started above
        process.waitUntilExit()
    }
    process.waitUntilExit()
    _ = readers.wait(timeout: .now() + 5)
    return ProcessResult(
        status: process.terminationStatus, output: String(decoding: outputBox.get(), as: UTF8.self),
        error: String(decoding: errorBox.get(), as: UTF8.self))
}

final class DataBox: @unchecked Sendable {
    private let lock = NSLock()
    private var data = Data()
    func set(_ value: Data) { lock.lock(); data = value; lock.unlock() }
    func get() -> Data { lock.lock(); defer { lock.unlock() }; return data }
}
