/* format: names, sizes, sample access and right-aligning conversions. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "audio/format.h"

#include <errno.h>
#include <string.h>

static void test_names_and_sizes(void **state)
{
    (void)state;
    enum sample_format f;
    assert_int_equal(sample_format_bytes(SF_S16_LE), 2);
    assert_int_equal(sample_format_bytes(SF_S24_3LE), 3);
    assert_int_equal(sample_format_bytes(SF_S24_LE), 4);
    assert_int_equal(sample_format_bytes(SF_S32_LE), 4);
    assert_int_equal(sample_format_bytes(SF_UNKNOWN), 0);
    assert_int_equal(sample_format_bits(SF_S24_LE), 24);
    assert_int_equal(sample_format_bits(SF_S32_LE), 32);
    assert_string_equal(sample_format_name(SF_S24_3LE), "S24_3LE");
    assert_int_equal(sample_format_parse("s32_le", &f), 0);
    assert_int_equal(f, SF_S32_LE);
    assert_int_equal(sample_format_parse("S24_3LE", &f), 0);
    assert_int_equal(f, SF_S24_3LE);
    assert_int_equal(sample_format_parse("FLOAT_LE", &f), -EINVAL);
    assert_int_equal(sample_format_parse(NULL, &f), -EINVAL);
    struct audio_format af = {SF_S24_3LE, 48000, 2};
    assert_int_equal(audio_frame_bytes(&af), 6);
}

static void test_sample_get(void **state)
{
    (void)state;
    const uint8_t s16[] = {0xff, 0x7f, 0x00, 0x80, 0xfe, 0xff};
    assert_int_equal(audio_sample_get(s16, SF_S16_LE, 0), 32767);
    assert_int_equal(audio_sample_get(s16, SF_S16_LE, 1), -32768);
    assert_int_equal(audio_sample_get(s16, SF_S16_LE, 2), -2);
    const uint8_t s24[] = {0xff, 0xff, 0x7f, 0x00, 0x00, 0x80, 0x01, 0x00, 0x00};
    assert_int_equal(audio_sample_get(s24, SF_S24_3LE, 0), 8388607);
    assert_int_equal(audio_sample_get(s24, SF_S24_3LE, 1), -8388608);
    assert_int_equal(audio_sample_get(s24, SF_S24_3LE, 2), 1);
    /* S24_LE: the top byte is padding and must be ignored */
    const uint8_t s24l[] = {0x00, 0x00, 0x80, 0x55, 0xff, 0xff, 0xff, 0x00};
    assert_int_equal(audio_sample_get(s24l, SF_S24_LE, 0), -8388608);
    assert_int_equal(audio_sample_get(s24l, SF_S24_LE, 1), -1);
    const uint8_t s32[] = {0x00, 0x01, 0x00, 0x80, 0xff, 0xff, 0xff, 0x7f};
    assert_int_equal(audio_sample_get(s32, SF_S32_LE, 0), (int32_t)0x80000100);
    assert_int_equal(audio_sample_get(s32, SF_S32_LE, 1), INT32_MAX);
}

static void test_to_int32(void **state)
{
    (void)state;
    /* A 24-bit interface in S32_LE: data in the top 24 bits; libFLAC wants them at the
     * bottom. */
    int32_t in[4] = {0x7fffff00, (int32_t)0x80000000, 0x00000100, -256};
    int32_t out[4];
    audio_samples_to_int32(in, SF_S32_LE, 4, 24, out);
    assert_int_equal(out[0], 8388607);
    assert_int_equal(out[1], -8388608);
    assert_int_equal(out[2], 1);
    assert_int_equal(out[3], -1);
    audio_samples_to_int32(in, SF_S32_LE, 4, 32, out);
    assert_memory_equal(in, out, sizeof in);
    audio_samples_to_int32(in, SF_S32_LE, 4, 16, out);
    assert_int_equal(out[0], 32767);
    assert_int_equal(out[1], -32768);

    const uint8_t s24[] = {0x56, 0x34, 0x12, 0xaa, 0xcb, 0xed};
    audio_samples_to_int32(s24, SF_S24_3LE, 2, 24, out);
    assert_int_equal(out[0], 0x123456);
    assert_int_equal(out[1], (int32_t)0xffedcbaa);
    const int16_t s16[] = {-1, 1000};
    audio_samples_to_int32(s16, SF_S16_LE, 2, 16, out);
    assert_int_equal(out[0], -1);
    assert_int_equal(out[1], 1000);
    /* widening keeps the level: 16 -> 24 bits */
    audio_samples_to_int32(s16, SF_S16_LE, 2, 24, out);
    assert_int_equal(out[0], -256);
    assert_int_equal(out[1], 256000);
}

/* The per-format vector loops give what the plain per-sample definition gives, for every
 * format and depth, lengths that leave a tail, and unaligned buffers; the S32 check
 * returns the OR of every word (it decides whether a 24-bit take has to go on at 32). */
static void test_to_int32_matches_sample_get(void **state)
{
    (void)state;
    static const struct { enum sample_format f; unsigned bits; } cases[] = {
        {SF_S16_LE, 16}, {SF_S16_LE, 24}, {SF_S24_3LE, 24}, {SF_S24_LE, 24},
        {SF_S32_LE, 32}, {SF_S32_LE, 24}, {SF_S32_LE, 16},
    };
    uint8_t raw[1 + 4 * 41];
    int32_t out[41];
    unsigned seed = 12345;
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        enum sample_format f = cases[k].f;
        unsigned have = sample_format_bits(f), bits = cases[k].bits;
        for (size_t n = 0; n <= 41; n++) {
            for (size_t i = 0; i < sizeof raw; i++) {
                seed = seed * 1103515245u + 12345u;
                raw[i] = (uint8_t)(seed >> 16);
            }
            const uint8_t *in = raw + 1;   /* not aligned */
            audio_samples_to_int32(in, f, n, bits, out);
            uint32_t or_all = 0;
            for (size_t i = 0; i < n; i++) {
                int32_t v = audio_sample_get(in, f, i);
                or_all |= (uint32_t)v;
                int32_t want = bits < have ? v >> (have - bits)
                                           : (int32_t)((uint32_t)v << (bits - have));
                assert_int_equal(out[i], want);
            }
            if (f == SF_S32_LE && bits < 32) {
                memset(out, 0, sizeof out);
                assert_int_equal(audio_s32_to_int32_check(in, n, 32 - bits, out), or_all);
                for (size_t i = 0; i < n; i++)
                    assert_int_equal(out[i], audio_sample_get(in, f, i) >> (32 - bits));
            }
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names_and_sizes),
        cmocka_unit_test(test_sample_get),
        cmocka_unit_test(test_to_int32),
        cmocka_unit_test(test_to_int32_matches_sample_get),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
