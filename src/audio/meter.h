/*
 * meter: peak, RMS, peak hold and clip count per channel in dBFS, computed on the capture
 * side, about 25 snapshots a second.
 *
 * Threads: meter_process() only on the capture thread (no allocation, no lock); any thread
 * reads the latest snapshot with meter_read() (seqlock: never blocks the writer).
 */
#ifndef PIREC_AUDIO_METER_H
#define PIREC_AUDIO_METER_H

#include "audio/format.h"

#include <stdint.h>

#define METER_FLOOR_DB (-120.0f)   /* digital silence */

struct meter_channel {
    float peak_db;    /* highest |sample| in the last block, dBFS */
    float rms_db;     /* RMS of the last block, dBFS */
    float hold_db;    /* highest peak in the last hold time (default 2 s) */
    uint32_t clips;   /* samples at full scale since the capture started */
};

struct meter_snapshot {
    uint64_t seq;            /* increases with every block; 0 = nothing measured yet */
    uint64_t frame_pos;      /* absolute ring position of the block's last frame + 1 */
    int64_t  capture_ns;     /* CLOCK_MONOTONIC when the block's last frame was captured */
    unsigned channels;
    struct meter_channel ch[AUDIO_MAX_CHANNELS];
};

struct meter;

/* Allocates; on the control thread, before capture starts. 0 or -ENOMEM/-EINVAL.
 * updates_per_second 0 = 25. */
int  meter_create(struct meter **out, const struct audio_format *fmt, unsigned updates_per_second);
void meter_destroy(struct meter *m);
/* Capture thread: feed n frames that end at absolute position end_pos, captured at
 * capture_ns (CLOCK_MONOTONIC). */
void meter_process(struct meter *m, const void *frames, size_t n, uint64_t end_pos,
                   int64_t capture_ns);
/* Any thread: the latest snapshot. */
void meter_read(const struct meter *m, struct meter_snapshot *out);

#endif
