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
    const uint8_t *p = buf;
    uint32_t u;
    switch (f) {
    case SF_S16_LE:
        p += i * 2;
        return (int16_t)(uint16_t)(p[0] | (p[1] << 8));
    case SF_S24_3LE:
        p += i * 3;
        u = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16;
        /* sign-extend from bit 23 without shifting a negative value */
        return (int32_t)((u ^ 0x800000u) - 0x800000u);
    case SF_S24_LE:
        p += i * 4;
        u = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16;
        return (int32_t)((u ^ 0x800000u) - 0x800000u);
    case SF_S32_LE:
        p += i * 4;
        u = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
        return (int32_t)u;
    default:
        return 0;
    }
}

void audio_samples_to_int32(const void *src, enum sample_format f, size_t n, unsigned bits,
                            int32_t *dst)
{
    unsigned have = sample_format_bits(f);
    for (size_t i = 0; i < n; i++) {
        int32_t v = audio_sample_get(src, f, i);
        if (bits < have)
            v >>= (have - bits);   /* arithmetic shift: the data sits in the top bits */
        else if (bits > have)
            v = (int32_t)((uint32_t)v << (bits - have));
        dst[i] = v;
    }
}
