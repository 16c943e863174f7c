/* meter: dBFS values on known signals, clip counting, hold, block timing, all formats. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "audio/meter.h"
#include "audio/source_util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static void *sine(enum sample_format f, unsigned rate, unsigned ch, size_t frames, double freq,
                  double amp)
{
    unsigned bits = sample_format_bits(f);
    double full = ldexp(1.0, (int)bits - 1) - 1.0;
    if (f == SF_S32_LE)
        full = 8388607.0 * 256.0;   /* 24-bit interface data in the top bits */
    void *buf = calloc(frames * ch, sample_format_bytes(f));
    for (size_t i = 0; i < frames; i++)
        for (unsigned c = 0; c < ch; c++)
            sample_put(buf, f, i * ch + c,
                       (int32_t)lrint(amp * full * sin(2.0 * M_PI * freq * (double)i / rate)));
    return buf;
}

static void test_full_scale_sine(void **state)
{
    (void)state;
    struct audio_format fmt = {SF_S16_LE, 48000, 2};
    struct meter *m;
    assert_int_equal(meter_create(&m, &fmt, 0), 0);
    struct meter_snapshot s;
    meter_read(m, &s);
    assert_int_equal(s.seq, 0);
    int16_t *buf = sine(SF_S16_LE, 48000, 2, 48000, 1000.0, 1.0);
    /* silence the right channel */
    for (size_t i = 0; i < 48000; i++)
        buf[2 * i + 1] = 0;
    /* odd chunk sizes: blocks span calls */
    size_t done = 0, chunk = 333;
    while (done < 48000) {
        size_t n = 48000 - done < chunk ? 48000 - done : chunk;
        meter_process(m, buf + 2 * done, n, done + n, (int64_t)(done + n) * 1000000000 / 48000);
        done += n;
    }
    meter_read(m, &s);
    assert_int_equal(s.seq, 25);            /* 25 blocks of 1920 frames */
    assert_int_equal(s.frame_pos, 48000);
    assert_int_equal(s.channels, 2);
    assert_true(s.ch[0].peak_db > -0.01f && s.ch[0].peak_db <= 0.0f);
    assert_true(fabsf(s.ch[0].rms_db - (-3.01f)) < 0.05f);
    assert_true(s.ch[0].hold_db > -0.01f);
    /* 1 kHz at 48 kHz reaches +-32767 exactly twice a period */
    assert_int_equal(s.ch[0].clips, 2000);
    assert_true(s.ch[1].peak_db == METER_FLOOR_DB);
    assert_true(s.ch[1].rms_db == METER_FLOOR_DB);
    assert_int_equal(s.ch[1].clips, 0);
    free(buf);
    meter_destroy(m);
}

static void test_hold_decays(void **state)
{
    (void)state;
    struct audio_format fmt = {SF_S24_3LE, 8000, 1};
    struct meter *m;
    assert_int_equal(meter_create(&m, &fmt, 10), 0);   /* blocks of 800 frames */
    void *loud = sine(SF_S24_3LE, 8000, 1, 800, 500.0, 0.5);
    void *quiet = calloc(800, 3);
    struct meter_snapshot s;
    uint64_t pos = 800;
    meter_process(m, loud, 800, pos, 0);
    meter_read(m, &s);
    assert_true(fabsf(s.ch[0].peak_db - (-6.02f)) < 0.05f);
    assert_true(fabsf(s.ch[0].hold_db - (-6.02f)) < 0.05f);
    /* silence: the hold stays for 2 s (20 blocks), then falls */
    for (int b = 0; b < 20; b++) {
        pos += 800;
        meter_process(m, quiet, 800, pos, 0);
        meter_read(m, &s);
        assert_true(s.ch[0].peak_db == METER_FLOOR_DB);
        assert_true(fabsf(s.ch[0].hold_db - (-6.02f)) < 0.05f);
    }
    pos += 800;
    meter_process(m, quiet, 800, pos, 0);
    meter_read(m, &s);
    assert_true(s.ch[0].hold_db == METER_FLOOR_DB);
    assert_int_equal(s.ch[0].clips, 0);
    assert_int_equal(s.frame_pos, pos);
    free(loud);
    free(quiet);
    meter_destroy(m);
}

static void test_all_formats(void **state)
{
    (void)state;
    const enum sample_format fs[] = {SF_S16_LE, SF_S24_3LE, SF_S24_LE, SF_S32_LE};
    for (size_t k = 0; k < 4; k++) {
        struct audio_format fmt = {fs[k], 44100, 3};
        struct meter *m;
        assert_int_equal(meter_create(&m, &fmt, 25), 0);
        void *buf = sine(fs[k], 44100, 3, 44100, 441.0, 0.25);
        meter_process(m, buf, 44100, 44100, 0);
        struct meter_snapshot s;
        meter_read(m, &s);
        for (unsigned c = 0; c < 3; c++) {
            assert_true(fabsf(s.ch[c].peak_db - (-12.04f)) < 0.05f);
            assert_true(fabsf(s.ch[c].rms_db - (-15.05f)) < 0.1f);
            assert_int_equal(s.ch[c].clips, 0);
        }
        free(buf);
        /* full scale in this format clips */
        buf = sine(fs[k], 44100, 3, 4410, 441.0, 1.0);
        meter_process(m, buf, 4410, 48510, 0);
        meter_read(m, &s);
        assert_true(s.ch[0].clips > 0);
        assert_true(s.ch[0].peak_db > -0.01f);
        free(buf);
        meter_destroy(m);
    }
    struct meter *m;
    struct audio_format bad = {SF_UNKNOWN, 48000, 2};
    assert_int_equal(meter_create(&m, &bad, 25), -EINVAL);
    bad = (struct audio_format){SF_S16_LE, 48000, 0};
    assert_int_equal(meter_create(&m, &bad, 25), -EINVAL);
}

/* The fast per-format loops agree with a plain computation on random full-range data, for
 * channel counts that take the vector lanes (1, 2, 4, 8) and those that do not (3, 6),
 * with reads that end anywhere inside a block. */
static void test_matches_reference(void **state)
{
    (void)state;
    const enum sample_format fs[] = {SF_S16_LE, SF_S24_3LE, SF_S24_LE, SF_S32_LE};
    const unsigned chans[] = {1, 2, 3, 4, 6, 8};
    srand(7);
    for (size_t k = 0; k < 4; k++) {
        for (size_t q = 0; q < sizeof chans / sizeof chans[0]; q++) {
            unsigned ch = chans[q], bits = sample_format_bits(fs[k]);
            struct audio_format fmt = {fs[k], 48000, ch};
            struct meter *m;
            assert_int_equal(meter_create(&m, &fmt, 25), 0);   /* blocks of 1920 frames */
            size_t frames = 1920;
            void *buf = calloc(frames * ch, sample_format_bytes(fs[k]));
            double sumsq[8] = {0};
            int64_t peak[8] = {0};
            unsigned clips[8] = {0};
            int64_t hi = fs[k] == SF_S32_LE ? 0x7fffff00 : ((int64_t)1 << (bits - 1)) - 1;
            for (size_t i = 0; i < frames * ch; i++) {
                /* every magnitude, full scale and the most negative value included */
                int64_t v = ((int64_t)rand() << 16 ^ rand()) % ((int64_t)1 << (bits - 1));
                if (rand() & 1)
                    v = -v - (rand() % 50 == 0);
                if (rand() % 100 == 0)
                    v = rand() & 1 ? hi : -hi;
                sample_put(buf, fs[k], i, (int32_t)v);
                unsigned c = (unsigned)(i % ch);
                int64_t a = v < 0 ? -v : v;
                peak[c] = a > peak[c] ? a : peak[c];
                sumsq[c] += (double)v * (double)v;
                clips[c] += v >= hi || v <= -hi;
            }
            /* fed in uneven pieces */
            size_t fb = sample_format_bytes(fs[k]) * ch, at = 0, piece = 1;
            while (at < frames) {
                size_t n = frames - at < piece ? frames - at : piece;
                meter_process(m, (uint8_t *)buf + at * fb, n, at + n, 0);
                at += n;
                piece = piece * 3 + 1;
            }
            struct meter_snapshot s;
            meter_read(m, &s);
            assert_int_equal(s.seq, 1);
            double full = ldexp(1.0, (int)bits - 1);
            for (unsigned c = 0; c < ch; c++) {
                float pdb = (float)(20.0 * log10((double)peak[c] / full));
                float rdb = (float)(10.0 * log10(sumsq[c] / (frames * full * full)));
                assert_true(fabsf(s.ch[c].peak_db - pdb) < 0.001f);
                assert_true(fabsf(s.ch[c].rms_db - rdb) < 0.001f);
                assert_int_equal(s.ch[c].clips, clips[c]);
            }
            free(buf);
            meter_destroy(m);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full_scale_sine),
        cmocka_unit_test(test_hold_decays),
        cmocka_unit_test(test_all_formats),
        cmocka_unit_test(test_matches_reference),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
