import Foundation
import Reactor

// Blocked before anything else runs, so no thread created later can take these signals: the reactor
// reads them from a signalfd instead (signalfd(2) needs them blocked in every thread).
EventLoop.blockSignals([SIGTERM, SIGINT, SIGHUP])

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
