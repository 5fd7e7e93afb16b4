import Cgroups
import Foundation
import Glibc
import Reactor

/// Files of the jobs in the state directory: `<id>.json` (metadata, `JobRecord`) and
/// `<id>.log` (output, see `OutputLogFormat`), both in `<state dir>/jobs`.
struct JobStore {
    let directory: String

    /// Creates the jobs directory below `stateDirectory` if missing (mkdir -p, mode 0700).
    init(stateDirectory: String) throws {
        directory = (stateDirectory as NSString).appendingPathComponent("jobs")
        do {
            try FileManager.default.createDirectory(
                atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        } catch {
            throw JobError(
                .storage,
                "cannot create the jobs directory \"\(directory)\": \(error.localizedDescription); "
                    + "check that the state directory is writable")
        }
    }

    func logPath(id: String) -> String { "\(directory)/\(id).log" }
    func metadataPath(id: String) -> String { "\(directory)/\(id).json" }

    /// Writes the job's metadata atomically: a temporary file, then rename(2) over the old
    /// one, so a reader sees either version whole.
    func save(_ status: JobStatus) throws {
        let path = metadataPath(id: status.id)
        let temporary = path + ".tmp"
        let data: Data
        do {
            data = try JSONEncoder().encode(JobRecord(status))
        } catch {
            throw JobError(.storage, "cannot encode the metadata of job \(status.id): \(error)")
        }
        // NOTE: no fsync: the metadata survives a restart of jobd, not necessarily a power
        // loss, and fsync could stall the loop thread on a busy disk.
        do {
            let fd = try Syscall.call("open", temporary) {
                open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
            }
            defer { Syscall.close(fd) }
            try data.withUnsafeBytes { bytes in
                var offset = 0
                while offset < bytes.count {
                    offset += try Syscall.call("write", temporary) {
                        write(fd, bytes.baseAddress! + offset, bytes.count - offset)
                    }
                }
            }
            _ = try Syscall.call("rename", temporary) { rename(temporary, path) }
        } catch let error as SystemError {
            unlink(temporary)
            throw JobError(
                .storage,
                "cannot save the metadata of job \(status.id): \(error); "
                    + "check that \(directory) is writable and the disk has space")
        }
    }

    /// Removes a job's files, e.g. after a failed start.
    func remove(id: String) {
        unlink(metadataPath(id: id))
        unlink(logPath(id: id))
    }

    /// Returns every job's saved status; files that cannot be read are skipped and
    /// reported in `failures`.
    func loadAll() throws -> (statuses: [JobStatus], failures: [String]) {
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: directory)
        } catch {
            throw JobError(
                .storage,
                "cannot list the jobs directory \"\(directory)\": \(error.localizedDescription); check its permissions")
        }

        var statuses: [JobStatus] = []
        var failures: [String] = []
        for name in names.sorted() {
            let path = "\(directory)/\(name)"
            if name.hasSuffix(".json.tmp") {
                unlink(path)  // a save interrupted before its rename
                continue
            }
            guard name.hasSuffix(".json") else { continue }
            do {
                let data = try Data(contentsOf: URL(fileURLWithPath: path))
                statuses.append(try JSONDecoder().decode(JobRecord.self, from: data).status)
            } catch {
                failures.append("cannot read job metadata \"\(path)\": \(error)")
            }
        }
        return (statuses, failures)
    }
}

/// The JSON form of a `JobStatus`; field names are the file format.
struct JobRecord: Codable {
    struct Limits: Codable {
        var cpuPercent: UInt32?
        var memoryBytes: UInt64?
        var ioBytesPerSecond: UInt64?
        var maxPids: UInt32
    }

    struct Usage: Codable {
        var cpuNanoseconds: UInt64
        var memoryPeakBytes: UInt64
        var ioReadBytes: UInt64
        var ioWriteBytes: UInt64
        var oomKills: UInt64
    }

    var id: String
    var owner: String
    var command: String
    var arguments: [String]
    var state: String
    var exitCode: Int32?
    var signal: Int32?
    var oomKilled: Bool
    var startedAtNanoseconds: UInt64
    var endedAtNanoseconds: UInt64?
    var usage: Usage?
    var limits: Limits

    init(_ status: JobStatus) {
        id = status.id
        owner = status.owner
        command = status.command
        arguments = status.arguments
        state = status.state.rawValue
        exitCode = status.exitCode
        signal = status.signal
        oomKilled = status.oomKilled
        startedAtNanoseconds = status.startedAtNanoseconds
        endedAtNanoseconds = status.endedAtNanoseconds
        usage = status.usage.map {
            Usage(
                cpuNanoseconds: $0.cpuNanoseconds, memoryPeakBytes: $0.memoryPeakBytes,
                ioReadBytes: $0.ioReadBytes, ioWriteBytes: $0.ioWriteBytes, oomKills: $0.oomKills)
        }
        limits = Limits(
            cpuPercent: status.limits.cpuPercent, memoryBytes: status.limits.memoryBytes,
            ioBytesPerSecond: status.limits.ioBytesPerSecond, maxPids: status.limits.maxPids)
    }

    var status: JobStatus {
        get throws {
            guard let jobState = JobState(rawValue: state) else {
                throw JobError(.storage, "unknown job state \"\(state)\" in the metadata of job \(id)")
            }
            return JobStatus(
                id: id, owner: owner, command: command, arguments: arguments, state: jobState, exitCode: exitCode,
                signal: signal, oomKilled: oomKilled, startedAtNanoseconds: startedAtNanoseconds,
                endedAtNanoseconds: endedAtNanoseconds,
                usage: usage.map {
                    ResourceUsage(
                        cpuNanoseconds: $0.cpuNanoseconds, memoryPeakBytes: $0.memoryPeakBytes,
                        ioReadBytes: $0.ioReadBytes, ioWriteBytes: $0.ioWriteBytes, oomKills: $0.oomKills)
                },
                limits: ResourceLimits(
                    cpuPercent: limits.cpuPercent, memoryBytes: limits.memoryBytes,
                    ioBytesPerSecond: limits.ioBytesPerSecond, maxPids: limits.maxPids))
        }
    }
}

/// Returns CLOCK_REALTIME in nanoseconds since the Unix epoch.
func wallClockNanoseconds() -> UInt64 {
    var now = timespec()
    clock_gettime(CLOCK_REALTIME, &now)
    return UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec)
}
