import Foundation
import XCTest

/// Runs the Python fixture scripts with the project's venv (grpcio-tools and protobuf).
///
/// The venv is $JOBWORKER_VENV, set by `make test`, else <package root>/.venv from `make venv`.
/// Without it the interop tests skip, except under CI=true where they fail.
public enum FixturePython {
    public static let packageRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent()  // TestSupport
        .deletingLastPathComponent()  // Tests
        .deletingLastPathComponent()

    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    /// Returns the venv's python, or throws XCTSkip (outside CI) or a failure (CI=true) when it is missing.
    public static func interpreter() throws -> String {
        let environment = ProcessInfo.processInfo.environment
        let venv = environment["JOBWORKER_VENV"] ?? packageRoot.appendingPathComponent(".venv").path
        let python = venv + "/bin/python"
        if FileManager.default.isExecutableFile(atPath: python) {
            return python
        }
        let reason = "python venv not found at \(venv): run `make venv` in \(packageRoot.path) or set JOBWORKER_VENV"
        if environment["CI"] == "true" {
            throw Failure(description: reason)
        }
        throw XCTSkip(reason)
    }

    /// Runs `script` with `arguments` and returns when it exits 0; throws with its stderr otherwise.
    public static func run(script: URL, arguments: [String]) throws {
        let python = try interpreter()
        let errorURL = FileManager.default.temporaryDirectory
            .appendingPathComponent("fixture-python-\(UUID().uuidString).stderr")
        _ = FileManager.default.createFile(atPath: errorURL.path, contents: nil)
        defer { try? FileManager.default.removeItem(at: errorURL) }

        let process = Process()
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments = [script.path] + arguments
        // stderr goes to a file, not a pipe, so a chatty script cannot block on a full pipe.
        process.standardError = try FileHandle(forWritingTo: errorURL)
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()

        guard process.terminationStatus == 0 else {
            let stderr = (try? String(contentsOf: errorURL, encoding: .utf8)) ?? ""
            throw Failure(
                description: "\(script.lastPathComponent) \(arguments.first ?? "") exited with status "
                    + "\(process.terminationStatus): \(stderr)")
        }
    }

    /// Runs `script emit OUT` and returns its {case name: encoded bytes}.
    public static func emit(script: URL) throws -> [String: [UInt8]] {
        let output = temporaryFile("emit.json")
        defer { try? FileManager.default.removeItem(at: output) }
        try run(script: script, arguments: ["emit", output.path])

        let hexCases = try JSONDecoder().decode([String: String].self, from: Data(contentsOf: output))
        return try hexCases.mapValues { try bytes(fromHex: $0) }
    }

    /// Runs `script check IN OUT` on Swift encodings; returns {case name: mismatch, nil when equal}.
    public static func check(script: URL, encoded: [String: [UInt8]]) throws -> [String: String?] {
        let input = temporaryFile("check-in.json")
        let output = temporaryFile("check-out.json")
        defer {
            try? FileManager.default.removeItem(at: input)
            try? FileManager.default.removeItem(at: output)
        }
        try JSONEncoder().encode(encoded.mapValues { hex($0) }).write(to: input)
        try run(script: script, arguments: ["check", input.path, output.path])
        return try JSONDecoder().decode([String: String?].self, from: Data(contentsOf: output))
    }

    public static func hex(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var text: [UInt8] = []
        text.reserveCapacity(bytes.count * 2)
        for byte in bytes {
            text.append(digits[Int(byte >> 4)])
            text.append(digits[Int(byte & 0x0F)])
        }
        return String(decoding: text, as: UTF8.self)
    }

    public static func bytes(fromHex text: String) throws -> [UInt8] {
        let digits = Array(text.utf8)
        guard digits.count % 2 == 0 else {
            throw Failure(description: "invalid hex string of odd length \(digits.count)")
        }
        var result: [UInt8] = []
        result.reserveCapacity(digits.count / 2)
        var index = 0
        while index < digits.count {
            guard let high = nibble(digits[index]), let low = nibble(digits[index + 1]) else {
                throw Failure(description: "invalid hex digit near offset \(index)")
            }
            result.append(high << 4 | low)
            index += 2
        }
        return result
    }

    private static func nibble(_ digit: UInt8) -> UInt8? {
        switch digit {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): digit - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): digit - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): digit - UInt8(ascii: "A") + 10
        default: nil
        }
    }

    private static func temporaryFile(_ suffix: String) -> URL {
        FileManager.default.temporaryDirectory.appendingPathComponent("fixture-\(UUID().uuidString)-\(suffix)")
    }
}
