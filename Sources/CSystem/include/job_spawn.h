#ifndef JOBWORKER_CSYSTEM_JOB_SPAWN_H
#define JOBWORKER_CSYSTEM_JOB_SPAWN_H

#include <sys/types.h>

// Steps of the child between clone and exec; the failing one travels back with its errno.
enum cs_spawn_stage {
    CS_SPAWN_STAGE_CLONE = 1,         // clone3 or clone in the parent
    CS_SPAWN_STAGE_JOIN_CGROUP = 2,   // v1: writing the child's pid into a cgroup.procs file
    CS_SPAWN_STAGE_SETSID = 3,
    CS_SPAWN_STAGE_SIGNALS = 4,
    CS_SPAWN_STAGE_REDIRECT = 5,      // dup2 onto fds 0, 1 and 2
    CS_SPAWN_STAGE_CLOSE_FDS = 6,
    CS_SPAWN_STAGE_CHDIR = 7,
    CS_SPAWN_STAGE_EXEC = 8,
    CS_SPAWN_STAGE_PARENT = 9,        // pipe2, mmap or read in the parent
};

/// Describes one process to start. Every pointer and fd stays owned by the caller; the
/// child only reads them (it shares the parent's memory until execve).
struct cs_spawn_request {
    /// Paths to try with execve, in order, as execvp would (computed by the caller from
    /// PATH so the child does no allocation). At least one.
    const char *const *candidate_paths;
    int candidate_count;
    char *const *argv;                 // NULL-terminated
    char *const *envp;                 // NULL-terminated
    const char *working_directory;     // NULL keeps the parent's
    int cgroup_directory_fd;           // v2: O_DIRECTORY fd for CLONE_INTO_CGROUP; -1 for none
    const int *cgroup_procs_fds;       // v1: cgroup.procs files opened O_WRONLY by the caller
    int cgroup_procs_count;
    int stdin_fd;                      // becomes fd 0 (e.g. /dev/null)
    int stdout_fd;                     // becomes fd 1
    int stderr_fd;                     // becomes fd 2
};

/// Outcome of cs_spawn. On success `pid` and `pidfd` are set and `error` is 0; the pidfd
/// is O_CLOEXEC and owned by the caller. On failure `error` is the errno, `stage` the
/// step that failed, `failed_path` the candidate whose execve failed last (stage EXEC),
/// and no child is left: a child that started was reaped before returning.
struct cs_spawn_result {
    pid_t pid;
    int pidfd;
    int error;
    int stage;
    int failed_path_index;
};

/// Starts a process the way posix_spawn does, with a pidfd: clone3 with CLONE_PIDFD,
/// CLONE_VM | CLONE_VFORK on a 64 KiB stack mapped here, and CLONE_INTO_CGROUP when
/// `cgroup_directory_fd` is set. The child joins the v1 cgroups, calls setsid, resets every
/// signal to SIG_DFL with an empty mask, redirects fds 0-2, marks every other fd
/// close-on-exec (close_range, Linux 5.11), changes directory and calls execve on each
/// candidate path. Only async-signal-safe calls run in the child. An error in the child
/// travels back through a close-on-exec pipe. When clone3 is unavailable (ENOSYS, e.g.
/// under a seccomp filter) and no cgroup fd is requested, falls back to clone(2) with the
/// same flags. Returns 0 on success, -1 on failure (see `result`).
int cs_spawn(const struct cs_spawn_request *request, struct cs_spawn_result *result);

#endif
