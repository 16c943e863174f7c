/*
 * format: PCM sample formats pirec captures, and the frame arithmetic around them.
 * Pure functions, any thread.
 */
#ifndef PIREC_AUDIO_FORMAT_H
#define PIREC_AUDIO_FORMAT_H

#include <stddef.h>
#include <stdint.h>

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

/* Reads sample i (0-based, interleaved index) of buf as a signed value right-aligned at
 * the container's bit width (S32_LE: full 32 bits, S24_*: 24 bits sign-extended). */
int32_t audio_sample_get(const void *buf, enum sample_format f, size_t i);
/* Converts n interleaved samples to right-aligned int32 at `bits` depth (16, 24 or 32);
 * for SF_S32_LE with bits < 32 the low (32 - bits) bits are shifted out. */
void audio_samples_to_int32(const void *src, enum sample_format f, size_t n,
                            unsigned bits, int32_t *dst);

#endif
