import Glibc

/// The load generator's commands, each one benchmark or one half of a baseline.
enum Commands {
    static let all: [String: @Sendable (Arguments) throws -> Void] = [
        "fanout": FanoutBenchmark.run,
        "fanout-redis": RedisFanoutBenchmark.run,
        "throughput": ThroughputBenchmark.run,
        "output": OutputBenchmark.run,
        "unary": UnaryBenchmark.run,
        "memory": MemoryBenchmark.run,
    ]
    static var names: [String] { all.keys.sorted() }
}

// A peer that closes a socket while we write must not end the process.
signal(SIGPIPE, SIG_IGN)

do {
    let arguments = try Arguments(Array(CommandLine.arguments.dropFirst()))
    guard let command = Commands.all[arguments.command] else {
        throw LoadError(
            "unknown command \"\(arguments.command)\": expected one of \(Commands.names.joined(separator: ", "))")
    }
    try command(arguments)
} catch {
    let message = "jobworker-loadgen: \(error)\n"
    _ = message.withCString { write(STDERR_FILENO, $0, strlen($0)) }
    exit(1)
}
