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

/* The sums of one run of frames, gathered per lane (see accumulate). */
struct meter_sums {
    uint32_t peak[AUDIO_MAX_CHANNELS];
    uint64_t sq[AUDIO_MAX_CHANNELS];    /* sum of squares of the magnitudes' top 24 bits */
    uint32_t clips[AUDIO_MAX_CHANNELS];
};

#define METER_LANES 8
/* a run is at most this many samples: 8192 * (2^23)^2 < 2^63, the bound of sq */
#define METER_RUN_SAMPLES 8192

/* Peak, sum of squares and clips of ns interleaved samples (ns a multiple of nch). With
 * nch dividing METER_LANES, groups of METER_LANES samples go into as many independent
 * lanes (lane j is channel j % nch), a fixed-length inner loop the compiler vectorises;
 * squares of the magnitudes' top 24 bits are summed as integers (an unsigned 32x32->64
 * multiply, which every SIMD set has; exact for 16/24-bit content, off by less than 1 LSB
 * of 24 bits for 32-bit content, far under what a meter shows). This loop sees every
 * captured sample, so it has to be cheap. */
#define DEFINE_ACCUMULATE(name, get, shift)                                                 \
    static void name(const uint8_t *p, size_t ns, unsigned nch, int32_t hi, int32_t lo,     \
                     struct meter_sums *out)                                                \
    {                                                                                       \
        size_t i = 0;                                                                       \
        if (METER_LANES % nch == 0) {                                                       \
            uint32_t pk[METER_LANES] = {0}, cl[METER_LANES] = {0};                          \
            uint64_t sq[METER_LANES] = {0};                                                 \
            for (; i + METER_LANES <= ns; i += METER_LANES) {                               \
                for (unsigned j = 0; j < METER_LANES; j++) {                                \
                    int32_t v = get(p, i + j);                                              \
                    uint32_t a = v < 0 ? 0u - (uint32_t)v : (uint32_t)v;                    \
                    pk[j] = a > pk[j] ? a : pk[j];                                          \
                    cl[j] += (uint32_t)(v >= hi) | (uint32_t)(v <= lo);                     \
                    uint32_t t = a >> (shift);                                              \
                    sq[j] += (uint64_t)t * t;                                               \
                }                                                                           \
            }                                                                               \
            for (unsigned j = 0; j < METER_LANES; j++) {                                    \
                unsigned c = j % nch;                                                       \
                out->peak[c] = pk[j] > out->peak[c] ? pk[j] : out->peak[c];                 \
                out->clips[c] += cl[j];                                                     \
                out->sq[c] += sq[j];                                                        \
            }                                                                               \
        }                                                                                   \
        for (unsigned c = 0; i < ns; i++) {                                                 \
            int32_t v = get(p, i);                                                          \
            uint32_t a = v < 0 ? 0u - (uint32_t)v : (uint32_t)v;                            \
            out->peak[c] = a > out->peak[c] ? a : out->peak[c];                             \
            out->clips[c] += (uint32_t)(v >= hi) | (uint32_t)(v <= lo);                     \
            uint32_t t = a >> (shift);                                                      \
            out->sq[c] += (uint64_t)t * t;                                                  \
            if (++c == nch)                                                                 \
                c = 0;                                                                      \
        }                                                                                   \
    }

DEFINE_ACCUMULATE(accumulate_s16, audio_get_s16, 0)
DEFINE_ACCUMULATE(accumulate_s24_3, audio_get_s24_3, 0)
DEFINE_ACCUMULATE(accumulate_s24, audio_get_s24, 0)
DEFINE_ACCUMULATE(accumulate_s32, audio_get_s32, 8)

static void accumulate(const struct meter *m, const uint8_t *p, size_t ns, struct meter_sums *s)
{
    const unsigned nch = m->fmt.channels;
    switch (m->fmt.sample) {
    case SF_S16_LE: accumulate_s16(p, ns, nch, m->clip_hi, m->clip_lo, s); break;
    case SF_S24_3LE: accumulate_s24_3(p, ns, nch, m->clip_hi, m->clip_lo, s); break;
    case SF_S24_LE: accumulate_s24(p, ns, nch, m->clip_hi, m->clip_lo, s); break;
    case SF_S32_LE: accumulate_s32(p, ns, nch, m->clip_hi, m->clip_lo, s); break;
    default: break;
    }
}

void meter_process(struct meter *m, const void *frames, size_t n, uint64_t end_pos,
                   int64_t capture_ns)
{
    const unsigned nch = m->fmt.channels;
    const size_t fbytes = audio_frame_bytes(&m->fmt);
    const double sq_scale = m->fmt.sample == SF_S32_LE ? 65536.0 : 1.0;
    const uint8_t *p = frames;
    size_t i = 0;
    while (i < n) {
        /* up to the end of the block, and short enough for the integer sums */
        size_t run = n - i;
        if (run > m->block - m->in_block)
            run = m->block - m->in_block;
        if (run > METER_RUN_SAMPLES / nch)
            run = METER_RUN_SAMPLES / nch;
        struct meter_sums s;
        memset(&s, 0, sizeof s);
        accumulate(m, p + i * fbytes, run * nch, &s);
        for (unsigned c = 0; c < nch; c++) {
            if ((int64_t)s.peak[c] > m->peak[c])
                m->peak[c] = s.peak[c];
            m->sumsq[c] += (double)s.sq[c] * sq_scale;
            m->clips[c] += s.clips[c];
        }
        i += run;
        m->in_block += (unsigned)run;
        if (m->in_block == m->block) {
            uint64_t left = n - i;   /* frames of this call after the block's end */
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
