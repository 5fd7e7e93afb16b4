#ifndef JOBWORKER_CTESTSIGNALMASK_H
#define JOBWORKER_CTESTSIGNALMASK_H

/// Returns 1 when SIGHUP was blocked before main, in the thread that became the main thread.
int cts_sighup_blocked_at_start(void);

#endif
