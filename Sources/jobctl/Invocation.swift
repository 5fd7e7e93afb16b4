/// Connection settings given as flags; nil means "take it from the environment or the default".
struct GlobalFlags: Equatable {
    var server: String?
    var tlsCA: String?
    var tlsCertificate: String?
    var tlsKey: String?
}

/// The command and limits that `jobctl start` and `jobctl run` send, as the user typed them.
struct StartOptions: Equatable {
    var cpu: String?
    var memory: String?
    var diskIO: String?
    var pids: UInt32?
    /// The job's working directory on jobd's host; nil leaves jobd's default.
    var workingDirectory: String?
    var command = ""
    var arguments: [String] = []
}

/// One jobctl command with its operands.
enum Command: Equatable {
    case start(StartOptions)
    case run(StartOptions)
    case stop(jobID: String)
    case query(jobID: String, json: Bool)
    case list(json: Bool)
    case stream(jobID: String)
    case certsInit(directory: String, force: Bool)
    case help
}

/// A parsed command line.
struct Invocation: Equatable {
    var global = GlobalFlags()
    var command: Command
}

/// A command line jobctl cannot run; `description` names the argument and the fix.
struct UsageError: Error, CustomStringConvertible, Equatable {
    let description: String
}

extension Invocation {
    static let globalFlagNames: Set<String> = ["--server", "--tls-ca", "--tls-cert", "--tls-key"]
    static let startFlagNames: Set<String> = ["--cpu", "--memory", "--disk-io", "--pids", "--workdir"]

    /// Parses `arguments` (without the program name).
    ///
    /// Global flags may come before or after the command name. For `start` and `run`, flags after the job's
    /// command name are jobctl's only when they are start flags (`--cpu`, `--memory`, `--disk-io`, `--pids`,
    /// `--workdir`)
    /// and come before the first `--`. So `jobctl start bash -c "..." --cpu 50%` works, and everything after
    /// `--` goes to the job unchanged.
    static func parse(_ arguments: [String]) throws -> Invocation {
        var scanner = ArgumentScanner(arguments)
        var global = GlobalFlags()

        while let argument = scanner.peek(), argument.hasPrefix("-") {
            if argument == "--help" || argument == "-h" {
                return Invocation(global: global, command: .help)
            }
            try parseGlobalFlag(&scanner, into: &global)
        }
        guard let name = scanner.next() else {
            throw UsageError(description: "missing command: expected start, stop, query, list, stream, run or certs")
        }
        // `jobctl start --help` asks for help; after the job's command name, --help is the job's.
        if let next = scanner.peek(), next == "--help" || next == "-h" {
            return Invocation(global: global, command: .help)
        }

        let command: Command
        switch name {
        case "start":
            command = .start(try parseStart(&scanner, global: &global))
        case "run":
            command = .run(try parseStart(&scanner, global: &global))
        case "stop", "query", "stream":
            let (operands, json) = try parseOperands(&scanner, global: &global, allowJSON: name == "query")
            guard operands.count == 1 else {
                throw UsageError(
                    description: "\(name) takes one job id, got \(operands.count): e.g. jobctl \(name) JOB_ID")
            }
            switch name {
            case "stop": command = .stop(jobID: operands[0])
            case "query": command = .query(jobID: operands[0], json: json)
            default: command = .stream(jobID: operands[0])
            }
        case "list":
            let (operands, json) = try parseOperands(&scanner, global: &global, allowJSON: true)
            guard operands.isEmpty else {
                throw UsageError(
                    description: "list takes no operands, got \"\(operands[0])\": use jobctl list [--json]")
            }
            command = .list(json: json)
        case "certs":
            command = try parseCerts(&scanner)
        case "help":
            command = .help
        default:
            throw UsageError(
                description: "unknown command \"\(name)\": expected start, stop, query, list, stream, run or certs")
        }
        return Invocation(global: global, command: command)
    }

    private static func parseGlobalFlag(_ scanner: inout ArgumentScanner, into global: inout GlobalFlags) throws {
        let (name, value) = try scanner.flagWithValue()
        switch name {
        case "--server": global.server = value
        case "--tls-ca": global.tlsCA = value
        case "--tls-cert": global.tlsCertificate = value
        case "--tls-key": global.tlsKey = value
        default:
            throw UsageError(description: "unknown flag \"\(name)\": see jobctl --help")
        }
    }

    private static func parseStart(_ scanner: inout ArgumentScanner, global: inout GlobalFlags) throws -> StartOptions {
        var options = StartOptions()

        // Before the job's command name every flag belongs to jobctl.
        var sawSeparator = false
        while let argument = scanner.peek() {
            if argument == "--" {
                scanner.skip()
                sawSeparator = true
                break
            }
            guard argument.hasPrefix("-") else {
                break
            }
            if startFlagNames.contains(ArgumentScanner.flagName(argument)) {
                try parseStartFlag(&scanner, into: &options)
            } else {
                try parseGlobalFlag(&scanner, into: &global)
            }
        }

        guard let command = scanner.next() else {
            throw UsageError(
                description: "missing command to run: e.g. jobctl start --memory 256M -- bash -c 'echo hello'")
        }
        options.command = command

        // After it, only start flags are jobctl's, and only until the first "--". That "--"
        // belongs to the command (`printf '%s' a -- b`), so it is kept as an argument.
        while let argument = scanner.peek() {
            if !sawSeparator && argument == "--" {
                options.arguments.append(argument)
                scanner.skip()
                sawSeparator = true
            } else if !sawSeparator && startFlagNames.contains(ArgumentScanner.flagName(argument)) {
                try parseStartFlag(&scanner, into: &options)
            } else {
                options.arguments.append(argument)
                scanner.skip()
            }
        }
        return options
    }

    private static func parseStartFlag(_ scanner: inout ArgumentScanner, into options: inout StartOptions) throws {
        let (name, value) = try scanner.flagWithValue()
        switch name {
        case "--cpu": options.cpu = value
        case "--memory": options.memory = value
        case "--disk-io": options.diskIO = value
        case "--workdir": options.workingDirectory = value
        default:
            guard let pids = UInt32(value), pids > 0 else {
                throw UsageError(
                    description: "invalid --pids value \"\(value)\": expected a whole number above 0, e.g. 64")
            }
            options.pids = pids
        }
    }

    /// Collects operands, global flags and (where allowed) `--json` in any order.
    private static func parseOperands(
        _ scanner: inout ArgumentScanner, global: inout GlobalFlags, allowJSON: Bool
    ) throws -> ([String], Bool) {
        var operands: [String] = []
        var json = false
        var sawSeparator = false
        while let argument = scanner.peek() {
            if sawSeparator || !argument.hasPrefix("-") || argument == "-" {
                operands.append(argument)
                scanner.skip()
            } else if argument == "--" {
                sawSeparator = true
                scanner.skip()
            } else if argument == "--json" && allowJSON {
                json = true
                scanner.skip()
            } else {
                try parseGlobalFlag(&scanner, into: &global)
            }
        }
        return (operands, json)
    }

    private static func parseCerts(_ scanner: inout ArgumentScanner) throws -> Command {
        guard scanner.next() == "init" else {
            throw UsageError(description: "unknown certs command: expected jobctl certs init DIR")
        }
        var directory: String?
        var force = false
        while let argument = scanner.next() {
            if argument == "--force" {
                force = true
            } else if argument.hasPrefix("-") {
                throw UsageError(description: "unknown flag \"\(argument)\" for certs init: expected --force")
            } else if directory == nil {
                directory = argument
            } else {
                throw UsageError(description: "certs init takes one directory, got also \"\(argument)\"")
            }
        }
        guard let directory else {
            throw UsageError(description: "missing directory: e.g. jobctl certs init ~/.jobworker/certs")
        }
        return .certsInit(directory: directory, force: force)
    }
}

/// A cursor over the command line that understands `--flag VALUE` and `--flag=VALUE`.
struct ArgumentScanner {
    private let arguments: [String]
    private var index = 0

    init(_ arguments: [String]) {
        self.arguments = arguments
    }

    func peek() -> String? {
        index < arguments.count ? arguments[index] : nil
    }

    mutating func next() -> String? {
        defer { index += 1 }
        return peek()
    }

    mutating func skip() {
        index += 1
    }

    /// Returns the flag part of `--flag=value`, or the whole argument.
    static func flagName(_ argument: String) -> String {
        argument.split(separator: "=", maxSplits: 1).first.map(String.init) ?? argument
    }

    /// Consumes a flag and its value, from `--flag=value` or from the next argument.
    mutating func flagWithValue() throws -> (String, String) {
        let argument = next()!
        if let equals = argument.firstIndex(of: "=") {
            return (String(argument[..<equals]), String(argument[argument.index(after: equals)...]))
        }
        guard Invocation.globalFlagNames.contains(argument) || Invocation.startFlagNames.contains(argument) else {
            throw UsageError(description: "unknown flag \"\(argument)\": see jobctl --help")
        }
        guard let value = next() else {
            throw UsageError(description: "missing value for \(argument): see jobctl --help")
        }
        return (argument, value)
    }
}
