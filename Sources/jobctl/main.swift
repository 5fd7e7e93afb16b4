import Foundation
import GRPCLite
import JobAPI

/// Parses the command line, runs the command and returns the exit status.
func runJobctl(arguments: [String], environment: [String: String]) -> Int32 {
    let invocation: Invocation
    do {
        invocation = try Invocation.parse(arguments)
    } catch {
        report("\(error)")
        return ExitCode.usage.rawValue
    }

    do {
        return try perform(invocation, environment: environment)
    } catch let failure as Failure {
        report(failure.message)
        return failure.exitCode.rawValue
    } catch let usage as UsageError {
        report(usage.description)
        return ExitCode.usage.rawValue
    } catch {
        report("\(error)")
        return ExitCode.internalError.rawValue
    }
}

private func perform(_ invocation: Invocation, environment: [String: String]) throws -> Int32 {
    switch invocation.command {
    case .help:
        try OutputWriter.print(
            jobctlHelpText(certificates: ClientSettings.defaultCertificateDirectory(environment: environment)))
        return ExitCode.success.rawValue
    case .certsInit(let directory, let force):
        let written = try CertificatesCommand.initialize(directory: directory, force: force)
        try OutputWriter.print(written.joined(separator: "\n"))
        return ExitCode.success.rawValue
    default:
        break
    }

    let settings = try ClientSettings.resolve(flags: invocation.global, environment: environment)
    try settings.checkFilesReadable()
    let client = try ClientErrors.translating(settings) {
        try GRPCClient(
            host: settings.host, port: settings.port,
            tls: TLSConfiguration(
                caFile: settings.caFile, certificateFile: settings.certificateFile, privateKeyFile: settings.keyFile))
    }
    defer { client.close() }
    let commands = JobctlCommands(client: client)

    return try ClientErrors.translating(settings) {
        switch invocation.command {
        case .start(let options):
            try OutputWriter.print(try commands.start(options))
        case .run(let options):
            let jobID = try commands.start(options)
            return try commands.stream(jobID: jobID).shellExitStatus
        case .stop(let jobID):
            try OutputWriter.print(JobFormatter.details(try commands.stop(jobID: jobID)))
        case .query(let jobID, let json):
            let job = try commands.query(jobID: jobID)
            try OutputWriter.print(json ? JobFormatter.json(JobFormatter.jsonObject(job)) : JobFormatter.details(job))
        case .list(let json):
            let jobs = try commands.list()
            try OutputWriter.print(
                json ? JobFormatter.json(jobs.map(JobFormatter.jsonObject)) : JobFormatter.table(jobs))
        case .stream(let jobID):
            return try commands.stream(jobID: jobID).shellExitStatus
        case .help, .certsInit:
            break
        }
        return ExitCode.success.rawValue
    }
}

private func report(_ message: String) {
    try? OutputWriter.print("jobctl: " + message, to: STDERR_FILENO)
}

exit(runJobctl(arguments: Array(CommandLine.arguments.dropFirst()), environment: ProcessInfo.processInfo.environment))
