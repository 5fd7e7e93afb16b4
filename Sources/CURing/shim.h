#ifndef JOBWORKER_CURING_SHIM_H
#define JOBWORKER_CURING_SHIM_H

// liburing.h defines _XOPEN_SOURCE and _GNU_SOURCE before its own includes, which changes
// how glibc declares some structs (fd_set's field names). Including the system headers
// first, with the default feature macros, keeps their definitions identical to the ones in
// Swift's Glibc module; otherwise Clang rejects the two modules as inconsistent.
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <string.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <liburing.h>

#endif
