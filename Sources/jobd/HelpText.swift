/// Returns the text `jobd --help` prints, with the defaults derived from `base` (normally `$HOME/.jobworker`).
func jobdHelpText(base: String) -> String {
    """
    usage: jobd [--config FILE] [--FLAG VALUE ...]

    jobd runs Linux commands as jobs, each in its own cgroup, and serves the
    jobworker.v1.JobService gRPC API over TLS 1.3 with mutual certificate
    authentication. It logs to stderr, one line per event, and is ready to serve
    once it has logged "listening address=HOST:PORT".

    flags (each also accepted as --FLAG=VALUE):
      --config FILE        read settings from FILE first: one "key = value" per line,
                           keys are the flag names below without "--", "#" starts a
                           comment; flags on the command line override the file
      --listen HOST:PORT   address to serve on, a numeric IPv4 or [IPv6] address;
                           port 0 picks a free port (default 127.0.0.1:50051)
      --state-dir DIR      job metadata and output logs; kept across restarts
                           (default \(base)/state)
      --tls-ca FILE        PEM CA certificate that client certificates must chain to
                           (default \(base)/certs/ca.pem)
      --tls-cert FILE      PEM server certificate, chain allowed
                           (default \(base)/certs/server.pem)
      --tls-key FILE       PEM private key of the server certificate
                           (default \(base)/certs/server-key.pem)
      --cgroup-root NAME   name of the cgroup subtree created below jobd's own cgroup
                           for the jobs' cgroups (default jobworker)
      --io-device DEVICE   block device for --disk-io limits, MAJOR:MINOR or a /dev
                           path (default: the device that holds --state-dir)
      --stop-grace TIME    time between SIGTERM and SIGKILL when a job is stopped,
                           a whole number with ms, s or m (default 10s)
      --log-level LEVEL    debug, info, warning or error (default info)
      --help               print this help

    signals:
      SIGTERM, SIGINT      stop accepting connections, finish calls in flight, stop
                           running jobs (with the grace period), exit 0
      SIGHUP               reload the TLS certificate, key and CA from their files

    roles come from the client certificate's extension
    2.25.7848382311874025851451681593532974798 (UTF8String "reader", "writer",
    "admin" or a comma-separated list); the identity is the certificate's CN.

    exit status: 0 after a clean shutdown, 1 when serving failed, 2 for an invalid
    flag or config file.
    """
}
