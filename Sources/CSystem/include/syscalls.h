#ifndef JOBWORKER_CSYSTEM_SYSCALLS_H
#define JOBWORKER_CSYSTEM_SYSCALLS_H

#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/wait.h>

// Each wrapper returns what the raw syscall returns: -1 with errno set on failure.

/// Opens a pidfd for `pid` (pidfd_open(2), Linux 5.3).
int cs_pidfd_open(pid_t pid, unsigned int flags);

/// Sends `sig` to the process behind `pidfd` (pidfd_send_signal(2), Linux 5.1).
int cs_pidfd_send_signal(int pidfd, int sig, unsigned int flags);

/// Waits for the child behind `pidfd` (waitid(2) with P_PIDFD, Linux 5.4).
int cs_waitid_pidfd(int pidfd, siginfo_t *info, int options);

/// Closes every fd from `first` to `last` (close_range(2), Linux 5.9).
int cs_close_range(unsigned int first, unsigned int last, unsigned int flags);

/// Creates a pipe with `flags` (O_CLOEXEC, O_NONBLOCK) on both ends (pipe2(2)); Swift's Glibc
/// module does not declare pipe2 because it needs _GNU_SOURCE.
int cs_pipe2(int fds[2], int flags);

/// Returns the exit status and signal fields of a siginfo_t filled by waitid(2).
int cs_siginfo_code(const siginfo_t *info);
int cs_siginfo_status(const siginfo_t *info);
pid_t cs_siginfo_pid(const siginfo_t *info);

#endif
