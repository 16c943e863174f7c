/*
 * timeutil: deadlines for pthread_cond_timedwait and friends on CLOCK_MONOTONIC (the
 * condition variables that use it are created with pthread_condattr_setclock).
 * Any thread; no state.
 */
#ifndef PIREC_TIMEUTIL_H
#define PIREC_TIMEUTIL_H

#include <time.h>

/* *ts = now (CLOCK_MONOTONIC) + ms milliseconds (ms >= 0). */
static inline void deadline_after_ms(struct timespec *ts, long ms)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

#endif
