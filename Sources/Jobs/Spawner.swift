import CSystem
import Glibc

/// Process started by `Spawner.spawn`: its pid (for logs only, never for signals) and
/// its pidfd, which the caller owns and closes after reaping the process.
struct SpawnedProcess {
    let pid: pid_t
    let pidfd: Int32
}

/// Parameters of one spawn. Fds are owned by the caller and stay open in the parent.
struct SpawnRequest {
    var command: String
    /// Arguments after argv[0]; argv[0] is `command` as given.
    var arguments: [String]
    /// KEY=VALUE strings for execve.
    var environment: [String]
    var workingDirectory: String?
    /// v2: cgroup directory fd for CLONE_INTO_CGROUP, or -1.
    var cgroupDirectoryFD: Int32 = -1
    /// v1: each controller's cgroup.procs, opened O_WRONLY, for the child to join.
    var cgroupProcsFDs: [Int32] = []
    var stdinFD: Int32
    var stdoutFD: Int32
    var stderrFD: Int32
}

/// Starts processes through `cs_spawn` (clone3 with CLONE_PIDFD, CLONE_VM | CLONE_VFORK).
enum Spawner {
    /// Search path used when the job's environment has no PATH, as glibc's execvp uses
    /// confstr(_CS_PATH) plus the usual local directories.
    static let defaultSearchPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

    /// Returns the paths execvp would try for `command`: the command itself when it
    /// contains a slash, else each PATH entry joined with it (an empty entry is the
    /// current directory).
    static func candidatePaths(for command: String, searchPath: String) -> [String] {
        if command.contains("/") { return [command] }
        return searchPath.split(separator: ":", omittingEmptySubsequences: false).map { entry in
            entry.isEmpty ? command : "\(entry)/\(command)"
        }
    }

    /// Returns the PATH value from KEY=VALUE strings, or the default search path.
    static func searchPath(in environment: [String]) -> String {
        for entry in environment where entry.hasPrefix("PATH=") {
            return String(entry.dropFirst(5))
        }
        return defaultSearchPath
    }

    /// Starts the process described by `request`. Throws SpawnError with the failed step and
    /// errno; the child of a failed spawn has been reaped and its pidfd closed.
    static func spawn(_ request: SpawnRequest) throws(SpawnError) -> SpawnedProcess {
        let command = request.command
        guard !command.isEmpty else {
            throw SpawnError(step: .prepare, errno: ENOENT, command: command)
        }
        let strings = [command] + request.arguments + request.environment + [request.workingDirectory ?? ""]
        if strings.contains(where: { $0.utf8.contains(0) }) {
            throw SpawnError(step: .prepare, errno: EINVAL, command: command)
        }

        let searchPath = searchPath(in: request.environment)
        let candidates = candidatePaths(for: command, searchPath: searchPath)
        var result = cs_spawn_result()
        let status = withCStringArray(candidates) { candidatePointers in
            withCStringArray([command] + request.arguments) { argv in
                withCStringArray(request.environment) { envp in
                    request.cgroupProcsFDs.withUnsafeBufferPointer { procsFDs in
                        withOptionalCString(request.workingDirectory) { workingDirectory in
                            candidatePointers.withMemoryRebound(to: UnsafePointer<CChar>?.self) { candidatePaths in
                                var spawnRequest = cs_spawn_request(
                                    candidate_paths: candidatePaths.baseAddress,
                                    candidate_count: Int32(candidates.count),
                                    argv: argv.baseAddress,
                                    envp: envp.baseAddress,
                                    working_directory: workingDirectory,
                                    cgroup_directory_fd: request.cgroupDirectoryFD,
                                    cgroup_procs_fds: procsFDs.baseAddress,
                                    cgroup_procs_count: Int32(procsFDs.count),
                                    stdin_fd: request.stdinFD,
                                    stdout_fd: request.stdoutFD,
                                    stderr_fd: request.stderrFD)
                                return cs_spawn(&spawnRequest, &result)
                            }
                        }
                    }
                }
            }
        }
        if status == 0 {
            return SpawnedProcess(pid: result.pid, pidfd: result.pidfd)
        }
        throw spawnError(
            result, command: command, candidates: candidates, searchPath: searchPath,
            workingDirectory: request.workingDirectory)
    }

    private static func spawnError(
        _ result: cs_spawn_result, command: String, candidates: [String], searchPath: String,
        workingDirectory: String?
    ) -> SpawnError {
        var errno = result.error
        var path: String?
        var reportedSearchPath: String?
        if result.stage == Int32(CS_SPAWN_STAGE_EXEC.rawValue) {
            let index = Int(result.failed_path_index)
            path = candidates.indices.contains(index) ? candidates[index] : command
            // A name looked up in PATH and found nowhere names the PATH searched.
            if !command.contains("/") && (errno == ENOENT || errno == ENOTDIR) {
                reportedSearchPath = searchPath
            }
            // execve reports a directory as EACCES, so report EISDIR, the real cause.
            if errno == EACCES, let path, isDirectory(path) {
                errno = EISDIR
            }
        } else if result.stage == Int32(CS_SPAWN_STAGE_CHDIR.rawValue) {
            path = workingDirectory
        }
        return SpawnError(
            stage: result.stage, errno: errno, command: command, path: path,
            searchPath: reportedSearchPath)
    }

    private static func isDirectory(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR
    }
}

/// Calls `body` with a NULL-terminated array of C strings that live for the call.
private func withCStringArray<R>(
    _ strings: [String], _ body: (UnsafeMutableBufferPointer<UnsafeMutablePointer<CChar>?>) -> R
) -> R {
    var pointers: [UnsafeMutablePointer<CChar>?] = strings.map { strdup($0) }
    pointers.append(nil)
    defer { pointers.forEach { free($0) } }
    return pointers.withUnsafeMutableBufferPointer { body($0) }
}

private func withOptionalCString<R>(_ string: String?, _ body: (UnsafePointer<CChar>?) -> R) -> R {
    guard let string else { return body(nil) }
    return string.withCString { body($0) }
}
