/*
 * timeutil: deadlines for pthread_cond_timedwait and friends on CLOCK_MONOTONIC (the
 * condition variables that use it are made by cond_init_monotonic).
 * Any thread; no state.
 */
#ifndef PIREC_TIMEUTIL_H
#define PIREC_TIMEUTIL_H

#include <pthread.h>
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

/* A condition variable whose timed waits count on CLOCK_MONOTONIC (a Pi without an RTC
 * steps its wall clock at NTP sync). 0 or a positive error, as pthread_cond_init. */
static inline int cond_init_monotonic(pthread_cond_t *c)
{
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    int rc = pthread_cond_init(c, &ca);
    pthread_condattr_destroy(&ca);
    return rc;
}

#endif
