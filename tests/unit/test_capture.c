/* capture: the thread from source to ring and meter; end states, losses, stop. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "audio/capture.h"
#include "audio/source_util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char raw[300];
#define RAW_FRAMES 40000u

/* mono S32_LE whose every sample is its own frame index: gaps and order show */
static int setup(void **state)
{
    (void)state;
    const char *t = getenv("TEST_TMP");
    snprintf(raw, sizeof raw, "%s/capXXXXXX", t && *t ? t : "/tmp");
    int fd = mkstemp(raw);
    if (fd < 0)
        return -1;
    int32_t *b = malloc(RAW_FRAMES * 4);
    for (uint32_t i = 0; i < RAW_FRAMES; i++)
        b[i] = (int32_t)i;
    ssize_t w = write(fd, b, RAW_FRAMES * 4);
    free(b);
    close(fd);
    return w == RAW_FRAMES * 4 ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    return unlink(raw);
}

/* Reads the ring until the end; returns frames; checks content against the file. */
static uint64_t drain(struct audio_ring *r, int32_t *out, size_t max, uint64_t *lost)
{
    uint64_t pos = 0, got = 0;
    for (;;) {
        ssize_t n = audio_ring_read(r, &pos, out + got, max - got, lost);
        assert_true(n >= 0);
        got += (uint64_t)n;
        if (n == 0) {
            int w = audio_ring_wait(r, pos, 10000);
            if (w == -EPIPE)
                break;
            assert_int_equal(w, 0);
        }
    }
    return got;
}

static void test_unplug_ends_gone(void **state)
{
    (void)state;
    struct audio_format want = {SF_S32_LE, 48000, 1};
    struct file_source_options o = {.fail_at_frame = 12345};
    struct audio_source *s;
    assert_int_equal(audio_source_open_file(&s, raw, &want, &o), 0);
    struct capture *c;
    struct capture_config cfg = {.ring_seconds = 1};
    assert_int_equal(capture_start(&c, s, &cfg), 0);
    assert_int_equal(capture_wait_end(c, 10000), 0);
    assert_int_equal(capture_get_state(c), CAPTURE_GONE);
    assert_int_equal(capture_error(c), 0);
    int32_t *out = calloc(RAW_FRAMES, 4);
    uint64_t lost = 0;
    /* the ring is closed and holds exactly what the device gave before it vanished */
    assert_int_equal(drain(capture_ring(c), out, RAW_FRAMES, &lost), 12345);
    assert_int_equal(lost, 0);
    for (uint32_t i = 0; i < 12345; i++)
        if (out[i] != (int32_t)i)
            fail_msg("frame %u holds %d", i, out[i]);
    assert_int_equal(audio_ring_write_pos(capture_ring(c)), 12345);
    struct meter_snapshot m;
    capture_meter(c, &m);
    assert_true(m.seq >= 6);   /* 12345 frames = 6 blocks of 1920 */
    assert_true(m.frame_pos <= 12345);
    capture_stop(c);
    free(out);
}

static void test_end_of_file_ends(void **state)
{
    (void)state;
    struct audio_format want = {SF_S32_LE, 48000, 1};
    struct audio_source *s;
    assert_int_equal(audio_source_open_file(&s, raw, &want, NULL), 0);
    struct capture *c;
    assert_int_equal(capture_start(&c, s, NULL), 0);
    assert_non_null(strstr(capture_description(c), "S32_LE 48000 Hz 1 ch"));
    assert_int_equal(capture_format(c)->rate, 48000);
    assert_int_equal(capture_wait_end(c, 10000), 0);
    assert_int_equal(capture_get_state(c), CAPTURE_ENDED);
    int32_t *out = calloc(RAW_FRAMES, 4);
    uint64_t lost = 0;
    assert_int_equal(drain(capture_ring(c), out, RAW_FRAMES, &lost), RAW_FRAMES);
    assert_int_equal(out[RAW_FRAMES - 1], RAW_FRAMES - 1);
    uint64_t total = 99;
    assert_int_equal(capture_get_losses(c, 0, NULL, 0, &total), 0);
    assert_int_equal(total, 0);
    capture_stop(c);
    free(out);
}

static void test_stall_is_a_loss(void **state)
{
    (void)state;
    /* 8 kHz in real time: a 300 ms stall at frame 4000 loses 2400 frames */
    struct audio_format want = {SF_S32_LE, 8000, 1};
    struct file_source_options o = {.realtime = 1, .stall_at_frame = 4000, .stall_ms = 300,
                                    .fail_at_frame = 6000};
    struct audio_source *s;
    assert_int_equal(audio_source_open_file(&s, raw, &want, &o), 0);
    struct capture *c;
    assert_int_equal(capture_start(&c, s, NULL), 0);
    assert_int_equal(capture_wait_end(c, 20000), 0);
    assert_int_equal(capture_get_state(c), CAPTURE_GONE);
    struct capture_loss l[4];
    uint64_t total = 0;
    assert_int_equal(capture_get_losses(c, 0, l, 4, &total), 1);
    assert_int_equal(total, 1);
    assert_int_equal(l[0].at_frame, 4000);
    assert_int_equal(l[0].frames, 2400);
    assert_true(l[0].realtime_ns > 0);
    /* asking for losses after the gap finds none */
    assert_int_equal(capture_get_losses(c, 4001, l, 4, &total), 0);
    int32_t *out = calloc(RAW_FRAMES, 4);
    uint64_t lost = 0;
    assert_int_equal(drain(capture_ring(c), out, RAW_FRAMES, &lost), 6000);
    /* the ring holds the audio around the gap: ...3999 then 6400... */
    assert_int_equal(out[3999], 3999);
    assert_int_equal(out[4000], 6400);
    assert_int_equal(out[5999], 8399);
    capture_stop(c);
    free(out);
}

static void test_tone_runs_until_stopped(void **state)
{
    (void)state;
    struct audio_source *s;
    assert_int_equal(audio_source_open_tone(&s, NULL), 0);
    struct capture *c;
    struct capture_config cfg = {.ring_seconds = 2, .meter_rate = 50};
    assert_int_equal(capture_start(&c, s, &cfg), 0);
    assert_int_equal(capture_wait_end(c, 50), -ETIMEDOUT);
    assert_int_equal(capture_get_state(c), CAPTURE_RUNNING);
    /* a reader sees audio arrive and the meter move */
    uint64_t pos = 0;
    assert_int_equal(audio_ring_wait(capture_ring(c), pos, 5000), 0);
    struct meter_snapshot m = {0};
    for (int i = 0; i < 500 && m.seq < 3; i++) {
        audio_ring_wait(capture_ring(c), audio_ring_write_pos(capture_ring(c)), 1000);
        capture_meter(c, &m);
    }
    assert_true(m.seq >= 3);
    assert_int_equal(m.channels, 2);
    assert_true(m.ch[0].peak_db > METER_FLOOR_DB);
    assert_true(m.frame_pos > 0 && m.frame_pos <= audio_ring_write_pos(capture_ring(c)));
    capture_stop(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unplug_ends_gone),
        cmocka_unit_test(test_end_of_file_ends),
        cmocka_unit_test(test_stall_is_a_loss),
        cmocka_unit_test(test_tone_runs_until_stopped),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
