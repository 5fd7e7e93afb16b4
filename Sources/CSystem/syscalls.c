#define _GNU_SOURCE
#include "syscalls.h"

#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

int cs_pidfd_open(pid_t pid, unsigned int flags) {
    return (int)syscall(SYS_pidfd_open, pid, flags);
}

int cs_pidfd_send_signal(int pidfd, int sig, unsigned int flags) {
    return (int)syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, flags);
}

int cs_waitid_pidfd(int pidfd, siginfo_t *info, int options) {
    return waitid((idtype_t)P_PIDFD, (id_t)pidfd, info, options);
}

int cs_close_range(unsigned int first, unsigned int last, unsigned int flags) {
    return (int)syscall(SYS_close_range, first, last, flags);
}

int cs_siginfo_code(const siginfo_t *info) { return info->si_code; }
int cs_siginfo_status(const siginfo_t *info) { return info->si_status; }
pid_t cs_siginfo_pid(const siginfo_t *info) { return info->si_pid; }

int cs_pipe2(int fds[2], int flags) { return pipe2(fds, flags); }
