#ifndef JOBWORKER_CSYSTEM_H
#define JOBWORKER_CSYSTEM_H

// Umbrella header: what Swift cannot call directly. Each header below belongs to one
// feature; the syscall wrappers are thin and keep the kernel's names.
#include "syscalls.h"
#include "job_spawn.h"

#endif
