/*
 * capture_watch: what a capture thread knows about time against frames, as plain
 * arithmetic (no clock read here, no thread): the watchdog's "nothing for longer than the
 * bound" and the timing check's "clearly fewer frames than the wall clock allows over a
 * window". Private to src/audio; one per capture, used by its thread only.
 */
#ifndef PIREC_AUDIO_CAPTURE_WATCH_H
#define PIREC_AUDIO_CAPTURE_WATCH_H

#include <stdint.h>

struct capture_watch {
    unsigned rate;
    int64_t bound_ns;          /* stall bound; 0 = no watchdog */
    int64_t window_ns;         /* timing window; 0 = no timing check */
    uint64_t slack_frames;     /* shortfalls up to this are read jitter, not a loss */
    int64_t last_frame_ns;     /* when frames last arrived (or the start) */
    int64_t win_start_ns;      /* 0: the window opens at the next frames */
    uint64_t win_frames;       /* frames (and estimated xrun losses) in the window */
    uint64_t last_rate_mhz;    /* frames per second x 1000 over the last whole window */
};

/* stall_ms: 0 = three buffer lengths, at least 2 s; < 0 = off. window_ms: 0 = 10 s;
 * < 0 = off. read_frames: the most one read delivers (it sets the jitter allowed). */
void watch_init(struct capture_watch *w, unsigned rate, unsigned buffer_frames,
                unsigned read_frames, int stall_ms, int window_ms, int64_t now_ns);

/* n frames arrived at now_ns; more_waiting when the read was full (the reader is behind,
 * the device holds more): a window never closes then, so a late reader is not taken for
 * a slow clock. Returns the shortfall of the window that closed with them (frames the
 * wall clock says are missing, beyond the jitter allowed), or 0. */
uint64_t watch_frames(struct capture_watch *w, uint64_t n, int more_waiting, int64_t now_ns);

/* Frames an overrun threw away (they were delivered by the device, then lost). */
void watch_lost(struct capture_watch *w, uint64_t n);

/* 1 when nothing arrived for longer than the bound. */
int watch_stalled(const struct capture_watch *w, int64_t now_ns);

/* Frames that the wall clock says the device should have delivered in ns. */
uint64_t watch_ns_to_frames(const struct capture_watch *w, int64_t ns);

/* Forgets the current window (after a stall the gap is reported as such). */
void watch_restart_window(struct capture_watch *w);

#endif
