/*
 * capture: one thread per device that reads its source, writes the audio ring and feeds
 * the meter. It never allocates, never touches the disk, never takes a contended lock
 * (the buffers are allocated by capture_start before the thread runs).
 *
 * Losses it sees (xruns of the source, stalls, loss of timing) are counted and kept in a
 * small lock-free list (kind, position, frames, time) that any thread reads with
 * capture_get_losses(); a take files them in its comments.
 *
 * Watchdog: a device that delivers no frame for longer than a bound (three buffer
 * lengths, at least 2 s, or capture_config.stall_ms) is *stalled*: the thread files a
 * CAPTURE_LOSS_STALL, raises CAPTURE_EV_STALLED and reopens the source (when it can) with
 * a growing backoff until frames flow again; then it files the rest of the gap and raises
 * CAPTURE_EV_BACK. A stall is not an end: capture_get_state() stays CAPTURE_RUNNING, the
 * ring stays open and positions go on after the gap. While stalled (and only then) the
 * thread may allocate, log and open files: reopening a device does. Sources must return
 * from read() about every half second when nothing comes (source.h), or the watchdog
 * only sees the stall when read() returns.
 *
 * Timing: over each window (10 s, capture_config.timing_window_ms) the frames delivered
 * (plus the estimated losses of xruns) are compared with the wall clock; a clear
 * shortfall (more than 5% and more than a few reads) is a loss of timing: filed as a
 * CAPTURE_LOSS_TIMING of the missing frames and raised as CAPTURE_EV_TIMING.
 *
 * Memory: the ring is prefaulted and locked in RAM (mlock) by capture_start; where the
 * limit (RLIMIT_MEMLOCK) does not allow it a warning says so and capture goes on.
 *
 * Threads: capture_start/stop on a control thread; the getters from any thread;
 * on_event on the capture thread (see struct capture_config).
 * Ownership: capture_start takes the source (closed by capture_stop) and owns ring and
 * meter; capture_stop frees everything, so readers must be done with the ring first.
 */
#ifndef PIREC_AUDIO_CAPTURE_H
#define PIREC_AUDIO_CAPTURE_H

#include "audio/audio_ring.h"
#include "audio/meter.h"
#include "audio/source.h"

#include <stdint.h>

enum capture_state {
    CAPTURE_RUNNING = 0,
    CAPTURE_ENDED,      /* finite source reached its end */
    CAPTURE_GONE,       /* device vanished (-ENODEV) */
    CAPTURE_FAILED,     /* another hard error; see capture_error() */
    CAPTURE_STOPPED,    /* capture_stop was called */
};

enum capture_event_kind {
    CAPTURE_EV_STALLED = 1,   /* nothing arrived for longer than the bound */
    CAPTURE_EV_BACK,          /* frames flow again after a stall */
    CAPTURE_EV_TIMING,        /* a window delivered clearly fewer frames than wall time */
};

struct capture_event {
    enum capture_event_kind kind;
    uint64_t at_frame;        /* ring position: STALLED/TIMING the end of what arrived,
                                 BACK where the new frames start */
    uint64_t frames;          /* STALLED: frames missing so far; BACK: the whole gap;
                                 TIMING: the shortfall of the window */
    int64_t  duration_ns;     /* STALLED: since the last frame (the detection time);
                                 BACK: the whole silence; TIMING: the window */
    int64_t  realtime_ns;     /* CLOCK_REALTIME when it happened */
};

struct capture_config {
    unsigned ring_seconds;       /* audio kept in RAM: covers pre-roll + disk stalls (default 20) */
    unsigned meter_rate;         /* meter snapshots per second (default 25) */
    int stall_ms;                /* watchdog bound: 0 = three buffer lengths, at least 2000;
                                    < 0 = no watchdog (a source not paced by a clock) */
    int timing_window_ms;        /* timing check window: 0 = 10000; < 0 = no check */
    /* Called on the capture thread for each event (may be NULL). It must return at once:
     * no lock a control thread may hold, no I/O, no allocation (set a flag, write an
     * eventfd, wake a futex); capture_* getters may be called from it. */
    void (*on_event)(const struct capture_event *ev, void *arg);
    void *on_event_arg;
};

enum capture_loss_kind {
    CAPTURE_LOSS_XRUN = 0,    /* the source overran: at_frame is where the gap sits */
    CAPTURE_LOSS_STALL,       /* the device went silent; at_frame is the last frame
                                 before the gap (so a take that ends there still files
                                 it), or where the frames start again for the rest of
                                 the gap when it comes back */
    CAPTURE_LOSS_TIMING,      /* a window's shortfall; at_frame is the window's last frame */
};

struct capture_loss {
    uint64_t at_frame;        /* absolute position of the gap */
    uint64_t frames;          /* frames lost (estimate for xruns, stalls, timing) */
    int64_t  realtime_ns;     /* CLOCK_REALTIME when it was noticed */
    enum capture_loss_kind kind;
};

struct capture_stats {
    uint64_t frames;             /* delivered since the start */
    int      stalled;            /* 1 while the watchdog says the device is silent */
    uint32_t stalls;             /* stalls so far */
    int64_t  stall_bound_ns;     /* the watchdog's bound (0: off) */
    int64_t  last_detect_ns;     /* last stall: from its last frame to its detection */
    int64_t  last_stall_ns;      /* last stall that ended: how long the silence lasted */
    uint32_t reopens;            /* reopen attempts */
    int      reopen_error;       /* the last failed attempt's negative errno, 0 after success */
    uint32_t timing_losses;      /* windows with a clear shortfall */
    uint64_t timing_lost_frames; /* their shortfalls together */
    double   measured_rate;      /* frames/s over the last whole window (0 before one) */
};

struct capture;

int  capture_start(struct capture **out, struct audio_source *src, const struct capture_config *cfg);
/* Stops the thread, closes the ring (readers see the end) and frees all. A thread stuck
 * in the driver for 3 s (a hung device or sound server blocking a read, a close or an
 * open) is abandoned with an error in the log: the ring is closed, the capture and its
 * source are left to that thread (never freed), and capture_stop returns. */
void capture_stop(struct capture *c);

struct audio_ring *capture_ring(struct capture *c);
const struct audio_format *capture_format(const struct capture *c);
const char *capture_description(const struct capture *c);
void capture_meter(const struct capture *c, struct meter_snapshot *out);
enum capture_state capture_get_state(const struct capture *c);
int capture_error(const struct capture *c);   /* negative errno of a failure, or 0 */
/* 1 while stalled (any thread, lock-free). */
int capture_is_stalled(const struct capture *c);
/* A snapshot of the counters (any thread; each field is read atomically). */
void capture_get_stats(const struct capture *c, struct capture_stats *out);
/* Copies up to max losses that happened at or after absolute frame `since` (any thread).
 * Returns the number copied; *total gets the count of all losses since the start. */
size_t capture_get_losses(const struct capture *c, uint64_t since, struct capture_loss *out,
                          size_t max, uint64_t *total);
/* CLOCK_REALTIME of the capture of absolute frame `pos` (also a future one), from the
 * capture thread's own timestamp of its latest read, the losses in between counted as the
 * time they took (any thread, lock-free). -EAGAIN before the first read. */
int capture_frame_time(const struct capture *c, uint64_t pos, int64_t *realtime_ns);
/* Waits until the state is no longer CAPTURE_RUNNING or timeout_ms passed. */
int capture_wait_end(struct capture *c, int timeout_ms);

#endif
