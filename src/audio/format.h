/*
 * format: PCM sample formats pirec captures, and the frame arithmetic around them.
 * Pure functions, any thread.
 */
#ifndef PIREC_AUDIO_FORMAT_H
#define PIREC_AUDIO_FORMAT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

enum sample_format {
    SF_UNKNOWN = 0,
    SF_S16_LE,    /* 16 bits in 2 bytes */
    SF_S24_3LE,   /* 24 bits in 3 bytes */
    SF_S24_LE,    /* 24 bits in the LOW 3 bytes of a 4-byte word (ALSA's S24_LE) */
    SF_S32_LE,    /* 32-bit word; a 24-bit interface puts its data in the top 24 bits */
};

#define AUDIO_MAX_CHANNELS 32

struct audio_format {
    enum sample_format sample;
    unsigned rate;        /* frames per second */
    unsigned channels;    /* 1 .. AUDIO_MAX_CHANNELS */
};

/* Bytes of one sample in memory (2, 3, 4, 4), 0 for SF_UNKNOWN. */
unsigned sample_format_bytes(enum sample_format f);
/* Bits the container can hold (16, 24, 24, 32). */
unsigned sample_format_bits(enum sample_format f);
/* "S16_LE", "S24_3LE", "S24_LE", "S32_LE". */
const char *sample_format_name(enum sample_format f);
/* Parses the names above (case-insensitive); 0 or -EINVAL. */
int sample_format_parse(const char *name, enum sample_format *out);

static inline size_t audio_frame_bytes(const struct audio_format *f)
{
    return (size_t)sample_format_bytes(f->sample) * f->channels;
}

/* Sample i of each format, right-aligned at the container's width, for loops that know
 * their format (the compiler makes plain, often vector, loads of them). memcpy: sample
 * buffers have no alignment promise. */
static inline int32_t audio_get_s16(const uint8_t *p, size_t i)
{
    uint16_t u;
    memcpy(&u, p + 2 * i, 2);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    u = __builtin_bswap16(u);
#endif
    return (int16_t)u;
}

static inline int32_t audio_get_s24_3(const uint8_t *p, size_t i)
{
    p += 3 * i;
    uint32_t u = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16;
    return (int32_t)((u ^ 0x800000u) - 0x800000u);
}

static inline uint32_t audio_get_u32(const uint8_t *p, size_t i)
{
    uint32_t u;
    memcpy(&u, p + 4 * i, 4);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    u = __builtin_bswap32(u);
#endif
    return u;
}

static inline int32_t audio_get_s24(const uint8_t *p, size_t i)
{
    uint32_t u = audio_get_u32(p, i) & 0xffffffu;
    return (int32_t)((u ^ 0x800000u) - 0x800000u);
}

static inline int32_t audio_get_s32(const uint8_t *p, size_t i)
{
    return (int32_t)audio_get_u32(p, i);
}

/* Reads sample i (0-based, interleaved index) of buf as a signed value right-aligned at
 * the container's bit width (S32_LE: full 32 bits, S24_*: 24 bits sign-extended). */
int32_t audio_sample_get(const void *buf, enum sample_format f, size_t i);
/* Converts n interleaved samples to right-aligned int32 at `bits` depth (16, 24 or 32);
 * for SF_S32_LE with bits < 32 the low (32 - bits) bits are shifted out. */
void audio_samples_to_int32(const void *src, enum sample_format f, size_t n,
                            unsigned bits, int32_t *dst);
/* The same for SF_S32_LE at 32 - shift bits, and returns the OR of all the words, so the
 * caller sees whether any of the bits shifted out was set (in one pass over the data). */
uint32_t audio_s32_to_int32_check(const void *src, size_t n, unsigned shift, int32_t *dst);

#endif
