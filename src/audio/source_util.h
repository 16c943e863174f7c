/*
 * source_util: helpers shared by the source backends (private to src/audio).
 * A pacer belongs to one source and is used by its capture thread only.
 */
#ifndef PIREC_AUDIO_SOURCE_UTIL_H
#define PIREC_AUDIO_SOURCE_UTIL_H

#include "audio/format.h"

#include <errno.h>
#include <stdint.h>
#include <time.h>

/* Real-time pacing on CLOCK_MONOTONIC with absolute deadlines, so the error of one sleep
 * never accumulates. */
struct pacer {
    struct timespec start;
    unsigned rate;
    int started;
};

static inline void pacer_wait_until(struct pacer *p, uint64_t frames)
{
    if (!p->started) {
        clock_gettime(CLOCK_MONOTONIC, &p->start);
        p->started = 1;
    }
    uint64_t ns = frames / p->rate * 1000000000ull + (frames % p->rate) * 1000000000ull / p->rate;
    struct timespec t = p->start;
    t.tv_sec += (time_t)(ns / 1000000000ull);
    t.tv_nsec += (long)(ns % 1000000000ull);
    if (t.tv_nsec >= 1000000000L) {
        t.tv_sec++;
        t.tv_nsec -= 1000000000L;
    }
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &t, NULL) == EINTR)
        ;
}

/* Stores sample i of buf: v is right-aligned at the container's bit width. */
static inline void sample_put(void *buf, enum sample_format f, size_t i, int32_t v)
{
    uint8_t *p = buf;
    uint32_t u = (uint32_t)v;
    switch (f) {
    case SF_S16_LE:
        p += i * 2;
        p[0] = (uint8_t)u;
        p[1] = (uint8_t)(u >> 8);
        break;
    case SF_S24_3LE:
        p += i * 3;
        p[0] = (uint8_t)u;
        p[1] = (uint8_t)(u >> 8);
        p[2] = (uint8_t)(u >> 16);
        break;
    case SF_S24_LE:
        p += i * 4;
        p[0] = (uint8_t)u;
        p[1] = (uint8_t)(u >> 8);
        p[2] = (uint8_t)(u >> 16);
        p[3] = (u & 0x800000u) ? 0xff : 0;
        break;
    case SF_S32_LE:
        p += i * 4;
        p[0] = (uint8_t)u;
        p[1] = (uint8_t)(u >> 8);
        p[2] = (uint8_t)(u >> 16);
        p[3] = (uint8_t)(u >> 24);
        break;
    default:
        break;
    }
}

/* Fills the fields of `want` left 0 with defaults; -EINVAL for an impossible format. */
static inline int format_complete(struct audio_format *f, const struct audio_format *want,
                                  enum sample_format def_sample, unsigned def_rate,
                                  unsigned def_channels)
{
    *f = want ? *want : (struct audio_format){0};
    if (f->sample == SF_UNKNOWN)
        f->sample = def_sample;
    if (f->rate == 0)
        f->rate = def_rate;
    if (f->channels == 0)
        f->channels = def_channels;
    if (sample_format_bytes(f->sample) == 0 || f->rate < 1000 || f->rate > 768000 ||
        f->channels < 1 || f->channels > AUDIO_MAX_CHANNELS)
        return -EINVAL;
    return 0;
}

#endif
