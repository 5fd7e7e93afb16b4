import GRPCLite

/// The `--name value` options of one load generator command, read once and checked.
struct Arguments {
    let command: String
    private var values: [String: String] = [:]

    /// Splits `arguments` (without the program name) into the command and its options.
    init(_ arguments: [String]) throws {
        guard let command = arguments.first else {
            throw LoadError("missing command: expected one of \(Commands.names.joined(separator: ", "))")
        }
        self.command = command
        var index = 1
        while index < arguments.count {
            let name = arguments[index]
            guard name.hasPrefix("--"), index + 1 < arguments.count else {
                throw LoadError("invalid argument \"\(name)\": expected --NAME VALUE pairs")
            }
            values[String(name.dropFirst(2))] = arguments[index + 1]
            index += 2
        }
    }

    func string(_ name: String, default fallback: String? = nil) throws -> String {
        guard let value = values[name] ?? fallback else {
            throw LoadError("missing --\(name) for \(command)")
        }
        return value
    }

    func int(_ name: String, default fallback: Int? = nil) throws -> Int {
        let text = try string(name, default: fallback.map(String.init))
        guard let value = Int(text), value >= 0 else {
            throw LoadError("invalid --\(name) \"\(text)\": expected a whole number")
        }
        return value
    }

    func seconds(_ name: String, default fallback: Double? = nil) throws -> Double {
        let text = try string(name, default: fallback.map { String($0) })
        guard let value = Double(text), value > 0, value <= 3600 else {
            throw LoadError("invalid --\(name) \"\(text)\": expected seconds between 0 and 3600, e.g. 2.5")
        }
        return value
    }

    /// Returns `--server-pid`, the server process whose CPU time is reported, if given.
    func serverPID() throws -> Int? {
        values["server-pid"] == nil ? nil : try int("server-pid")
    }

    /// Parses the server address from `--server HOST:PORT`.
    func server() throws -> (host: String, port: UInt16) {
        let text = try string("server")
        guard let colon = text.lastIndex(of: ":"), let port = UInt16(text[text.index(after: colon)...]) else {
            throw LoadError("invalid --server \"\(text)\": expected HOST:PORT, e.g. 127.0.0.1:50051")
        }
        return (String(text[..<colon]), port)
    }

    /// Returns the GRPCLite TLS settings from `--ca`, `--cert` and `--key`, for the server
    /// name "localhost" that the benchmark certificates carry.
    func grpcTLS() throws -> TLSConfiguration {
        TLSConfiguration(
            caFile: try string("ca"), certificateFile: try string("cert"), privateKeyFile: try string("key"),
            serverName: "localhost")
    }

    /// Loads the OpenSSL client context for Redis from `--ca`, `--cert` and `--key`.
    func tls(alpn: String?) throws -> TLSClientContext {
        try TLSClientContext(
            caFile: string("ca"), certificateFile: string("cert"), privateKeyFile: string("key"), alpn: alpn)
    }
}
