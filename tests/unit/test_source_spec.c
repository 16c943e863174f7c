/* source_spec: the one source grammar of `pirec serve` (pcm =) and `pirec record --source`.
 * A table of good specs with what they give, and of bad ones with a word their message
 * must contain (so that each says what is wrong). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "audio/source_spec.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

struct good {
    const char *text;
    int default_realtime;
    enum source_kind kind;
    const char *name;
    struct file_source_options fopt;
};

static const struct good GOOD[] = {
    {"tone", 0, SOURCE_TONE, "tone", {0}},
    {"hw:CARD=USB,DEV=0", 0, SOURCE_ALSA, "hw:CARD=USB,DEV=0", {0}},
    {"default", 1, SOURCE_ALSA, "default", {0}},
    {"plughw:1", 0, SOURCE_ALSA, "plughw:1", {0}},
    {"file:/a/b.wav", 1, SOURCE_FILE, "/a/b.wav", {.realtime = 1}},
    {"file:/a/b.wav", 0, SOURCE_FILE, "/a/b.wav", {.realtime = 0}},
    {"file:rel.wav?realtime=0", 1, SOURCE_FILE, "rel.wav", {.realtime = 0}},
    {"file:x.wav?realtime=1&loop=1", 0, SOURCE_FILE, "x.wav", {.realtime = 1, .loop = 1}},
    {"file:x.wav?fail_at=70000", 0, SOURCE_FILE, "x.wav", {.fail_at_frame = 70000}},
    {"file:x.wav?stall_at=24000&stall_ms=300", 1, SOURCE_FILE, "x.wav",
     {.realtime = 1, .stall_at_frame = 24000, .stall_ms = 300}},
    {"file:x.wav?realtime=1&pace_percent=50", 0, SOURCE_FILE, "x.wav",
     {.realtime = 1, .pace_percent = 50}},
    {"file:x.wav?fail_at=18446744073709551615", 0, SOURCE_FILE, "x.wav",
     {.fail_at_frame = UINT64_MAX}},
    {"file:a b&c.wav", 0, SOURCE_FILE, "a b&c.wav", {0}},   /* '&' only splits after '?' */
};

struct bad {
    const char *text;
    const char *says;    /* part of the message */
};

static const struct bad BAD[] = {
    {"", "no source"},
    {"file:", "needs a path"},
    {"file:?realtime=1", "needs a path"},
    {"file:x.wav?", "empty option"},
    {"file:x.wav?realtime=1&", "empty option"},
    {"file:x.wav?realtime=1&&loop=1", "empty option"},
    {"file:x.wav?speed=2", "unknown option 'speed'"},
    {"file:x.wav?fail_at", "needs a value: fail_at=N"},
    {"file:x.wav?fail_at=", "fail_at must be"},
    {"file:x.wav?fail_at=-1", "whole number"},
    {"file:x.wav?fail_at=1k", "whole number"},
    {"file:x.wav?fail_at= 1", "whole number"},
    {"file:x.wav?fail_at=18446744073709551616", "whole number 0..18446744073709551615"},
    {"file:x.wav?realtime=2", "realtime must be 0 or 1, not '2'"},
    {"file:x.wav?loop=yes", "not 'yes'"},
    {"file:x.wav?pace_percent=0", "1..100"},
    {"file:x.wav?pace_percent=101", "1..100"},
    {"file:x.wav?stall_ms=700000", "0..600000"},
    {"file:x.wav?fail_at=1&fail_at=2", "given twice"},
    {"file:x.wav?stall_at=10", "go together"},
    {"file:x.wav?stall_ms=10", "go together"},
    {"file:x.wav?realtime=1?loop=1", "not '1?loop=1'"},
    {"tone?loop=1", "no options"},
    {"hw:0\n", "control character"},
    {"file:a\tb.wav", "control character"},
};

static void test_good_specs(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(GOOD) / sizeof(GOOD[0]); i++) {
        const struct good *g = &GOOD[i];
        struct source_spec s;
        char err[256] = "unset";
        int rc = source_spec_parse(g->text, g->default_realtime, &s, err, sizeof(err));
        if (rc != 0)
            fail_msg("'%s' refused: %s", g->text, err);
        assert_string_equal(err, "");
        if (s.kind != g->kind || strcmp(s.name, g->name) != 0)
            fail_msg("'%s': kind %d name '%s'", g->text, s.kind, s.name);
        if (memcmp(&s.fopt, &g->fopt, sizeof(s.fopt)) != 0)
            fail_msg("'%s': options rt=%d loop=%d fail=%llu stall=%llu/%u pace=%u", g->text,
                     s.fopt.realtime, s.fopt.loop, (unsigned long long)s.fopt.fail_at_frame,
                     (unsigned long long)s.fopt.stall_at_frame, s.fopt.stall_ms,
                     s.fopt.pace_percent);
    }
}

static void test_bad_specs(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(BAD) / sizeof(BAD[0]); i++) {
        struct source_spec s;
        char err[256] = "";
        int rc = source_spec_parse(BAD[i].text, 1, &s, err, sizeof(err));
        if (rc != -EINVAL)
            fail_msg("'%s' accepted (rc %d)", BAD[i].text, rc);
        if (!strstr(err, BAD[i].says))
            fail_msg("'%s': message '%s' does not say '%s'", BAD[i].text, err, BAD[i].says);
    }
    /* too long, and a NULL text */
    static char longpath[5000];
    memset(longpath, 'a', sizeof(longpath) - 1);
    memcpy(longpath, "file:", 5);
    struct source_spec s;
    char err[256];
    assert_int_equal(source_spec_parse(longpath, 0, &s, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "longer than"));
    assert_int_equal(source_spec_parse(longpath + 5, 0, &s, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "longer than"));
    assert_int_equal(source_spec_parse(NULL, 0, &s, err, sizeof(err)), -EINVAL);
    assert_int_equal(source_spec_parse("tone", 0, &s, NULL, 0), 0);   /* no err buffer */
}

static void test_open(void **state)
{
    (void)state;
    struct source_spec s;
    struct audio_source *src = NULL;
    assert_int_equal(source_spec_parse("tone", 0, &s, NULL, 0), 0);
    struct audio_format want = {0};
    assert_int_equal(source_spec_open(&s, NULL, &want, &src), 0);
    assert_string_equal(src->ops->kind, "tone");
    audio_source_close(src);
    assert_int_equal(source_spec_parse("file:/nonexistent/x.wav", 0, &s, NULL, 0), 0);
    assert_true(source_spec_open(&s, NULL, &want, &src) < 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good_specs),
        cmocka_unit_test(test_bad_specs),
        cmocka_unit_test(test_open),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
