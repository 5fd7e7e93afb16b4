#ifndef JOBWORKER_CURING_SHIM_H
#define JOBWORKER_CURING_SHIM_H
#include <liburing.h>
#endif
