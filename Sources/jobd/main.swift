import Foundation
import Reactor

// Blocked before anything else runs, so no thread created later can take these signals: the reactor
// reads them from a signalfd instead (signalfd(2) needs them blocked in every thread).
EventLoop.blockSignals([SIGTERM, SIGINT, SIGHUP])

// A closed stderr pipe (`jobd 2>&1 | tee log` after tee exits) must not kill jobd and orphan its
// jobs: a failed write then returns EPIPE, which the logger ignores. Jobs start with default
// dispositions, so they still get SIGPIPE.
signal(SIGPIPE, SIG_IGN)

let environment = ProcessInfo.processInfo.environment
let request: ConfigurationRequest
do {
    request = try Configuration.parse(arguments: Array(CommandLine.arguments.dropFirst()), environment: environment)
} catch {
    FileHandle.standardError.write(Data("jobd: \(error)\n".utf8))
    exit(2)
}

switch request {
case .help:
    print(jobdHelpText(base: Configuration.defaultBaseDirectory(environment: environment)))
    exit(0)
case .run(let configuration):
    let logger = Logger(level: configuration.logLevel)
    do {
        let daemon = try Daemon(configuration: configuration, logger: logger)
        try daemon.run()
        exit(0)
    } catch {
        logger.error("jobd failed", ["error": error])
        exit(1)
    }
}
