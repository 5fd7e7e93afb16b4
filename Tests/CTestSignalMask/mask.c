#include "CTestSignalMask.h"

#include <signal.h>
#include <stddef.h>

static int blocked_at_start;

// Runs before main, while the process has one thread: every thread created later inherits
// the mask, so a SIGHUP sent to the process stays pending for the test's signalfd.
__attribute__((constructor)) static void block_sighup(void) {
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGHUP);
    blocked_at_start = sigprocmask(SIG_BLOCK, &mask, NULL) == 0;
}

int cts_sighup_blocked_at_start(void) { return blocked_at_start; }
