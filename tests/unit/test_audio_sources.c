/* tone and file sources: levels and channels of the tone, WAV/raw parsing, bad files,
 * fault hooks (unplug, stall). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "audio/source.h"
#include "audio/source_test.h"
#include "audio/source_util.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static char tmpdir[256];

static int setup(void **state)
{
    (void)state;
    const char *t = getenv("TEST_TMP");
    snprintf(tmpdir, sizeof tmpdir, "%s/srcXXXXXX", t && *t ? t : "/tmp");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

static void put16(uint8_t *p, unsigned v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static void put32(uint8_t *p, uint32_t v) { put16(p, v & 0xffff); put16(p + 2, v >> 16); }

/* Writes a WAV: tag 1/3/0xFFFE (ext_tag the sub-format), extra chunk before fmt. */
static void write_wav(const char *path, unsigned tag, unsigned ext_tag, unsigned ch,
                      unsigned rate, unsigned container, unsigned bits, const void *data,
                      size_t bytes, int list_chunk)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    uint8_t h[80];
    unsigned fmtlen = tag == 0xFFFE ? 40 : 16;
    fwrite("RIFF\0\0\0\0WAVE", 1, 12, f);
    if (list_chunk)   /* 3 bytes: odd length, padded */
        fwrite("LIST\3\0\0\0abc\0", 1, 12, f);
    memcpy(h, "fmt ", 4);
    put32(h + 4, fmtlen);
    put16(h + 8, tag);
    put16(h + 10, ch);
    put32(h + 12, rate);
    put32(h + 16, rate * ch * container);
    put16(h + 20, ch * container);
    put16(h + 22, container * 8);
    if (tag == 0xFFFE) {
        put16(h + 24, 22);
        put16(h + 26, bits);
        put32(h + 28, 3);
        static const uint8_t guid_tail[14] = {0, 0, 0, 0, 0x10, 0, 0x80, 0, 0, 0xaa, 0, 0x38, 0x9b, 0x71};
        put16(h + 32, ext_tag);
        memcpy(h + 34, guid_tail, 14);
    }
    fwrite(h, 1, 8 + fmtlen, f);
    memcpy(h, "data", 4);
    put32(h + 4, (uint32_t)bytes);
    fwrite(h, 1, 8, f);
    fwrite(data, 1, bytes, f);
    fclose(f);
}

static void *pattern(enum sample_format f, size_t samples)
{
    void *b = calloc(samples, sample_format_bytes(f));
    unsigned bits = sample_format_bits(f);
    for (size_t i = 0; i < samples; i++) {
        int32_t v = (int32_t)((i * 2654435761u) & ((1u << (bits - 1)) - 1));
        if (bits == 32)
            v = (int32_t)(i * 2654435761u);
        sample_put(b, f, i, (i & 1) ? -v : v);
    }
    return b;
}

static size_t read_all(struct audio_source *s, void *dst, size_t max)
{
    size_t fb = audio_frame_bytes(&s->format), got = 0;
    while (got < max) {
        ssize_t n = audio_source_read(s, (uint8_t *)dst + got * fb, max - got);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    return got;
}

static void test_wav_formats(void **state)
{
    (void)state;
    char path[300];
    const struct {
        unsigned tag, container, bits;
        enum sample_format want;
    } cases[] = {
        {1, 2, 16, SF_S16_LE},
        {1, 3, 24, SF_S24_3LE},
        {1, 4, 32, SF_S32_LE},
        {0xFFFE, 4, 24, SF_S32_LE},   /* 24 valid bits in 32-bit words */
        {0xFFFE, 3, 24, SF_S24_3LE},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        const size_t frames = 5000, ch = 2;
        void *data = pattern(cases[k].want, frames * ch);
        size_t bytes = frames * ch * cases[k].container;
        snprintf(path, sizeof path, "%s/t%zu.wav", tmpdir, k);
        write_wav(path, cases[k].tag, 1, ch, 44100, cases[k].container, cases[k].bits, data,
                  bytes, k == 1);
        struct audio_source *s;
        struct file_source_options o = {0};
        assert_int_equal(audio_source_open_file(&s, path, NULL, &o), 0);
        assert_int_equal(s->format.sample, cases[k].want);
        assert_int_equal(s->format.rate, 44100);
        assert_int_equal(s->format.channels, 2);
        assert_string_equal(s->ops->kind, "file");
        void *got = calloc(frames + 10, ch * cases[k].container);
        assert_int_equal(read_all(s, got, frames + 10), frames);
        assert_memory_equal(got, data, bytes);
        assert_int_equal(audio_source_read(s, got, 10), 0);   /* end */
        audio_source_close(s);

        /* loop: plays again from the start */
        o.loop = 1;
        assert_int_equal(audio_source_open_file(&s, path, NULL, &o), 0);
        void *two = calloc(2 * frames, ch * cases[k].container);
        assert_int_equal(read_all(s, two, 2 * frames), 2 * frames);
        assert_memory_equal((uint8_t *)two + bytes, data, bytes);
        audio_source_close(s);
        free(two);
        free(got);
        free(data);
    }
}

static void test_bad_files(void **state)
{
    (void)state;
    char path[300];
    struct audio_source *s = NULL;
    uint8_t data[64] = {0};
    snprintf(path, sizeof path, "%s/float.wav", tmpdir);
    write_wav(path, 3, 0, 2, 48000, 4, 32, data, sizeof data, 0);
    assert_int_equal(audio_source_open_file(&s, path, NULL, NULL), -ENOTSUP);
    write_wav(path, 0xFFFE, 3, 2, 48000, 4, 32, data, sizeof data, 0);
    assert_int_equal(audio_source_open_file(&s, path, NULL, NULL), -ENOTSUP);
    write_wav(path, 2, 0, 2, 48000, 2, 16, data, sizeof data, 0);   /* ADPCM */
    assert_int_equal(audio_source_open_file(&s, path, NULL, NULL), -ENOTSUP);
    write_wav(path, 1, 0, 2, 48000, 1, 8, data, sizeof data, 0);    /* 8-bit */
    assert_int_equal(audio_source_open_file(&s, path, NULL, NULL), -ENOTSUP);
    /* a header cut short */
    FILE *f = fopen(path, "wb");
    fwrite("RIFF\0\0\0\0WAVEfmt ", 1, 16, f);
    fclose(f);
    assert_int_equal(audio_source_open_file(&s, path, NULL, NULL), -EINVAL);
    /* not a WAV and no raw format */
    snprintf(path, sizeof path, "%s/noise.bin", tmpdir);
    f = fopen(path, "wb");
    fwrite(data, 1, sizeof data, f);
    fclose(f);
    assert_int_equal(audio_source_open_file(&s, path, NULL, NULL), -EINVAL);
    struct audio_format half = {SF_S16_LE, 0, 2};
    assert_int_equal(audio_source_open_file(&s, path, &half, NULL), -EINVAL);
    snprintf(path, sizeof path, "%s/missing.wav", tmpdir);
    assert_int_equal(audio_source_open_file(&s, path, NULL, NULL), -ENOENT);
    assert_int_equal(audio_source_open_file(&s, tmpdir, NULL, NULL), -EINVAL);
    assert_null(s);
}

static void test_raw_and_faults(void **state)
{
    (void)state;
    char path[300];
    snprintf(path, sizeof path, "%s/in.raw", tmpdir);
    const size_t frames = 20000;
    void *data = pattern(SF_S24_3LE, frames);
    FILE *f = fopen(path, "wb");
    fwrite(data, 3, frames, f);
    fwrite("\1\2", 1, 2, f);   /* a partial frame at the end is not audio */
    fclose(f);
    struct audio_format want = {SF_S24_3LE, 8000, 1};
    struct audio_source *s;
    struct file_source_options o = {.fail_at_frame = 12345};
    assert_int_equal(audio_source_open_file(&s, path, &want, &o), 0);
    uint8_t *got = calloc(frames, 3);
    /* unplug after exactly 12345 frames, whatever the read sizes */
    assert_int_equal(read_all(s, got, frames), 12345);
    assert_memory_equal(got, data, 12345 * 3);
    assert_int_equal(audio_source_read(s, got, 100), -ENODEV);
    assert_int_equal(audio_source_read(s, got, 100), -ENODEV);
    audio_source_close(s);

    /* stall in real time: the source skips what fell into the stall and reports it */
    o = (struct file_source_options){.realtime = 1, .stall_at_frame = 800, .stall_ms = 250};
    assert_int_equal(audio_source_open_file(&s, path, &want, &o), 0);
    assert_int_equal(s->period_frames, 80);
    size_t n = 0;
    ssize_t r;
    while ((r = audio_source_read(s, got + n * 3, 1000)) > 0)
        n += (size_t)r;
    assert_int_equal(r, -EPIPE);
    assert_int_equal(n, 800);
    assert_int_equal(s->last_xrun.at_frame, 800);
    assert_int_equal(s->last_xrun.frames, 2000);   /* 250 ms at 8 kHz */
    r = audio_source_read(s, got, 10);
    assert_true(r > 0);
    assert_memory_equal(got, (uint8_t *)data + (800 + 2000) * 3, (size_t)r * 3);
    audio_source_close(s);
    free(got);
    free(data);
}

static double block_rms(const int16_t *b, size_t frames, unsigned ch, unsigned c)
{
    double s = 0;
    for (size_t i = 0; i < frames; i++)
        s += (double)b[i * ch + c] * b[i * ch + c];
    return sqrt(s / frames) / 32768.0;
}

static void test_tone_levels_and_channels(void **state)
{
    (void)state;
    struct audio_format want = {SF_S16_LE, 8000, 2};
    struct audio_source *s;
    assert_int_equal(audio_source_open_tone(&s, &want), 0);
    assert_string_equal(s->ops->kind, "tone");
    audio_source_tone_unpaced(s);
    const size_t frames = 8000 * 13;
    int16_t *b = calloc(frames * 2, 2);
    assert_int_equal(read_all(s, b, frames), frames);
    double lo = 1, hi = 0, peak = 0;
    size_t differ = 0;
    for (size_t blk = 0; blk + 4000 <= frames; blk += 4000) {
        double l = block_rms(b + blk * 2, 4000, 2, 0);
        if (l < lo) lo = l;
        if (l > hi) hi = l;
    }
    for (size_t i = 0; i < frames; i++) {
        double a = fabs(b[2 * i] / 32768.0);
        if (a > peak) peak = a;
        if (b[2 * i] != b[2 * i + 1]) differ++;
    }
    /* the level moves by more than 20 dB and comes near full scale */
    assert_true(20 * log10(hi / lo) > 20.0);
    fprintf(stderr, "tone: peak %.3f, block RMS %.1f dB .. %.1f dB\n", peak, 20 * log10(lo), 20 * log10(hi));
    assert_true(peak > 0.8 && peak <= 1.0);
    /* left and right are different music, not one copied */
    assert_true(differ > frames * 9 / 10);
    audio_source_close(s);
    free(b);

    /* every format, more channels: channels all differ, S24_LE words sign-extended */
    const enum sample_format fs[] = {SF_S24_3LE, SF_S24_LE, SF_S32_LE};
    for (int k = 0; k < 3; k++) {
        struct audio_format w = {fs[k], 48000, 4};
        assert_int_equal(audio_source_open_tone(&s, &w), 0);
        audio_source_tone_unpaced(s);
        void *buf = calloc(48000 * 4, 4);
        assert_int_equal(read_all(s, buf, 48000), 48000);
        int64_t sum[4] = {0};
        for (size_t i = 0; i < 48000; i++)
            for (int c = 0; c < 4; c++) {
                int32_t v = audio_sample_get(buf, fs[k], i * 4 + c);
                sum[c] += v < 0 ? -(int64_t)v : v;
                if (fs[k] == SF_S24_LE) {
                    uint8_t top = ((uint8_t *)buf)[(i * 4 + c) * 4 + 3];
                    assert_true(top == 0 || top == 0xff);
                }
            }
        for (int c = 0; c < 4; c++) {
            assert_true(sum[c] > 0);
            for (int d = 0; d < c; d++)
                assert_true(sum[c] != sum[d]);
        }
        free(buf);
        audio_source_close(s);
    }
    struct audio_format bad = {SF_S16_LE, 48000, AUDIO_MAX_CHANNELS + 1};
    assert_int_equal(audio_source_open_tone(&s, &bad), -EINVAL);
}

static void test_tone_is_paced(void **state)
{
    (void)state;
    struct audio_source *s;
    assert_int_equal(audio_source_open_tone(&s, NULL), 0);
    assert_int_equal(s->format.sample, SF_S16_LE);
    assert_int_equal(s->format.rate, 48000);
    assert_int_equal(s->format.channels, 2);
    int16_t buf[4800 * 2];
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    size_t got = read_all(s, buf, 4800);   /* 100 ms of audio */
    clock_gettime(CLOCK_MONOTONIC, &b);
    assert_int_equal(got, 4800);
    double el = (b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) / 1e9;
    assert_true(el >= 0.095);   /* never faster than real time */
    audio_source_close(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_wav_formats),
        cmocka_unit_test(test_bad_files),
        cmocka_unit_test(test_raw_and_faults),
        cmocka_unit_test(test_tone_levels_and_channels),
        cmocka_unit_test(test_tone_is_paced),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
