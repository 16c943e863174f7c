/* format: sample format names and conversions. Pure functions, any thread. */
#include "audio/format.h"

#include <errno.h>
#include <string.h>
#include <strings.h>

static const struct {
    enum sample_format f;
    const char *name;
    unsigned bytes, bits;
} formats[] = {
    {SF_S16_LE, "S16_LE", 2, 16},
    {SF_S24_3LE, "S24_3LE", 3, 24},
    {SF_S24_LE, "S24_LE", 4, 24},
    {SF_S32_LE, "S32_LE", 4, 32},
};

unsigned sample_format_bytes(enum sample_format f)
{
    for (size_t i = 0; i < sizeof formats / sizeof formats[0]; i++)
        if (formats[i].f == f)
            return formats[i].bytes;
    return 0;
}

unsigned sample_format_bits(enum sample_format f)
{
    for (size_t i = 0; i < sizeof formats / sizeof formats[0]; i++)
        if (formats[i].f == f)
            return formats[i].bits;
    return 0;
}

const char *sample_format_name(enum sample_format f)
{
    for (size_t i = 0; i < sizeof formats / sizeof formats[0]; i++)
        if (formats[i].f == f)
            return formats[i].name;
    return "unknown";
}

int sample_format_parse(const char *name, enum sample_format *out)
{
    if (!name)
        return -EINVAL;
    for (size_t i = 0; i < sizeof formats / sizeof formats[0]; i++) {
        if (strcasecmp(name, formats[i].name) == 0) {
            *out = formats[i].f;
            return 0;
        }
    }
    return -EINVAL;
}

int32_t audio_sample_get(const void *buf, enum sample_format f, size_t i)
{
    switch (f) {
    case SF_S16_LE: return audio_get_s16(buf, i);
    case SF_S24_3LE: return audio_get_s24_3(buf, i);
    case SF_S24_LE: return audio_get_s24(buf, i);
    case SF_S32_LE: return audio_get_s32(buf, i);
    default: return 0;
    }
}

/* The conversions run on every recorded sample: each format and common shift gets its own
 * loop over groups of LANES samples with a fixed-length inner loop, which the compiler
 * vectorises (SSE2, NEON) where a per-sample switch or a shift by a variable would not. */
#define LANES 8

#define DEFINE_TO_INT32(name, get)                                                          \
    static void name(const uint8_t *p, size_t n, int32_t *restrict dst)                     \
    {                                                                                       \
        size_t i = 0;                                                                       \
        for (; i + LANES <= n; i += LANES)                                                  \
            for (unsigned j = 0; j < LANES; j++)                                            \
                dst[i + j] = get(p, i + j);                                                 \
        for (; i < n; i++)                                                                  \
            dst[i] = get(p, i);                                                             \
    }

DEFINE_TO_INT32(s16_to_int32, audio_get_s16)
DEFINE_TO_INT32(s24_3_to_int32, audio_get_s24_3)
DEFINE_TO_INT32(s24_to_int32, audio_get_s24)
DEFINE_TO_INT32(s32_to_int32, audio_get_s32)

void audio_samples_to_int32(const void *src, enum sample_format f, size_t n, unsigned bits,
                            int32_t *dst)
{
    unsigned have = sample_format_bits(f);
    if (bits == have) {
        switch (f) {
        case SF_S16_LE: s16_to_int32(src, n, dst); return;
        case SF_S24_3LE: s24_3_to_int32(src, n, dst); return;
        case SF_S24_LE: s24_to_int32(src, n, dst); return;
        case SF_S32_LE: s32_to_int32(src, n, dst); return;
        default: break;
        }
    }
    if (f == SF_S32_LE && bits < 32) {
        audio_s32_to_int32_check(src, n, 32 - bits, dst);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        int32_t v = audio_sample_get(src, f, i);
        if (bits < have)
            v >>= (have - bits);   /* arithmetic shift: the data sits in the top bits */
        else if (bits > have)
            v = (int32_t)((uint32_t)v << (bits - have));
        dst[i] = v;
    }
}

/* shift is a constant in each call below, so the compiler can vectorise the shift */
static inline uint32_t
s32_shift_check(const uint8_t *p, size_t n, const unsigned shift, int32_t *restrict dst)
{
    uint32_t any[LANES] = {0}, all = 0;
    size_t i = 0;
    for (; i + LANES <= n; i += LANES)
        for (unsigned j = 0; j < LANES; j++) {
            uint32_t u = audio_get_u32(p, i + j);
            any[j] |= u;
            dst[i + j] = (int32_t)u >> shift;   /* arithmetic: the data sits in the top bits */
        }
    for (; i < n; i++) {
        uint32_t u = audio_get_u32(p, i);
        all |= u;
        dst[i] = (int32_t)u >> shift;
    }
    for (unsigned j = 0; j < LANES; j++)
        all |= any[j];
    return all;
}

uint32_t audio_s32_to_int32_check(const void *src, size_t n, unsigned shift, int32_t *dst)
{
    switch (shift) {
    case 8: return s32_shift_check(src, n, 8, dst);
    case 16: return s32_shift_check(src, n, 16, dst);
    default: return s32_shift_check(src, n, shift & 31, dst);
    }
}
