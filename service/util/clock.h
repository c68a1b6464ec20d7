/* clock.h: deadlines for pthread_cond_timedwait. */
#ifndef SVC_UTIL_CLOCK_H
#define SVC_UTIL_CLOCK_H

#include <stdint.h>
#include <time.h>

/* The time ms milliseconds (>= 0) from now on clock: CLOCK_REALTIME for a
 * condition variable with default attributes, CLOCK_MONOTONIC for one set to
 * it (pthread_condattr_setclock). */
struct timespec clock_after(clockid_t clock, int64_t ms);

#endif
