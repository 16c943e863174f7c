/* audio_ring: exact loss accounting, no torn frames under a racing writer, wait/close. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "audio/audio_ring.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Every frame holds its own absolute position twice, so a torn or stale frame shows. */
struct pframe { uint64_t a, b; };

static void fill(struct pframe *f, uint64_t pos, size_t n)
{
    for (size_t i = 0; i < n; i++)
        f[i].a = f[i].b = pos + i;
}

static void test_basic_and_slow_reader(void **state)
{
    (void)state;
    struct audio_ring *r;
    assert_int_equal(audio_ring_create(&r, 64, sizeof(struct pframe)), 0);
    assert_int_equal(audio_ring_capacity(r), 64);
    assert_int_equal(audio_ring_frame_bytes(r), sizeof(struct pframe));
    struct pframe buf[200], out[200];
    uint64_t pos = 0, lost = 0;
    assert_int_equal(audio_ring_read(r, &pos, out, 10, &lost), 0);

    fill(buf, 0, 30);
    audio_ring_write(r, buf, 30);
    assert_int_equal(audio_ring_write_pos(r), 30);
    assert_int_equal(audio_ring_read(r, &pos, out, 10, &lost), 10);
    assert_int_equal(pos, 10);
    assert_int_equal(out[0].a, 0);
    assert_int_equal(out[9].b, 9);
    assert_int_equal(lost, 0);

    /* the writer runs 70 frames ahead of a slow reader at 10: 100 written, ring keeps
     * 36..99, so exactly 26 frames are lost */
    fill(buf, 30, 70);
    audio_ring_write(r, buf, 70);
    ssize_t n = audio_ring_read(r, &pos, out, 200, &lost);
    assert_int_equal(lost, 26);
    assert_int_equal(n, 64);
    assert_int_equal(out[0].a, 36);
    assert_int_equal(out[63].a, 99);
    assert_int_equal(pos, 100);

    /* a write larger than the ring keeps its newest frames */
    fill(buf, 100, 150);
    audio_ring_write(r, buf, 150);
    lost = 0;
    n = audio_ring_read(r, &pos, out, 200, &lost);
    assert_int_equal(lost, 86);
    assert_int_equal(n, 64);
    assert_int_equal(out[0].a, 186);
    assert_int_equal(out[63].b, 249);

    /* pre-roll: a reader that starts behind the write position */
    uint64_t pre = audio_ring_write_pos(r) - 20;
    lost = 0;
    n = audio_ring_read(r, &pre, out, 200, &lost);
    assert_int_equal(n, 20);
    assert_int_equal(out[0].a, 230);
    assert_int_equal(lost, 0);
    audio_ring_destroy(r);

    assert_int_equal(audio_ring_create(&r, 0, 4), -EINVAL);
    assert_int_equal(audio_ring_create(&r, 4, 0), -EINVAL);
}

struct wctx {
    struct audio_ring *r;
    int64_t delay_ms;
};

static void *delayed_writer(void *arg)
{
    struct wctx *w = arg;
    struct timespec ts = {0, w->delay_ms * 1000000L};
    nanosleep(&ts, NULL);   /* gives the reader time to block: the test does not depend on it */
    struct pframe f[5];
    fill(f, audio_ring_write_pos(w->r), 5);
    audio_ring_write(w->r, f, 5);
    nanosleep(&ts, NULL);
    audio_ring_close(w->r);
    return NULL;
}

static void test_wait_close(void **state)
{
    (void)state;
    struct audio_ring *r;
    assert_int_equal(audio_ring_create(&r, 16, sizeof(struct pframe)), 0);
    assert_int_equal(audio_ring_wait(r, 0, 30), -ETIMEDOUT);
    assert_int_equal(audio_ring_wait(r, 0, 0), -ETIMEDOUT);
    struct wctx w = {r, 50};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, delayed_writer, &w), 0);
    assert_int_equal(audio_ring_wait(r, 0, 10000), 0);
    assert_true(audio_ring_write_pos(r) >= 5);
    uint64_t pos = 0, lost = 0;
    struct pframe out[8];
    assert_int_equal(audio_ring_read(r, &pos, out, 8, &lost), 5);
    /* blocks until the close, then reports the end */
    assert_int_equal(audio_ring_wait(r, pos, -1), -EPIPE);
    assert_int_equal(audio_ring_read(r, &pos, out, 8, &lost), 0);
    pthread_join(t, NULL);
    audio_ring_destroy(r);
}

/* ---- stress: one writer as fast as it can, several readers of different speed ---- */

#define STRESS_CAP 997   /* not a divisor of the chunk sizes: wrap-around everywhere */

struct rctx {
    struct audio_ring *r;
    unsigned seed;
    int slow;
    uint64_t got, lost, bad, gaps, reads;
};

static void *stress_reader(void *arg)
{
    struct rctx *c = arg;
    struct pframe *out = malloc(600 * sizeof *out);
    uint64_t pos = 0;
    for (;;) {
        int w = audio_ring_wait(c->r, pos, 5000);
        if (w == -EPIPE)
            break;
        if (w != 0) {
            c->bad++;   /* a wait that never woke up */
            break;
        }
        size_t want = 1 + (size_t)(rand_r(&c->seed) % 600);
        uint64_t before = pos, lost = 0;
        ssize_t n = audio_ring_read(c->r, &pos, out, want, &lost);
        c->reads++;
        if (n < 0) {
            c->bad++;
            break;
        }
        /* exact accounting: the frames we got start right after those counted lost */
        if (n > 0 && out[0].a != before + lost)
            c->gaps++;
        if (pos != before + lost + (uint64_t)n)
            c->gaps++;
        for (ssize_t i = 0; i < n; i++)
            if (out[i].a != before + lost + (uint64_t)i || out[i].b != out[i].a)
                c->bad++;
        c->got += (uint64_t)n;
        c->lost += lost;
        if (c->slow && (c->reads % 8) == 0) {
            struct timespec ts = {0, 200000};
            nanosleep(&ts, NULL);
        }
    }
    free(out);
    return NULL;
}

static void test_stress(void **state)
{
    (void)state;
    struct audio_ring *r;
    assert_int_equal(audio_ring_create(&r, STRESS_CAP, sizeof(struct pframe)), 0);
    enum { NR = 3 };
    struct rctx rc[NR];
    pthread_t th[NR];
    for (int i = 0; i < NR; i++) {
        rc[i] = (struct rctx){.r = r, .seed = 1234u + (unsigned)i, .slow = (i == NR - 1)};
        assert_int_equal(pthread_create(&th[i], NULL, stress_reader, &rc[i]), 0);
    }
    const char *san = getenv("PIREC_SAN");
    uint64_t total = (san && *san == '1') ? 1000000 : 4000000;
    struct pframe chunk[700];
    unsigned seed = 99;
    uint64_t w = 0;
    while (w < total) {
        size_t n = 1 + (size_t)(rand_r(&seed) % 700);
        if (w + n > total)
            n = (size_t)(total - w);
        fill(chunk, w, n);
        audio_ring_write(r, chunk, n);
        w += n;
    }
    audio_ring_close(r);
    uint64_t any_lost = 0;
    for (int i = 0; i < NR; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(rc[i].bad, 0);
        assert_int_equal(rc[i].gaps, 0);
        /* nothing vanished without being counted */
        assert_int_equal(rc[i].got + rc[i].lost, total);
        any_lost += rc[i].lost;
    }
    /* the slow reader must have fallen behind a ring this small */
    assert_true(rc[NR - 1].lost > 0);
    (void)any_lost;
    audio_ring_destroy(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_basic_and_slow_reader),
        cmocka_unit_test(test_wait_close),
        cmocka_unit_test(test_stress),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
