#define _GNU_SOURCE
#include "job_spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <pthread.h>

#ifndef CLONE_PIDFD
#define CLONE_PIDFD 0x00001000
#endif
#ifndef CLONE_INTO_CGROUP
#define CLONE_INTO_CGROUP 0x200000000ULL
#endif
#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif
#ifndef P_PIDFD
#define P_PIDFD 3
#endif
#ifndef SYS_clone3
#define SYS_clone3 435
#endif

// The child only runs a few calls before execve; 64 KiB leaves ample room, and a fresh
// mapping per spawn keeps the cost independent of the parent's memory size.
#define CHILD_STACK_SIZE (64 * 1024)

// Layout of struct clone_args from <linux/sched.h> up to CLONE_ARGS_SIZE_VER2 (Linux 5.7),
// declared here because <linux/sched.h> clashes with glibc's <sched.h>.
struct cs_clone_args {
    uint64_t flags;
    uint64_t pidfd;
    uint64_t child_tid;
    uint64_t parent_tid;
    uint64_t exit_signal;
    uint64_t stack;
    uint64_t stack_size;
    uint64_t tls;
    uint64_t set_tid;
    uint64_t set_tid_size;
    uint64_t cgroup;
};

struct child_context {
    const struct cs_spawn_request *request;
    int error_pipe;
};

// The record the child writes into the error pipe when a step fails.
struct child_failure {
    int stage;
    int error;
    int path_index;
};

// Calls clone3 and runs `child` on the new stack in the child. glibc exports no clone3
// wrapper, and a plain syscall() would return into a C frame that lives on the parent's
// stack, so the child's side is written in assembly: it calls `child(argument)` and exits
// with its result. Returns the raw syscall result: a pid, or -errno.
static long clone3_run(struct cs_clone_args *args, int (*child)(void *), void *argument) {
#if defined(__x86_64__)
    // syscall preserves every register except rax, rcx and r11, so r8 and r9 still hold
    // the function and its argument in the child.
    register void *function_register __asm__("r8") = (void *)child;
    register void *argument_register __asm__("r9") = argument;
    long result = SYS_clone3;
    __asm__ volatile(
        "syscall\n\t"
        "test %%rax, %%rax\n\t"
        "jnz 1f\n\t"
        "xor %%ebp, %%ebp\n\t"
        "mov %%r9, %%rdi\n\t"
        "call *%%r8\n\t"
        "mov %%eax, %%edi\n\t"
        "mov $60, %%eax\n\t" // SYS_exit
        "syscall\n\t"
        "hlt\n\t"
        "1:\n\t"
        : "+a"(result)
        : "D"(args), "S"(sizeof(*args)), "r"(function_register),
          "r"(argument_register)
        : "rcx", "r11", "memory");
    return result;
#elif defined(__aarch64__)
    register long x0 __asm__("x0") = (long)args;
    register long x1 __asm__("x1") = (long)sizeof(*args);
    register long x8 __asm__("x8") = SYS_clone3;
    register long x9 __asm__("x9") = (long)child;
    register long x10 __asm__("x10") = (long)argument;
    __asm__ volatile(
        "svc #0\n\t"
        "cbnz x0, 1f\n\t"
        "mov x29, xzr\n\t"
        "mov x30, xzr\n\t"
        "mov x0, x10\n\t"
        "blr x9\n\t"
        "mov x8, #93\n\t" // SYS_exit
        "svc #0\n\t"
        "1:\n\t"
        : "+r"(x0)
        : "r"(x1), "r"(x8), "r"(x9), "r"(x10)
        : "memory");
    return x0;
#else
    (void)args;
    (void)child;
    (void)argument;
    return -ENOSYS;
#endif
}

// --- Child side: async-signal-safe calls only, no allocation, no locks. ---
// The child shares the parent's memory (and so its thread's errno) until execve; the
// parent is suspended by CLONE_VFORK meanwhile.

static void child_fail(int error_pipe, int stage, int error, int path_index) {
    struct child_failure failure = {stage, error, path_index};
    // Nothing useful can be done if this write fails: the parent then sees EOF and
    // reports the exit status instead.
    ssize_t ignored = write(error_pipe, &failure, sizeof failure);
    (void)ignored;
    syscall(SYS_exit, 127);
}

static int format_decimal(long value, char *buffer, int capacity) {
    char reversed[24];
    int length = 0;
    do {
        reversed[length++] = (char)('0' + value % 10);
        value /= 10;
    } while (value > 0 && length < (int)sizeof reversed);
    if (length > capacity) return -1;
    for (int i = 0; i < length; i++) buffer[i] = reversed[length - 1 - i];
    return length;
}

static int join_cgroups(const struct cs_spawn_request *request) {
    char pid_text[24];
    int length = format_decimal((long)syscall(SYS_getpid), pid_text, (int)sizeof pid_text);
    for (int i = 0; i < request->cgroup_procs_count; i++) {
        if (write(request->cgroup_procs_fds[i], pid_text, (size_t)length) != length) return -1;
    }
    return 0;
}

// Layout of the kernel's struct sigaction for rt_sigaction(2) on x86_64 and arm64 (both
// define SA_RESTORER), whose mask is 64 bits.
struct kernel_sigaction {
    void (*handler)(int);
    unsigned long flags;
    void (*restorer)(void);
    uint64_t mask;
};

static int reset_signals(void) {
    // The raw syscall, because glibc's sigaction rejects signals 32 and 33, which it
    // reserves for its threads, yet an inherited SIG_IGN there would survive execve.
    // SIGKILL and SIGSTOP fail with EINVAL, which is expected.
    struct kernel_sigaction default_action = {SIG_DFL, 0, NULL, 0};
    for (int signal_number = 1; signal_number <= 64; signal_number++) {
        syscall(SYS_rt_sigaction, signal_number, &default_action, NULL, sizeof(uint64_t));
    }

    uint64_t empty = 0;
    return (int)syscall(SYS_rt_sigprocmask, SIG_SETMASK, &empty, NULL, sizeof empty);
}

// Moves `fd` to 3 or above so a later dup2 onto 0, 1 or 2 cannot overwrite it.
static int raise_fd(int fd) {
    if (fd >= 3) return fd;
    return fcntl(fd, F_DUPFD_CLOEXEC, 3);
}

static int redirect_standard_fds(const struct cs_spawn_request *request) {
    int input = raise_fd(request->stdin_fd);
    int output = raise_fd(request->stdout_fd);
    int error = raise_fd(request->stderr_fd);
    if (input < 0 || output < 0 || error < 0) return -1;
    if (dup2(input, 0) < 0 || dup2(output, 1) < 0 || dup2(error, 2) < 0) return -1;
    return 0;
}

static int close_other_fds(int error_pipe) {
    // Close-on-exec rather than close, so the error pipe stays usable until execve.
    if (syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC) == 0) return 0;

    // Before Linux 5.11: close everything but the error pipe (already close-on-exec).
    if (error_pipe > 3 && syscall(SYS_close_range, 3U, (unsigned)error_pipe - 1, 0U) != 0) return -1;
    return (int)syscall(SYS_close_range, (unsigned)error_pipe + 1, ~0U, 0U);
}

// Tries each candidate like execvp: ENOENT, ENOTDIR and EACCES move on to the next path,
// and EACCES is reported if no later path works. ENOEXEC is reported as is: unlike
// execvp, there is no retry through /bin/sh.
static void exec_candidates(const struct cs_spawn_request *request, int error_pipe) {
    int denied_index = -1;
    int last_error = ENOENT;
    int last_index = 0;

    for (int i = 0; i < request->candidate_count; i++) {
        execve(request->candidate_paths[i], request->argv, request->envp);
        int error = errno;
        switch (error) {
        case EACCES:
            if (denied_index < 0) denied_index = i;
            break;
        case ENOENT:
        case ENOTDIR:
        case ENAMETOOLONG:
        case ELOOP:
            last_error = error;
            last_index = i;
            break;
        default:
            child_fail(error_pipe, CS_SPAWN_STAGE_EXEC, error, i);
        }
    }

    if (denied_index >= 0) child_fail(error_pipe, CS_SPAWN_STAGE_EXEC, EACCES, denied_index);
    child_fail(error_pipe, CS_SPAWN_STAGE_EXEC, last_error, last_index);
}

static int spawn_child(void *argument) {
    const struct child_context *context = argument;
    const struct cs_spawn_request *request = context->request;
    int error_pipe = context->error_pipe;

    // Before anything else, so every later step and the new program already count
    // against the job's cgroup.
    if (join_cgroups(request) != 0) child_fail(error_pipe, CS_SPAWN_STAGE_JOIN_CGROUP, errno, -1);
    if (setsid() < 0) child_fail(error_pipe, CS_SPAWN_STAGE_SETSID, errno, -1);
    if (reset_signals() != 0) child_fail(error_pipe, CS_SPAWN_STAGE_SIGNALS, errno, -1);
    if (redirect_standard_fds(request) != 0) child_fail(error_pipe, CS_SPAWN_STAGE_REDIRECT, errno, -1);
    if (close_other_fds(error_pipe) != 0) child_fail(error_pipe, CS_SPAWN_STAGE_CLOSE_FDS, errno, -1);
    if (request->working_directory != NULL && chdir(request->working_directory) != 0) {
        child_fail(error_pipe, CS_SPAWN_STAGE_CHDIR, errno, -1);
    }

    exec_candidates(request, error_pipe);
    return 127;
}

// --- Parent side. ---

static void fail_in_parent(struct cs_spawn_result *result, int stage, int error) {
    result->stage = stage;
    result->error = error;
}

static int make_error_pipe(int fds[2]) {
    if (pipe2(fds, O_CLOEXEC) != 0) return -1;
    for (int i = 0; i < 2; i++) {
        // Keep the pipe clear of 0-2, which the child overwrites with dup2.
        if (fds[i] < 3) {
            int raised = fcntl(fds[i], F_DUPFD_CLOEXEC, 3);
            int saved = errno;
            close(fds[i]);
            if (raised < 0) {
                close(fds[1 - i]);
                errno = saved;
                return -1;
            }
            fds[i] = raised;
        }
    }
    return 0;
}

static long clone_child(const struct cs_spawn_request *request, void *stack, struct child_context *context,
                        int *pidfd) {
    struct cs_clone_args args;
    memset(&args, 0, sizeof args);
    args.flags = CLONE_PIDFD | CLONE_VM | CLONE_VFORK;
    args.pidfd = (uint64_t)(uintptr_t)pidfd;
    args.exit_signal = SIGCHLD;
    args.stack = (uint64_t)(uintptr_t)stack;
    args.stack_size = CHILD_STACK_SIZE;
    if (request->cgroup_directory_fd >= 0) {
        args.flags |= CLONE_INTO_CGROUP;
        args.cgroup = (uint64_t)request->cgroup_directory_fd;
    }

    long pid = clone3_run(&args, spawn_child, context);
    if (pid != -ENOSYS || request->cgroup_directory_fd >= 0) return pid;

    // clone(2) takes the top of the stack and returns the pidfd through parent_tid.
    pid = clone(spawn_child, (char *)stack + CHILD_STACK_SIZE, CLONE_PIDFD | CLONE_VM | CLONE_VFORK | SIGCHLD,
                context, pidfd);
    return pid >= 0 ? pid : -errno;
}

static ssize_t read_failure(int fd, struct child_failure *failure) {
    ssize_t count;
    do {
        count = read(fd, failure, sizeof *failure);
    } while (count < 0 && errno == EINTR);
    return count;
}

static void reap(int pidfd) {
    siginfo_t info;
    while (waitid((idtype_t)P_PIDFD, (id_t)pidfd, &info, WEXITED) < 0 && errno == EINTR) {
    }
}

int cs_spawn(const struct cs_spawn_request *request, struct cs_spawn_result *result) {
    memset(result, 0, sizeof *result);
    result->pid = -1;
    result->pidfd = -1;
    result->failed_path_index = -1;

    int error_pipe[2];
    if (make_error_pipe(error_pipe) != 0) {
        fail_in_parent(result, CS_SPAWN_STAGE_PARENT, errno);
        return -1;
    }

    void *stack = mmap(NULL, CHILD_STACK_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    if (stack == MAP_FAILED) {
        fail_in_parent(result, CS_SPAWN_STAGE_PARENT, errno);
        close(error_pipe[0]);
        close(error_pipe[1]);
        return -1;
    }

    // Block every signal around clone, as posix_spawn does: a handler of the parent must
    // never run in the child while it shares the parent's memory. The child resets the
    // dispositions before it unblocks.
    sigset_t all_signals;
    sigset_t previous_mask;
    sigfillset(&all_signals);
    pthread_sigmask(SIG_BLOCK, &all_signals, &previous_mask);

    struct child_context context = {request, error_pipe[1]};
    int pidfd = -1;
    long pid = clone_child(request, stack, &context, &pidfd);

    // CLONE_VFORK: the child has called execve or exited by now, so its stack is free.
    pthread_sigmask(SIG_SETMASK, &previous_mask, NULL);
    munmap(stack, CHILD_STACK_SIZE);
    close(error_pipe[1]);

    if (pid < 0) {
        fail_in_parent(result, CS_SPAWN_STAGE_CLONE, (int)-pid);
        close(error_pipe[0]);
        return -1;
    }

    struct child_failure failure;
    ssize_t count = read_failure(error_pipe[0], &failure);
    int read_error = errno;
    close(error_pipe[0]);

    if (count == 0) {
        result->pid = (pid_t)pid;
        result->pidfd = pidfd;
        return 0;
    }

    reap(pidfd);
    close(pidfd);
    if (count == (ssize_t)sizeof failure) {
        result->stage = failure.stage;
        result->error = failure.error;
        result->failed_path_index = failure.path_index;
    } else {
        fail_in_parent(result, CS_SPAWN_STAGE_PARENT, count < 0 ? read_error : EIO);
    }
    return -1;
}
