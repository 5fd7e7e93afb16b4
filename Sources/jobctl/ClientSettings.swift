import Foundation

/// The server address and certificate files jobctl uses. Each value comes from its flag, else its
/// JOBCTL_* variable, else the default that `make run` fills in.
struct ClientSettings: Equatable {
    var host: String
    var port: UInt16
    var caFile: String
    var certificateFile: String
    var keyFile: String

    static let defaultServer = "127.0.0.1:50051"

    /// Returns `$HOME/.jobworker/certs`, the directory `make run` creates with `jobctl certs init`; without
    /// HOME, the home directory from the user database (getpwuid(3)).
    static func defaultCertificateDirectory(environment: [String: String]) -> String {
        let home = environment["HOME"].flatMap { $0.isEmpty ? nil : $0 }
        return (home ?? FileManager.default.homeDirectoryForCurrentUser.path) + "/.jobworker/certs"
    }

    /// Resolves the settings; throws a usage failure for a server address that is not HOST:PORT.
    static func resolve(flags: GlobalFlags, environment: [String: String]) throws -> ClientSettings {
        func pick(_ flag: String?, _ variable: String, _ fallback: String) -> String {
            if let flag {
                return flag
            }
            if let value = environment[variable], !value.isEmpty {
                return value
            }
            return fallback
        }

        let certificates = defaultCertificateDirectory(environment: environment)
        let server = pick(flags.server, "JOBCTL_SERVER", defaultServer)
        let (host, port) = try parseServer(server)
        return ClientSettings(
            host: host, port: port,
            caFile: pick(flags.tlsCA, "JOBCTL_TLS_CA", certificates + "/ca.pem"),
            certificateFile: pick(flags.tlsCertificate, "JOBCTL_TLS_CERT", certificates + "/admin.pem"),
            keyFile: pick(flags.tlsKey, "JOBCTL_TLS_KEY", certificates + "/admin-key.pem"))
    }

    /// Parses `HOST:PORT` or `[IPV6]:PORT`; HOST may be a name such as localhost.
    static func parseServer(_ value: String) throws -> (String, UInt16) {
        let invalid = UsageError(
            description: "invalid server address \"\(value)\": expected HOST:PORT, e.g. 127.0.0.1:50051 or [::1]:50051")

        let host: Substring
        let port: Substring
        if value.hasPrefix("["), let close = value.firstIndex(of: "]") {
            host = value[value.index(after: value.startIndex)..<close]
            let rest = value[value.index(after: close)...]
            guard rest.hasPrefix(":") else {
                throw invalid
            }
            port = rest.dropFirst()
        } else {
            guard let colon = value.lastIndex(of: ":"), !value[..<colon].contains(":") else {
                throw invalid
            }
            host = value[..<colon]
            port = value[value.index(after: colon)...]
        }
        guard !host.isEmpty, let number = UInt16(port), number > 0 else {
            throw invalid
        }
        return (String(host), number)
    }

    /// Checks that the three files are readable, so a missing file is reported by name before connecting.
    func checkFilesReadable() throws {
        let files = [("CA certificate", caFile), ("client certificate", certificateFile), ("client key", keyFile)]
        for (role, path) in files where access(path, R_OK) != 0 {
            let reason = String(cString: strerror(errno)).lowercased()
            throw Failure(
                exitCode: .certificate,
                message: "cannot read the \(role) \"\(path)\": \(reason): run `make run` once to create a "
                    + "development PKI, or pass --tls-ca, --tls-cert and --tls-key (or JOBCTL_TLS_CA, "
                    + "JOBCTL_TLS_CERT, JOBCTL_TLS_KEY)")
        }
    }
}
