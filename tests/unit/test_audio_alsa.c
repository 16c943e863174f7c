/* ALSA source through real alsa-lib: the `file` plugin over `null` plays a raw file as a
 * capture device. Frames must come out bit-exact in S16_LE, S24_3LE and S32_LE. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "audio/source.h"
#include "audio/source_util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char raw[300];

static int setup(void **state)
{
    (void)state;
    const char *t = getenv("TEST_TMP");
    snprintf(raw, sizeof raw, "%s/alsaXXXXXX", t && *t ? t : "/tmp");
    int fd = mkstemp(raw);
    if (fd < 0)
        return -1;
    close(fd);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    return unlink(raw);
}

static char *conf_for(const char *infile)
{
    static char conf[1024];
    snprintf(conf, sizeof conf,
             "pcm.filecap {\n type file\n slave.pcm { type null }\n file \"/dev/null\"\n"
             " infile \"%s\"\n format \"raw\"\n}\n", infile);
    return conf;
}

static void check_format(enum sample_format f, unsigned rate, unsigned ch)
{
    const size_t frames = 30000;
    size_t fb = sample_format_bytes(f) * ch;
    /* the plugin repeats its last buffer past the end: pad, compare what we wrote */
    uint8_t *data = calloc(frames * 3, fb);
    unsigned bits = sample_format_bits(f);
    for (size_t i = 0; i < frames * ch; i++) {
        uint32_t v = (uint32_t)(i * 2654435761u);
        int32_t s = bits == 32 ? (int32_t)v : (int32_t)(v >> (33 - bits)) * ((i & 1) ? -1 : 1);
        sample_put(data, f, i, s);
    }
    FILE *fp = fopen(raw, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(data, fb, frames * 3, fp), frames * 3);
    fclose(fp);

    struct audio_format want = {f, rate, ch};
    struct audio_source *s;
    assert_int_equal(audio_source_open_alsa(&s, "filecap", conf_for(raw), &want), 0);
    assert_string_equal(s->ops->kind, "alsa");
    assert_int_equal(s->format.sample, f);
    assert_int_equal(s->format.rate, rate);
    assert_int_equal(s->format.channels, ch);
    assert_true(s->period_frames > 0 && s->period_frames <= rate / 50);
    assert_non_null(strstr(s->description, sample_format_name(f)));
    uint8_t *got = calloc(frames + 4096, fb);
    size_t n = 0;
    int reads = 0;
    while (n < frames) {
        ssize_t r = audio_source_read(s, got + n * fb, 1000);   /* like capture: a few periods */
        if (r == -EAGAIN)
            continue;
        assert_true(r > 0);
        n += (size_t)r;
        reads++;
    }
    assert_true(reads > 1);
    for (size_t i = 0; i < frames; i++)
        if (memcmp(got + i * fb, data + i * fb, fb) != 0)
            fail_msg("%s: frame %zu differs", sample_format_name(f), i);
    audio_source_close(s);
    free(got);
    free(data);
}

static void test_s16(void **state) { (void)state; check_format(SF_S16_LE, 48000, 2); }
static void test_s24_3(void **state) { (void)state; check_format(SF_S24_3LE, 96000, 2); }
static void test_s32(void **state) { (void)state; check_format(SF_S32_LE, 192000, 2); }
static void test_s32_mono(void **state) { (void)state; check_format(SF_S32_LE, 44100, 1); }

static void test_best_format_and_errors(void **state)
{
    (void)state;
    FILE *fp = fopen(raw, "wb");
    static uint8_t zeros[1 << 16];
    fwrite(zeros, 1, sizeof zeros, fp);
    fclose(fp);
    struct audio_source *s;
    /* null takes anything: the widest format, 48 kHz, capped channels */
    assert_int_equal(audio_source_open_alsa(&s, "filecap", conf_for(raw), NULL), 0);
    assert_int_equal(s->format.sample, SF_S32_LE);
    assert_int_equal(s->format.rate, 48000);
    assert_true(s->format.channels >= 1 && s->format.channels <= AUDIO_MAX_CHANNELS);
    audio_source_close(s);
    struct audio_format w = {SF_S16_LE, 0, 1};
    assert_int_equal(audio_source_open_alsa(&s, "filecap", conf_for(raw), &w), 0);
    assert_int_equal(s->format.sample, SF_S16_LE);
    assert_int_equal(s->format.rate, 48000);
    assert_int_equal(s->format.channels, 1);
    audio_source_close(s);
    /* a name that does not exist, a configuration that does not parse */
    assert_true(audio_source_open_alsa(&s, "nosuchpcm", conf_for(raw), NULL) < 0);
    assert_true(audio_source_open_alsa(&s, "filecap", "pcm.filecap { type", NULL) < 0);
    assert_true(audio_source_open_alsa(&s, "hw:CARD=NoSuchCard,DEV=0", NULL, NULL) < 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_s16),
        cmocka_unit_test(test_s24_3),
        cmocka_unit_test(test_s32),
        cmocka_unit_test(test_s32_mono),
        cmocka_unit_test(test_best_format_and_errors),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
