import Foundation

/// jobd's settings, from defaults, then an optional `--config` file, then command-line flags.
struct Configuration: Equatable {
    var listenHost = "127.0.0.1"
    var listenPort: UInt16 = 50051
    var stateDirectory: String
    var tlsCA: String
    var tlsCertificate: String
    var tlsKey: String
    /// Name of the cgroup subtree jobd creates below its own cgroup; one path component.
    var cgroupSubtree = "jobworker"
    /// Block device for disk I/O limits: "MAJ:MIN" or a /dev path; nil = the device of the state directory.
    var ioDevice: String?
    var stopGrace: Duration = .seconds(10)
    var logLevel: LogLevel = .info

    /// Creates the defaults: everything under `baseDirectory`, the same layout `make run` creates.
    init(baseDirectory: String) {
        stateDirectory = baseDirectory + "/state"
        tlsCA = baseDirectory + "/certs/ca.pem"
        tlsCertificate = baseDirectory + "/certs/server.pem"
        tlsKey = baseDirectory + "/certs/server-key.pem"
    }

    /// Returns `$HOME/.jobworker`, or `/var/lib/jobworker` when HOME is unset.
    static func defaultBaseDirectory(environment: [String: String]) -> String {
        if let home = environment["HOME"], !home.isEmpty {
            return home + "/.jobworker"
        }
        return "/var/lib/jobworker"
    }

    var listenAddress: String {
        listenHost.contains(":") ? "[\(listenHost)]:\(listenPort)" : "\(listenHost):\(listenPort)"
    }
}

/// The action the command line requests: run with a configuration, or print the help text.
enum ConfigurationRequest: Equatable {
    case run(Configuration)
    case help
}

/// A command-line or config-file value jobd cannot use; `description` names the value and the fix.
struct ConfigurationError: Error, CustomStringConvertible, Equatable {
    let description: String
}

extension Configuration {
    /// Flags that take a value, in the order `jobd --help` lists them.
    static let flagNames = [
        "listen", "state-dir", "tls-ca", "tls-cert", "tls-key", "cgroup-root", "io-device", "stop-grace",
        "log-level",
    ]

    /// Parses `arguments` (without the program name): `--flag VALUE`, `--flag=VALUE`, `--config FILE`,
    /// `--help`. Values from the config file apply first, so flags on the command line override them.
    static func parse(
        arguments: [String], environment: [String: String], readFile: (String) throws -> String = readTextFile
    ) throws -> ConfigurationRequest {
        var flags: [(name: String, value: String)] = []
        var configFile: String?

        var index = 0
        while index < arguments.count {
            let argument = arguments[index]
            index += 1
            if argument == "--help" || argument == "-h" {
                return .help
            }
            guard argument.hasPrefix("--") else {
                throw ConfigurationError(
                    description: "unexpected argument \"\(argument)\": jobd takes only flags, see jobd --help")
            }

            var name = String(argument.dropFirst(2))
            var value: String?
            if let equals = name.firstIndex(of: "=") {
                value = String(name[name.index(after: equals)...])
                name = String(name[..<equals])
            }
            guard name == "config" || flagNames.contains(name) else {
                throw ConfigurationError(description: "unknown flag \"--\(name)\": see jobd --help for the flags")
            }
            if value == nil {
                guard index < arguments.count else {
                    throw ConfigurationError(description: "missing value for --\(name): see jobd --help")
                }
                value = arguments[index]
                index += 1
            }

            if name == "config" {
                configFile = value
            } else {
                flags.append((name, value!))
            }
        }

        var configuration = Configuration(baseDirectory: defaultBaseDirectory(environment: environment))
        if let configFile {
            let text: String
            do {
                text = try readFile(configFile)
            } catch {
                throw ConfigurationError(
                    description: "cannot read config file \"\(configFile)\": \(error): check the path given to --config"
                )
            }
            for entry in try parseConfigFile(text, path: configFile) {
                try configuration.apply(flag: entry.name, value: entry.value, origin: entry.origin)
            }
        }
        for flag in flags {
            try configuration.apply(flag: flag.name, value: flag.value, origin: "--\(flag.name)")
        }
        return .run(configuration)
    }

    /// Parses `key = value` lines; `#` starts a comment line, blank lines are skipped, keys are flag names.
    static func parseConfigFile(_ text: String, path: String) throws -> [(name: String, value: String, origin: String)]
    {
        var entries: [(name: String, value: String, origin: String)] = []
        for (offset, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = rawLine.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") {
                continue
            }
            let origin = "\(path):\(offset + 1)"
            guard let equals = line.firstIndex(of: "=") else {
                throw ConfigurationError(
                    description:
                        "invalid line \"\(line)\" in \(origin): expected key = value, e.g. listen = 127.0.0.1:50051")
            }
            let name = line[..<equals].trimmingCharacters(in: .whitespaces)
            let value = line[line.index(after: equals)...].trimmingCharacters(in: .whitespaces)
            guard flagNames.contains(name) else {
                throw ConfigurationError(
                    description:
                        "unknown key \"\(name)\" in \(origin): expected one of \(flagNames.joined(separator: ", "))")
            }
            entries.append((name, value, origin))
        }
        return entries
    }

    /// Sets one setting from its flag name; `origin` ("--listen" or "FILE:LINE") goes into the error message.
    mutating func apply(flag name: String, value: String, origin: String) throws {
        switch name {
        case "listen":
            (listenHost, listenPort) = try Self.parseListenAddress(value, origin: origin)
        case "state-dir":
            stateDirectory = try Self.parsePath(value, origin: origin)
        case "tls-ca":
            tlsCA = try Self.parsePath(value, origin: origin)
        case "tls-cert":
            tlsCertificate = try Self.parsePath(value, origin: origin)
        case "tls-key":
            tlsKey = try Self.parsePath(value, origin: origin)
        case "cgroup-root":
            cgroupSubtree = try Self.parseCgroupSubtree(value, origin: origin)
        case "io-device":
            ioDevice = try Self.parseIODevice(value, origin: origin)
        case "stop-grace":
            stopGrace = try Self.parseDuration(value, origin: origin)
        case "log-level":
            guard let level = LogLevel(rawValue: value) else {
                throw ConfigurationError(
                    description: "invalid log level \"\(value)\" (\(origin)): expected debug, info, warning or error")
            }
            logLevel = level
        default:
            throw ConfigurationError(description: "unknown flag \"--\(name)\": see jobd --help for the flags")
        }
    }

    /// Parses `HOST:PORT` or `[IPV6]:PORT`; the host must be a numeric IPv4 or IPv6 address.
    static func parseListenAddress(_ value: String, origin: String) throws -> (String, UInt16) {
        let invalid = ConfigurationError(
            description: "invalid listen address \"\(value)\" (\(origin)): expected HOST:PORT with a numeric host, "
                + "e.g. 127.0.0.1:50051, [::1]:50051, or 127.0.0.1:0 for a free port")

        let host: Substring
        let port: Substring
        if value.hasPrefix("[") {
            guard let close = value.firstIndex(of: "]"), value[value.index(after: close)...].hasPrefix(":") else {
                throw invalid
            }
            host = value[value.index(after: value.startIndex)..<close]
            port = value[value.index(close, offsetBy: 2)...]
        } else {
            guard let colon = value.lastIndex(of: ":"), !value[..<colon].contains(":") else {
                throw invalid
            }
            host = value[..<colon]
            port = value[value.index(after: colon)...]
        }

        guard let portNumber = UInt16(port), isNumericAddress(String(host)) else {
            throw invalid
        }
        return (String(host), portNumber)
    }

    /// Returns true for a numeric IPv4 or IPv6 address (inet_pton(3)).
    static func isNumericAddress(_ host: String) -> Bool {
        var buffer = [UInt8](repeating: 0, count: 16)
        return inet_pton(AF_INET, host, &buffer) == 1 || inet_pton(AF_INET6, host, &buffer) == 1
    }

    static func parsePath(_ value: String, origin: String) throws -> String {
        guard !value.isEmpty else {
            throw ConfigurationError(description: "empty path for \(origin): give a file or directory path")
        }
        return value
    }

    static func parseCgroupSubtree(_ value: String, origin: String) throws -> String {
        guard !value.isEmpty, !value.contains("/"), value != ".", value != ".." else {
            throw ConfigurationError(
                description: "invalid cgroup subtree name \"\(value)\" (\(origin)): expected one path component, "
                    + "e.g. jobworker")
        }
        return value
    }

    static func parseIODevice(_ value: String, origin: String) throws -> String {
        let parts = value.split(separator: ":", omittingEmptySubsequences: false)
        let isMajorMinor = parts.count == 2 && parts.allSatisfy { UInt32($0) != nil }
        guard isMajorMinor || value.hasPrefix("/dev/") else {
            throw ConfigurationError(
                description: "invalid I/O device \"\(value)\" (\(origin)): expected MAJOR:MINOR or a /dev path, "
                    + "e.g. 8:0 or /dev/sda")
        }
        return value
    }

    /// Parses a whole number with a unit: `ms`, `s` or `m`, e.g. `500ms`, `10s`, `1m`.
    static func parseDuration(_ value: String, origin: String) throws -> Duration {
        let units: [(suffix: String, make: (Int64) -> Duration)] = [
            ("ms", { .milliseconds($0) }), ("s", { .seconds($0) }), ("m", { .seconds($0 * 60) }),
        ]
        for unit in units where value.hasSuffix(unit.suffix) {
            let number = value.dropLast(unit.suffix.count)
            if let amount = Int64(number), amount >= 0, amount <= 86_400_000 {
                return unit.make(amount)
            }
        }
        throw ConfigurationError(
            description: "invalid duration \"\(value)\" (\(origin)): expected a whole number with ms, s or m, e.g. 10s")
    }

    /// Returns the text of the file at `path`, for `--config`.
    static func readTextFile(_ path: String) throws -> String {
        try String(contentsOfFile: path, encoding: .utf8)
    }
}
