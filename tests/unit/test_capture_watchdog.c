/* capture watchdog and timing check: a source that falls silent is reported stalled,
 * reopened with backoff and reported back when frames flow; a source whose clock crawls
 * is reported as a loss of timing; a good clock is not. The arithmetic of capture_watch
 * on its own. A scripted source paced on CLOCK_MONOTONIC stands in for a device. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "audio/capture.h"
#include "audio/capture_watch.h"
#include "audio/source_util.h"
#include "capture_waits.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define RATE 8000u
#define PERIOD 80u   /* 10 ms */

/* ---- a scripted device ------------------------------------------------------------- */

struct fake {
    struct audio_source base;
    struct pacer pacer;
    uint64_t paced;               /* frames of the device's timeline so far */
    _Atomic int silent;           /* 1: read returns -EAGAIN (after a short wait) */
    _Atomic int reopen_ok;        /* 0: reopen fails with -ENOENT */
    _Atomic int reopens;
    unsigned speed_pct;           /* 100 = its clock runs at the nominal rate */
};

static ssize_t fake_read(struct audio_source *s, void *buf, size_t max)
{
    struct fake *f = s->priv;
    if (atomic_load(&f->silent)) {
        struct timespec ts = {0, 20000000};
        nanosleep(&ts, NULL);
        f->pacer.started = 0;   /* when it comes back, it comes back now */
        f->paced = 0;
        return -EAGAIN;
    }
    /* like a device: what its clock has produced since the last read (at least a period,
     * waiting for it), at most max; a crawling clock produces speed% of the nominal */
    if (!f->pacer.started)
        pacer_wait_until(&f->pacer, 0);
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    double el = (double)(now.tv_sec - f->pacer.start.tv_sec) +
                (double)(now.tv_nsec - f->pacer.start.tv_nsec) / 1e9;
    uint64_t due = (uint64_t)(el * RATE * f->speed_pct / 100);
    if (due < f->paced + PERIOD) {
        due = f->paced + PERIOD;
        pacer_wait_until(&f->pacer, due * 100 / f->speed_pct);
    }
    size_t n = due - f->paced < max ? (size_t)(due - f->paced) : max;
    f->paced += n;
    memset(buf, 0, n * 4);
    return (ssize_t)n;
}

static int fake_reopen(struct audio_source *s)
{
    struct fake *f = s->priv;
    atomic_fetch_add(&f->reopens, 1);
    if (!atomic_load(&f->reopen_ok))
        return -ENOENT;
    atomic_store(&f->silent, 0);
    return 0;
}

static void fake_close(struct audio_source *s) { (void)s; }

static const struct audio_source_ops fake_ops = {"fake", fake_read, fake_close, fake_reopen};
static const struct audio_source_ops fake_ops_noreopen = {"fake", fake_read, fake_close, NULL};

static void fake_init(struct fake *f, int can_reopen, unsigned speed_pct)
{
    memset(f, 0, sizeof *f);
    f->base.ops = can_reopen ? &fake_ops : &fake_ops_noreopen;
    f->base.format = (struct audio_format){SF_S32_LE, RATE, 1};
    f->base.period_frames = PERIOD;
    f->base.priv = f;
    f->pacer.rate = RATE;
    f->speed_pct = speed_pct;
    strcpy(f->base.description, "fake device");
}

/* ---- cases ------------------------------------------------------------------------- */

static void test_stall_reopen_back(void **state)
{
    (void)state;
    struct fake f;
    fake_init(&f, 1, 100);
    struct seen seen = {0};
    struct capture_config cfg = {.ring_seconds = 2, .stall_ms = 200, .timing_window_ms = -1,
                                 .on_event = on_event, .on_event_arg = &seen};
    struct capture *c;
    assert_int_equal(capture_start(&c, &f.base, &cfg), 0);
    wait_frames(c, RATE / 10, 5000);
    assert_false(capture_is_stalled(c));

    /* the device falls silent and stays away for a few reopens */
    atomic_store(&f.silent, 1);
    wait_events(&seen, 1, 10000);
    assert_int_equal(seen.ev[0].kind, CAPTURE_EV_STALLED);
    uint64_t end_pos = audio_ring_write_pos(capture_ring(c));
    assert_int_equal(seen.ev[0].at_frame, end_pos - 1);
    assert_true(seen.ev[0].duration_ns >= 200000000LL);
    assert_true(seen.ev[0].frames >= RATE / 5);
    assert_true(capture_is_stalled(c));
    assert_int_equal(capture_get_state(c), CAPTURE_RUNNING);   /* a stall is not an end */
    struct capture_loss l[4];
    uint64_t total = 0;
    assert_int_equal(capture_get_losses(c, 0, l, 4, &total), 1);
    assert_int_equal(l[0].kind, CAPTURE_LOSS_STALL);
    assert_int_equal(l[0].at_frame, end_pos - 1);
    assert_int_equal(l[0].frames, seen.ev[0].frames);

    int64_t end = now_ms() + 10000;
    while (atomic_load(&f.reopens) < 3 && now_ms() < end) {
        struct timespec ts = {0, 10000000};
        nanosleep(&ts, NULL);
    }
    assert_true(atomic_load(&f.reopens) >= 3);   /* 0, 0.25, 0.75 s: backoff grows */
    struct capture_stats st;
    capture_get_stats(c, &st);
    assert_true(st.stalled);
    assert_int_equal(st.stalls, 1);
    assert_int_equal(st.reopen_error, -ENOENT);
    assert_int_equal(st.stall_bound_ns, 200000000LL);
    assert_true(st.last_detect_ns >= 200000000LL);

    /* it comes back: the next reopen works and frames flow */
    atomic_store(&f.reopen_ok, 1);
    wait_events(&seen, 2, 15000);
    assert_int_equal(seen.ev[1].kind, CAPTURE_EV_BACK);
    assert_int_equal(seen.ev[1].at_frame, end_pos);
    assert_true(seen.ev[1].frames > seen.ev[0].frames);
    assert_true(seen.ev[1].duration_ns > seen.ev[0].duration_ns);
    wait_frames(c, end_pos + RATE / 10, 5000);
    assert_false(capture_is_stalled(c));
    capture_get_stats(c, &st);
    assert_int_equal(st.reopen_error, 0);
    assert_int_equal(st.last_stall_ns, seen.ev[1].duration_ns);
    /* the rest of the gap is filed where the new frames start; together: the whole gap */
    assert_int_equal(capture_get_losses(c, 0, l, 4, &total), 2);
    assert_int_equal(l[1].kind, CAPTURE_LOSS_STALL);
    assert_int_equal(l[1].at_frame, end_pos);
    assert_int_equal(l[0].frames + l[1].frames, seen.ev[1].frames);
    capture_stop(c);
}

static void test_stall_without_reopen(void **state)
{
    (void)state;
    struct fake f;
    fake_init(&f, 0, 100);
    struct seen seen = {0};
    struct capture_config cfg = {.ring_seconds = 2, .stall_ms = 150, .timing_window_ms = -1,
                                 .on_event = on_event, .on_event_arg = &seen};
    struct capture *c;
    assert_int_equal(capture_start(&c, &f.base, &cfg), 0);
    wait_frames(c, 0, 5000);
    atomic_store(&f.silent, 1);
    wait_events(&seen, 1, 10000);
    assert_int_equal(seen.ev[0].kind, CAPTURE_EV_STALLED);
    uint64_t end_pos = audio_ring_write_pos(capture_ring(c));
    atomic_store(&f.silent, 0);   /* the device recovers by itself */
    wait_events(&seen, 2, 10000);
    assert_int_equal(seen.ev[1].kind, CAPTURE_EV_BACK);
    assert_int_equal(seen.ev[1].at_frame, end_pos);
    struct capture_stats st;
    capture_get_stats(c, &st);
    assert_int_equal(st.reopens, 0);
    assert_int_equal(st.stalls, 1);
    capture_stop(c);
}

static void test_crawling_clock_is_a_loss_of_timing(void **state)
{
    (void)state;
    struct fake f;
    fake_init(&f, 1, 50);   /* half speed */
    struct seen seen = {0};
    struct capture_config cfg = {.ring_seconds = 2, .stall_ms = -1, .timing_window_ms = 500,
                                 .on_event = on_event, .on_event_arg = &seen};
    struct capture *c;
    assert_int_equal(capture_start(&c, &f.base, &cfg), 0);
    wait_events(&seen, 1, 10000);
    assert_int_equal(seen.ev[0].kind, CAPTURE_EV_TIMING);
    /* half of a window of at least 500 ms is missing */
    assert_true(seen.ev[0].frames >= RATE / 5);
    assert_int_equal(seen.ev[0].duration_ns, 500000000LL);
    struct capture_stats st;
    capture_get_stats(c, &st);
    assert_true(st.timing_losses >= 1);
    assert_true(st.timing_lost_frames >= seen.ev[0].frames);
    assert_true(st.measured_rate > RATE * 0.3 && st.measured_rate < RATE * 0.7);
    assert_int_equal(st.stall_bound_ns, 0);
    struct capture_loss l[4];
    assert_true(capture_get_losses(c, 0, l, 4, NULL) >= 1);
    assert_int_equal(l[0].kind, CAPTURE_LOSS_TIMING);
    assert_int_equal(l[0].frames, seen.ev[0].frames);
    capture_stop(c);
}

static void test_good_clock_is_not(void **state)
{
    (void)state;
    struct fake f;
    fake_init(&f, 1, 100);
    struct seen seen = {0};
    struct capture_config cfg = {.ring_seconds = 2, .timing_window_ms = 400,
                                 .on_event = on_event, .on_event_arg = &seen};
    struct capture *c;
    assert_int_equal(capture_start(&c, &f.base, &cfg), 0);
    struct capture_stats st = {0};
    int64_t end = now_ms() + 20000;
    while (st.measured_rate == 0 && now_ms() < end) {
        wait_frames(c, audio_ring_write_pos(capture_ring(c)), 5000);
        capture_get_stats(c, &st);
    }
    assert_true(st.measured_rate > RATE * 0.9 && st.measured_rate < RATE * 1.1);
    assert_int_equal(st.timing_losses, 0);
    assert_int_equal(atomic_load(&seen.n), 0);
    /* the automatic bound: at least 2 s (this device's buffer is one period) */
    assert_int_equal(st.stall_bound_ns, 2000000000LL);
    capture_stop(c);
}

static void test_bound_is_three_buffers(void **state)
{
    (void)state;
    struct fake f;
    fake_init(&f, 1, 100);
    f.base.buffer_frames = RATE;   /* 1 s: the bound is 3 s */
    struct capture *c;
    assert_int_equal(capture_start(&c, &f.base, NULL), 0);
    struct capture_stats st;
    capture_get_stats(c, &st);
    assert_int_equal(st.stall_bound_ns, 3000000000LL);
    capture_stop(c);
}

/* The arithmetic alone, on made-up times. */
static void test_watch_arithmetic(void **state)
{
    (void)state;
    struct capture_watch w;
    const int64_t S = 1000000000LL;
    watch_init(&w, 48000, 48000, 1920, 0, 0, 100 * S);
    assert_int_equal(w.bound_ns, 3 * S);
    assert_int_equal(w.window_ns, 10 * S);
    assert_false(watch_stalled(&w, 103 * S));
    assert_true(watch_stalled(&w, 103 * S + 1));
    assert_int_equal(watch_ns_to_frames(&w, S / 2), 24000);
    /* the window opens with the first frames and counts only what follows */
    assert_int_equal(watch_frames(&w, 1920, 0, 100 * S), 0);
    assert_false(watch_stalled(&w, 102 * S));
    /* 10 s at 96% of the clock: within 5% */
    assert_int_equal(watch_frames(&w, 460800, 0, 110 * S), 0);
    assert_int_equal(w.last_rate_mhz, 46080000);
    /* 10 s at 90%: 48000 frames short */
    assert_int_equal(watch_frames(&w, 432000, 0, 120 * S), 48000);
    /* 10 s at 90%, of which an xrun threw away 10%: nothing missing in timing */
    watch_lost(&w, 48000);
    assert_int_equal(watch_frames(&w, 432000, 0, 130 * S), 0);
    /* a full read (the reader is behind) never closes a window */
    assert_int_equal(watch_frames(&w, 1920, 1, 141 * S), 0);
    assert_int_equal(watch_frames(&w, 526080, 0, 141 * S), 0);   /* 11 s in full */
    /* a restarted window opens again at the next frames */
    watch_restart_window(&w);
    assert_int_equal(watch_frames(&w, 100, 0, 200 * S), 0);
    assert_int_equal(watch_frames(&w, 480000, 0, 210 * S), 0);
    /* off */
    watch_init(&w, 48000, 0, 480, -1, -1, 0);
    assert_false(watch_stalled(&w, 1000 * S));
    assert_int_equal(watch_frames(&w, 1, 0, 1), 0);
    assert_int_equal(watch_frames(&w, 1, 0, 100 * S), 0);
    /* small buffers: the bound is still 2 s */
    watch_init(&w, 48000, 480, 1920, 0, 0, 0);
    assert_int_equal(w.bound_ns, 2 * S);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_watch_arithmetic),
        cmocka_unit_test(test_stall_reopen_back),
        cmocka_unit_test(test_stall_without_reopen),
        cmocka_unit_test(test_crawling_clock_is_a_loss_of_timing),
        cmocka_unit_test(test_good_clock_is_not),
        cmocka_unit_test(test_bound_is_three_buffers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
