/* capture_waits: what the capture unit tests wait for, each with a deadline (never a
 * fixed sleep): frames in the ring, and capture events as a recorder would collect them.
 * Include after cmocka.h. Header only: nothing to link. */
#ifndef PIREC_TESTS_CAPTURE_WAITS_H
#define PIREC_TESTS_CAPTURE_WAITS_H

#include "audio/capture.h"

#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

static inline int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static inline void nap_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Fails the test unless the capture wrote past frame `past` within the deadline. */
static inline void wait_frames(struct capture *c, uint64_t past, int deadline_ms)
{
    int64_t end = now_ms() + deadline_ms;
    while (audio_ring_write_pos(capture_ring(c)) <= past && now_ms() < end)
        audio_ring_wait(capture_ring(c), past, 50);
    if (audio_ring_write_pos(capture_ring(c)) <= past)
        fail_msg("no frame past %llu within %d ms", (unsigned long long)past, deadline_ms);
}

/* Events collected by on_event (capture thread) and read by the test. */
struct seen {
    _Atomic int n;
    struct capture_event ev[16];
    int64_t at_ms[16];   /* when each arrived (CLOCK_MONOTONIC) */
};

static inline void on_event(const struct capture_event *ev, void *arg)
{
    struct seen *s = arg;
    int i = atomic_load(&s->n);
    if (i < 16) {
        s->ev[i] = *ev;
        s->at_ms[i] = now_ms();
        atomic_store(&s->n, i + 1);
    }
}

static inline void wait_events(struct seen *s, int n, int deadline_ms)
{
    int64_t end = now_ms() + deadline_ms;
    while (atomic_load(&s->n) < n && now_ms() < end)
        nap_ms(5);
    if (atomic_load(&s->n) < n)
        fail_msg("%d capture events after %d ms, want %d", atomic_load(&s->n), deadline_ms, n);
}

#endif
