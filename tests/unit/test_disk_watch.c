/* disk_watch: readers never wait for a probe that hangs (a stuck NFS mount): they get the
 * last figure with its age, marked stale once it is too old, or "not known" before the
 * first probe came back; a failing probe is reported; stopping does not wait for a hung
 * probe. The probe here is a gate the test opens and closes. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "server/disk_watch.h"

#include <errno.h>
#include <pthread.h>
#include <time.h>

struct gate {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int open;
    int rc;              /* what the probe answers */
    uint64_t value;
    int inside;          /* probes waiting at the gate now */
    int calls;
};

static struct gate G = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, 0, 0, 0};

static int gated_probe(const char *dir, uint64_t *free_bytes, void *arg)
{
    (void)dir;
    struct gate *g = arg;
    pthread_mutex_lock(&g->lock);
    g->inside++;
    g->calls++;
    pthread_cond_broadcast(&g->cond);
    while (!g->open)
        pthread_cond_wait(&g->cond, &g->lock);
    g->inside--;
    *free_bytes = g->value;
    int rc = g->rc;
    pthread_mutex_unlock(&g->lock);
    return rc;
}

static void gate_set(int open, uint64_t value, int rc)
{
    pthread_mutex_lock(&G.lock);
    G.open = open;
    G.value = value;
    G.rc = rc;
    pthread_cond_broadcast(&G.cond);
    pthread_mutex_unlock(&G.lock);
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits (deadline 10 s) until pred holds for a fresh reading. */
static void wait_reading(struct disk_watch *w, int (*pred)(const struct disk_reading *),
                         struct disk_reading *out, const char *what)
{
    int64_t end = now_ms() + 10000;
    do {
        disk_watch_get(w, out);
        if (pred(out))
            return;
        struct timespec ts = {0, 5000000};
        nanosleep(&ts, NULL);
    } while (now_ms() < end);
    fail_msg("disk watch: timed out waiting until %s", what);
}

static int known_fresh(const struct disk_reading *d) { return d->known && !d->stale; }
static int gone_stale(const struct disk_reading *d) { return d->stale; }
static int has_error(const struct disk_reading *d) { return d->error != 0; }

static void wait_inside(void)
{
    int64_t end = now_ms() + 10000;
    pthread_mutex_lock(&G.lock);
    while (G.inside == 0 && now_ms() < end) {
        pthread_mutex_unlock(&G.lock);
        struct timespec ts = {0, 2000000};
        nanosleep(&ts, NULL);
        pthread_mutex_lock(&G.lock);
    }
    int inside = G.inside;
    pthread_mutex_unlock(&G.lock);
    assert_true(inside > 0);
}

static void test_hung_probe_never_blocks_readers(void **state)
{
    (void)state;
    gate_set(0, 0, 0);
    struct disk_watch *w;
    struct disk_watch_config cfg = {.dir = "/nowhere", .period_ms = 20, .stale_ms = 150,
                                    .probe = gated_probe, .probe_arg = &G};
    assert_int_equal(disk_watch_start(&w, &cfg), 0);
    wait_inside();

    /* The first probe hangs: waiting for it gives up, nothing is known, the figure is
     * stale, and the reader is answered. */
    assert_int_equal(disk_watch_wait_first(w, 50), 0);
    struct disk_reading d;
    disk_watch_get(w, &d);
    assert_false(d.known);
    assert_true(d.stale);
    assert_int_equal(d.free_bytes, 0);

    gate_set(1, 123456789, 0);
    assert_int_equal(disk_watch_wait_first(w, 10000), 1);
    wait_reading(w, known_fresh, &d, "the first figure arrives");
    assert_int_equal(d.free_bytes, 123456789);
    assert_int_equal(d.error, 0);

    /* The disk hangs again: the last figure stays, its age grows, it turns stale. */
    gate_set(0, 1, 0);
    disk_watch_refresh(w);
    wait_inside();
    wait_reading(w, gone_stale, &d, "the figure goes stale behind a hung probe");
    assert_true(d.known);
    assert_int_equal(d.free_bytes, 123456789);
    assert_true(d.age_s >= 0.15);

    /* Stopping does not wait for the hung probe; its thread cleans up once it returns. */
    disk_watch_stop(w);
    gate_set(1, 0, 0);
}

static void test_failing_probe_is_reported(void **state)
{
    (void)state;
    gate_set(1, 4096, 0);
    struct disk_watch *w;
    struct disk_watch_config cfg = {.dir = "/nowhere", .period_ms = 10, .stale_ms = 60000,
                                    .probe = gated_probe, .probe_arg = &G};
    assert_int_equal(disk_watch_start(&w, &cfg), 0);
    struct disk_reading d;
    wait_reading(w, known_fresh, &d, "a figure");
    gate_set(1, 0, -EIO);
    wait_reading(w, has_error, &d, "the probe's error");
    assert_int_equal(d.error, -EIO);
    assert_true(d.known);                /* the last good figure is kept */
    assert_int_equal(d.free_bytes, 4096);
    disk_watch_stop(w);
}

static void test_statvfs_probe(void **state)
{
    (void)state;
    struct disk_watch *w;
    struct disk_watch_config cfg = {.dir = "/", .period_ms = 1000};
    assert_int_equal(disk_watch_start(&w, &cfg), 0);
    struct disk_reading d;
    wait_reading(w, known_fresh, &d, "the root folder's free space");
    assert_int_equal(d.error, 0);
    disk_watch_stop(w);
    disk_watch_stop(NULL);
    disk_watch_get(NULL, &d);
    assert_true(d.stale);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hung_probe_never_blocks_readers),
        cmocka_unit_test(test_failing_probe_is_reported),
        cmocka_unit_test(test_statvfs_probe),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
