#ifndef JOBWORKER_CSYSTEM_SPAWN_H
#define JOBWORKER_CSYSTEM_SPAWN_H

// Filled by the Jobs work: the clone3 spawn routine that runs in the child between clone and exec.

#endif
