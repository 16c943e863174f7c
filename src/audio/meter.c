/*
 * meter: per-channel peak / RMS / hold / clips over blocks of rate/updates frames.
 * The capture thread accumulates in private fields and publishes each finished block into
 * `snap` under a seqlock (odd sequence = being written); readers retry until they copied a
 * stable snapshot, so the writer never waits.
 */
#include "audio/meter.h"

#include <errno.h>
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define METER_HOLD_MS 2000

struct meter {
    struct audio_format fmt;
    unsigned block;           /* frames per snapshot */
    double full;              /* 2^(bits-1): 0 dBFS */
    int32_t clip_hi, clip_lo; /* a sample at or beyond these is a clip */
    uint64_t hold_frames;
    /* capture-thread state */
    unsigned in_block;
    uint64_t blocks;
    int64_t peak[AUDIO_MAX_CHANNELS];
    double sumsq[AUDIO_MAX_CHANNELS];
    float hold[AUDIO_MAX_CHANNELS];
    uint64_t hold_age[AUDIO_MAX_CHANNELS];
    uint32_t clips[AUDIO_MAX_CHANNELS];
    /* published */
    _Atomic uint32_t seq;
    struct meter_snapshot snap;
};

int meter_create(struct meter **out, const struct audio_format *fmt, unsigned updates_per_second)
{
    if (!out || !fmt || sample_format_bytes(fmt->sample) == 0 || fmt->rate == 0 ||
        fmt->channels < 1 || fmt->channels > AUDIO_MAX_CHANNELS)
        return -EINVAL;
    if (updates_per_second == 0)
        updates_per_second = 25;
    struct meter *m = calloc(1, sizeof *m);
    if (!m)
        return -ENOMEM;
    m->fmt = *fmt;
    m->block = fmt->rate / updates_per_second ? fmt->rate / updates_per_second : 1;
    unsigned bits = sample_format_bits(fmt->sample);
    m->full = ldexp(1.0, (int)bits - 1);
    /* symmetric, so that a full-scale sine clips on both half waves */
    m->clip_hi = (int32_t)(m->full - 1.0);
    if (fmt->sample == SF_S32_LE)
        m->clip_hi = 0x7fffff00;   /* a 24-bit interface's full scale in a 32-bit word */
    m->clip_lo = -m->clip_hi;
    m->hold_frames = (uint64_t)fmt->rate * METER_HOLD_MS / 1000;
    for (unsigned c = 0; c < AUDIO_MAX_CHANNELS; c++)
        m->hold[c] = METER_FLOOR_DB;
    m->snap.channels = fmt->channels;
    *out = m;
    return 0;
}

void meter_destroy(struct meter *m)
{
    free(m);
}

static float to_db(double ratio_pow, int is_power)
{
    if (ratio_pow <= 0.0)
        return METER_FLOOR_DB;
    double db = is_power ? 10.0 * log10(ratio_pow) : 20.0 * log10(ratio_pow);
    return db < METER_FLOOR_DB ? METER_FLOOR_DB : (float)db;
}

static void publish(struct meter *m, uint64_t frame_pos, int64_t capture_ns)
{
    const unsigned nch = m->fmt.channels;
    struct meter_channel ch[AUDIO_MAX_CHANNELS];
    for (unsigned c = 0; c < nch; c++) {
        ch[c].peak_db = to_db((double)m->peak[c] / m->full, 0);
        ch[c].rms_db = to_db(m->sumsq[c] / ((double)m->in_block * m->full * m->full), 1);
        /* hold: the highest peak, kept for the hold time, then it falls to the current */
        m->hold_age[c] += m->in_block;
        if (ch[c].peak_db >= m->hold[c] || m->hold_age[c] > m->hold_frames) {
            m->hold[c] = ch[c].peak_db;
            m->hold_age[c] = 0;
        }
        ch[c].hold_db = m->hold[c];
        ch[c].clips = m->clips[c];
        m->peak[c] = 0;
        m->sumsq[c] = 0.0;
    }
    m->blocks++;
    uint32_t s = atomic_load_explicit(&m->seq, memory_order_relaxed);
    atomic_store_explicit(&m->seq, s + 1, memory_order_relaxed);
    atomic_thread_fence(memory_order_release);
    m->snap.seq = m->blocks;
    m->snap.frame_pos = frame_pos;
    m->snap.capture_ns = capture_ns;
    m->snap.channels = nch;
    memcpy(m->snap.ch, ch, nch * sizeof ch[0]);
    atomic_store_explicit(&m->seq, s + 2, memory_order_release);
    m->in_block = 0;
}

void meter_process(struct meter *m, const void *frames, size_t n, uint64_t end_pos,
                   int64_t capture_ns)
{
    const unsigned nch = m->fmt.channels;
    const enum sample_format sf = m->fmt.sample;
    for (size_t i = 0; i < n; i++) {
        for (unsigned c = 0; c < nch; c++) {
            int64_t v = audio_sample_get(frames, sf, i * nch + c);
            if (v >= m->clip_hi || v <= m->clip_lo)
                m->clips[c]++;
            int64_t a = v < 0 ? -v : v;
            if (a > m->peak[c])
                m->peak[c] = a;
            m->sumsq[c] += (double)v * (double)v;
        }
        if (++m->in_block == m->block) {
            uint64_t left = n - 1 - i;   /* frames of this call after the block's end */
            publish(m, end_pos - left,
                    capture_ns - (int64_t)(left * 1000000000ull / m->fmt.rate));
        }
    }
}

void meter_read(const struct meter *m, struct meter_snapshot *out)
{
    struct meter *mm = (struct meter *)m;   /* the seqlock counter is read-only here */
    for (;;) {
        uint32_t s1 = atomic_load_explicit(&mm->seq, memory_order_acquire);
        if (s1 & 1)
            continue;
        memcpy(out, &mm->snap, sizeof *out);
        atomic_thread_fence(memory_order_acquire);
        uint32_t s2 = atomic_load_explicit(&mm->seq, memory_order_relaxed);
        if (s1 == s2)
            return;
    }
}
