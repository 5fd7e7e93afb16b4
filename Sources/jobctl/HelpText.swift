/// Returns the text `jobctl --help` prints; `certificates` is the default certificate directory.
func jobctlHelpText(certificates: String) -> String {
    let exitCodes = ExitCode.allCases.map { code in
        "  " + String(code.rawValue).padding(toLength: 5, withPad: " ", startingAt: 0) + code.summary
    }
    return """
        usage: jobctl [GLOBAL FLAGS] COMMAND ...

        commands:
          start [FLAGS] [--] CMD [ARG ...]    start CMD as a job and print its id
          run [FLAGS] [--] CMD [ARG ...]      start CMD, stream its output, exit like the job
          stop JOB_ID                         stop a job: SIGTERM, then SIGKILL after jobd's grace period
          query [--json] JOB_ID               print a job's state, exit code and owner
          list [--json]                       print the jobs this certificate may see
          stream JOB_ID                       print a job's output from the start, then follow it;
                                              stdout goes to stdout, stderr to stderr, byte for byte
          certs init [--force] DIR            create a development CA, a server certificate for
                                              localhost, 127.0.0.1 and ::1, and client certificates
                                              admin, writer and reader in DIR

        start flags (start and run; also accepted after CMD until the first --):
          --cpu PERCENT     share of one CPU, e.g. 50% or 150% (1.5 CPUs)
          --memory BYTES    memory limit with K, M, G or T suffix (powers of 1024), e.g. 256M
          --disk-io RATE    read and write rate, each, on jobd's disk (powers of 1024), e.g. 10MB/s
          --pids N          maximum number of processes and threads in the job (default 1024)
          --workdir DIR     the job's working directory on jobd's host (default: jobd's own)

        global flags (each also read from the environment variable in brackets):
          --server HOST:PORT   jobd address [JOBCTL_SERVER] (default 127.0.0.1:50051)
          --tls-ca FILE        CA that signed jobd's certificate [JOBCTL_TLS_CA]
                               (default \(certificates)/ca.pem)
          --tls-cert FILE      client certificate [JOBCTL_TLS_CERT] (default \(certificates)/admin.pem)
          --tls-key FILE       its private key [JOBCTL_TLS_KEY] (default \(certificates)/admin-key.pem)

        exit status (stream and run end with the job's exit code, or 128 + signal when a
        signal ended it; jobctl's own failures use):
        \(exitCodes.joined(separator: "\n"))
        """
}
