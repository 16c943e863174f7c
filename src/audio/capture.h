/*
 * capture: one thread per device that reads its source, writes the audio ring and feeds
 * the meter. It never allocates, never touches the disk, never takes a contended lock
 * (the buffers are allocated by capture_start before the thread runs).
 *
 * Losses it sees (xruns of the source) are counted and kept in a small lock-free list
 * (position, frames, time) that any thread reads with capture_get_losses().
 *
 * Threads: capture_start/stop on a control thread; the getters from any thread.
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

struct capture_config {
    unsigned ring_seconds;       /* audio kept in RAM: covers pre-roll + disk stalls (default 20) */
    unsigned meter_rate;         /* meter snapshots per second (default 25) */
};

struct capture_loss {
    uint64_t at_frame;        /* absolute position of the gap */
    uint64_t frames;          /* frames lost (estimate for xruns) */
    int64_t  realtime_ns;     /* CLOCK_REALTIME when it was noticed */
};

struct capture;

int  capture_start(struct capture **out, struct audio_source *src, const struct capture_config *cfg);
/* Stops the thread, closes the ring (readers see the end) and frees all. */
void capture_stop(struct capture *c);

struct audio_ring *capture_ring(struct capture *c);
const struct audio_format *capture_format(const struct capture *c);
const char *capture_description(const struct capture *c);
void capture_meter(const struct capture *c, struct meter_snapshot *out);
enum capture_state capture_get_state(const struct capture *c);
int capture_error(const struct capture *c);   /* negative errno of a failure, or 0 */
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
