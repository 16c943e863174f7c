/* Unit tests of the record module's API (include/pirec/record.h) with file, mem and ring
 * endpoints: byte-exact transfers, handle life cycle, bounded stop, stale handles,
 * callbacks and counters. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include <pirec/record.h>
#include <pirec/ringbuffer.h>

static char tmpdir[256];

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint8_t pattern(uint64_t k) { return (uint8_t)((k * 7919) ^ (k >> 9)); }

static uint8_t *make_data(size_t n)
{
    uint8_t *d = malloc(n);
    assert_non_null(d);
    for (size_t i = 0; i < n; i++)
        d[i] = pattern(i);
    return d;
}

static void write_file(const char *path, const uint8_t *d, size_t n)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(d, 1, n, f), n);
    fclose(f);
}

static uint8_t *read_file(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *d = malloc((size_t)len + 1);
    assert_int_equal(fread(d, 1, (size_t)len, f), (size_t)len);
    fclose(f);
    *n = (size_t)len;
    return d;
}

static void file_url(char *buf, size_t cap, const char *name)
{
    snprintf(buf, cap, "file://%s/%s", tmpdir, name);
}

/* An event like the SDK's msp_event: a flag under a mutex, so that a set before the wait
 * is not lost. */
struct event {
    pthread_mutex_t m;
    pthread_cond_t c;
    int flag;
    int ready_calls, release_calls;
    void *ready_arg_seen, *release_arg_seen;
};

static void ev_init(struct event *e)
{
    memset(e, 0, sizeof *e);
    pthread_mutex_init(&e->m, NULL);
    pthread_cond_init(&e->c, NULL);
}

static void ev_set(struct event *e)
{
    pthread_mutex_lock(&e->m);
    e->flag = 1;
    pthread_cond_broadcast(&e->c);
    pthread_mutex_unlock(&e->m);
}

static struct event *ev_for_release; /* the release callback gets a different arg */

static void on_ready(void *arg)
{
    struct event *e = arg;
    pthread_mutex_lock(&e->m);
    e->ready_calls++;
    e->ready_arg_seen = arg;
    while (!e->flag)
        pthread_cond_wait(&e->c, &e->m);
    e->flag = 0;
    pthread_mutex_unlock(&e->m);
}

static void on_release(void *arg)
{
    struct event *e = ev_for_release;
    pthread_mutex_lock(&e->m);
    e->release_calls++;
    e->release_arg_seen = arg;
    pthread_mutex_unlock(&e->m);
    ev_set(e);
}

static int setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "%s/test_record.XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    assert_non_null(mkdtemp(tmpdir));
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

/* ---- byte-exact paths --------------------------------------------------------- */

struct drain_ring {
    dev_ringbuf_t *rb;
    uint8_t *out;
    size_t want, got;
};

static void *ring_reader(void *arg)
{
    struct drain_ring *d = arg;
    int64_t deadline = now_ms() + 30000;
    while (d->got < d->want && now_ms() < deadline) {
        int n = ringbuffer_read(d->rb, d->out + d->got, (uint32_t)(d->want - d->got));
        if (n > 0)
            d->got += (size_t)n;
        else
            sched_yield();
    }
    return NULL;
}

static void test_mem_to_ring(void **state)
{
    (void)state;
    const size_t n = 1000003;
    uint8_t *src = make_data(n);
    static char rmem[4099];
    dev_ringbuf_t rb;
    ringbuffer_create(&rb, rmem, sizeof rmem);
    char from[128], to[128];
    assert_int_equal(record_register_memory(src, n), 0);
    snprintf(from, sizeof from, "mem://address=%p&size=%zu", (void *)src, n);
    snprintf(to, sizeof to, "ringbuffer://handle=%p", (void *)&rb);
    rec_hdl_t h = record_register(from, to);
    assert_non_null(h);
    record_set_chunk_size(h, 3001);
    struct drain_ring d = {&rb, calloc(1, n), n, 0};
    pthread_t t;
    pthread_create(&t, NULL, ring_reader, &d);
    assert_int_equal(record_start(h), 0);
    assert_int_equal(record_wait(h, 30000), 0);
    pthread_join(t, NULL);
    record_stats_t s;
    assert_int_equal(record_get_stats(h, &s), 0);
    assert_int_equal(s.state, RECORD_FINISHED);
    assert_int_equal(s.read_bytes, n);
    assert_int_equal(s.sent_bytes, n);
    assert_int_equal(s.acked_bytes, n);
    assert_int_equal(s.lost_bytes, 0);
    assert_int_equal(d.got, n);
    assert_memory_equal(d.out, src, n);
    assert_int_equal(rb.dropped, 0); /* the sink waited for room, never dropped */
    assert_int_equal(record_unregister(h), 0);
    free(d.out);
    record_unregister_memory(src);
    free(src);
}

struct feeder {
    dev_ringbuf_t *rb;
    const uint8_t *data;
    size_t n, pos;
    struct event *ev;
};

static void *ring_feeder(void *arg)
{
    struct feeder *f = arg;
    while (f->pos < f->n) {
        int space = ringbuffer_available_write_space(f->rb);
        if (space <= 0) {
            sched_yield();
            continue;
        }
        size_t k = f->n - f->pos;
        if (k > (size_t)space)
            k = (size_t)space;
        if (k > 1000)
            k = 1000;
        f->pos += (size_t)ringbuffer_write(f->rb, (uint8_t *)f->data + f->pos, (uint32_t)k);
        ev_set(f->ev);
    }
    return NULL;
}

static void test_ring_to_file_and_callback_args(void **state)
{
    (void)state;
    const size_t n = 500000;
    uint8_t *src = make_data(n);
    static char rmem[8192];
    dev_ringbuf_t rb;
    ringbuffer_create(&rb, rmem, sizeof rmem);
    struct event ready_ev, release_token;
    ev_init(&ready_ev);
    ev_init(&release_token);
    ev_for_release = &ready_ev;
    char from[128], to[512];
    snprintf(from, sizeof from, "ringbuffer://handle=0x%llx", (unsigned long long)(uintptr_t)&rb);
    file_url(to, sizeof to, "ring.out");
    rec_hdl_t h = record_register(from, to);
    assert_non_null(h);
    record_set_data_ready_cb(h, on_ready, &ready_ev);
    record_set_data_release_cb(h, on_release, &release_token);
    assert_int_equal(record_start(h), 0);
    /* The ring is empty: the worker must ask data_ready before anything is fed. Waiting
     * for that first call makes the callback check independent of thread scheduling. */
    for (int waited_ms = 0;; waited_ms += 5) {
        pthread_mutex_lock(&ready_ev.m);
        int calls = ready_ev.ready_calls;
        pthread_mutex_unlock(&ready_ev.m);
        if (calls > 0)
            break;
        assert_true(waited_ms < 10000);
        usleep(5000);
    }
    struct feeder f = {&rb, src, n, 0, &ready_ev};
    pthread_t t;
    pthread_create(&t, NULL, ring_feeder, &f);
    pthread_join(t, NULL);
    assert_int_equal(record_stop(h), 0); /* reads what is left in the ring, then stops */
    record_stats_t s;
    record_get_stats(h, &s);
    assert_int_equal(s.state, RECORD_STOPPED);
    assert_int_equal(s.read_bytes, n);
    assert_int_equal(s.lost_bytes, 0);
    size_t got;
    uint8_t *out = read_file(to + 7, &got);
    assert_int_equal(got, n);
    assert_memory_equal(out, src, n);
    /* separate args: data_ready saw its own, data_release saw the other */
    assert_true(ready_ev.ready_calls > 0);
    assert_ptr_equal(ready_ev.ready_arg_seen, &ready_ev);
    assert_true(ready_ev.release_calls >= 1);
    assert_ptr_equal(ready_ev.release_arg_seen, &release_token);
    assert_int_equal(record_unregister(h), 0);
    free(out);
    free(src);
}

static int finish_calls;
static void *finish_arg_seen;
static record_state_t finish_state;

static void on_finish(rec_hdl_t h, const record_stats_t *s, void *arg)
{
    (void)h;
    finish_calls++;
    finish_arg_seen = arg;
    finish_state = s->state;
}

static void test_file_to_file_restart_finish_once(void **state)
{
    (void)state;
    const size_t n = 300007;
    uint8_t *src = make_data(n);
    char from[512], to[512], in[512];
    snprintf(in, sizeof in, "%s/in.raw", tmpdir);
    write_file(in, src, n);
    file_url(from, sizeof from, "in.raw");
    file_url(to, sizeof to, "out.raw");
    /* an existing, longer file is replaced: the sink holds exactly this run's bytes */
    uint8_t *junk = make_data(n * 2);
    write_file(to + 7, junk, n * 2);
    free(junk);
    rec_hdl_t h = record_register(from, to);
    assert_non_null(h);
    record_set_chunk_size(h, 777);
    int marker;
    finish_calls = 0;
    record_set_finish_cb(h, on_finish, &marker);
    for (int run = 1; run <= 2; run++) {
        assert_int_equal(record_start(h), 0);
        assert_int_equal(record_wait(h, 30000), 0);
        assert_int_equal(finish_calls, run); /* once per run */
        assert_ptr_equal(finish_arg_seen, &marker);
        assert_int_equal(finish_state, RECORD_FINISHED);
        record_stats_t s;
        record_get_stats(h, &s);
        assert_int_equal(s.state, RECORD_FINISHED);
        assert_int_equal(s.read_bytes, n); /* counters are per run */
        assert_int_equal(s.acked_bytes, n);
        size_t got;
        uint8_t *out = read_file(to + 7, &got);
        assert_int_equal(got, n);
        assert_memory_equal(out, src, n);
        free(out);
        int rd = -1, sn = -1;
        assert_int_equal(record_get_count(h, &rd, &sn), 0);
        assert_int_equal(rd, (int)n);
        assert_int_equal(sn, (int)n);
    }
    assert_int_equal(record_stop(h), 0); /* stopping a finished handle is harmless */
    assert_int_equal(finish_calls, 2);
    assert_int_equal(record_unregister(h), 0);
    free(src);
}

static void test_empty_file(void **state)
{
    (void)state;
    char from[512], to[512], in[512];
    snprintf(in, sizeof in, "%s/empty.raw", tmpdir);
    write_file(in, (const uint8_t *)"", 0);
    file_url(from, sizeof from, "empty.raw");
    file_url(to, sizeof to, "empty.out");
    rec_hdl_t h = record_register(from, to);
    assert_int_equal(record_start(h), 0);
    assert_int_equal(record_wait(h, 10000), 0);
    record_stats_t s;
    record_get_stats(h, &s);
    assert_int_equal(s.state, RECORD_FINISHED);
    struct stat st;
    assert_int_equal(stat(to + 7, &st), 0);
    assert_int_equal(st.st_size, 0);
    record_unregister(h);
}

/* ---- life cycle ---------------------------------------------------------------- */

static void test_double_start_stop(void **state)
{
    (void)state;
    static char rmem[1024];
    dev_ringbuf_t rb;
    ringbuffer_create(&rb, rmem, sizeof rmem);
    char from[128], to[512];
    snprintf(from, sizeof from, "ringbuffer://handle=%p", (void *)&rb);
    file_url(to, sizeof to, "double.out");
    rec_hdl_t h = record_register(from, to);
    assert_int_equal(record_stop(h), 0); /* never started */
    record_stats_t s;
    record_get_stats(h, &s);
    assert_int_equal(s.state, RECORD_IDLE);
    assert_int_equal(record_start(h), 0);
    assert_int_equal(record_start(h), 0);
    uint8_t data[100];
    memset(data, 'x', sizeof data);
    assert_int_equal(ringbuffer_write(&rb, data, sizeof data), 100);
    assert_int_equal(record_stop(h), 0);
    assert_int_equal(record_stop(h), 0);
    record_get_stats(h, &s);
    assert_int_equal(s.state, RECORD_STOPPED);
    assert_int_equal(s.read_bytes, 100); /* one worker took them, exactly once */
    size_t got;
    uint8_t *out = read_file(to + 7, &got);
    assert_int_equal(got, 100);
    free(out);
    assert_int_equal(record_wait(h, 0), 0);
    assert_int_equal(record_unregister(h), 0);
}

static void test_unregister_running_and_stale(void **state)
{
    (void)state;
    static char rmem[1024];
    dev_ringbuf_t rb;
    ringbuffer_create(&rb, rmem, sizeof rmem);
    char from[128], to[512];
    snprintf(from, sizeof from, "ringbuffer://handle=%p", (void *)&rb);
    file_url(to, sizeof to, "unreg.out");
    rec_hdl_t h = record_register(from, to);
    assert_int_equal(record_start(h), 0);
    assert_int_equal(record_unregister(h), 0);
    /* stale handle: every call refuses instead of touching freed memory */
    int rd, sn;
    record_stats_t s;
    assert_int_equal(record_start(h), -EINVAL);
    assert_int_equal(record_stop(h), -EINVAL);
    assert_int_equal(record_get_count(h, &rd, &sn), -EINVAL);
    assert_int_equal(record_get_stats(h, &s), -EINVAL);
    assert_int_equal(record_wait(h, 0), -EINVAL);
    assert_int_equal(record_unregister(h), -EINVAL);
    assert_int_equal(record_set_option(h, RECORD_OPT_STOP_TIMEOUT_MS, 10), -EINVAL);
    record_set_chunk_size(h, 100);
    record_set_data_ready_cb(h, on_ready, NULL);
    /* made-up handles */
    int bogus;
    assert_int_equal(record_start((rec_hdl_t)&bogus), -EINVAL);
    assert_int_equal(record_stop(NULL), -EINVAL);
    assert_int_equal(record_unregister((rec_hdl_t)(uintptr_t)0x10), -EINVAL);
    /* a new handle does not bring the old one back to life */
    rec_hdl_t h2 = record_register(from, to);
    assert_non_null(h2);
    assert_true(h2 != h);
    assert_int_equal(record_start(h), -EINVAL);
    assert_int_equal(record_unregister(h2), 0);
}

static void test_stop_bounded_when_sink_blocks(void **state)
{
    (void)state;
    const size_t n = 1 << 20;
    uint8_t *src = make_data(n);
    static char rmem[1024];
    dev_ringbuf_t rb; /* a sink nobody reads */
    ringbuffer_create(&rb, rmem, sizeof rmem);
    char from[128], to[128];
    assert_int_equal(record_register_memory(src, n), 0);
    snprintf(from, sizeof from, "mem://address=%p&size=%zu", (void *)src, n);
    snprintf(to, sizeof to, "ringbuffer://handle=%p", (void *)&rb);
    rec_hdl_t h = record_register(from, to);
    assert_int_equal(record_set_option(h, RECORD_OPT_STOP_TIMEOUT_MS, 300), 0);
    assert_int_equal(record_start(h), 0);
    int64_t deadline = now_ms() + 10000;
    while (!ringbuffer_full(&rb) && now_ms() < deadline)
        sched_yield();
    assert_true(ringbuffer_full(&rb));
    assert_int_equal(record_wait(h, 0), -ETIMEDOUT); /* still running: blocked, not finished */
    int64_t t0 = now_ms();
    assert_int_equal(record_stop(h), -ETIMEDOUT);
    int64_t took = now_ms() - t0;
    /* bounded: the timeout plus generous slack for a loaded machine, never "forever" */
    assert_true(took >= 250);
    assert_true(took < 300 + 5000);
    record_stats_t s;
    record_get_stats(h, &s);
    assert_int_equal(s.state, RECORD_STOPPED);
    assert_true(s.lost_bytes > 0);
    assert_int_equal(s.sent_bytes, 1023);
    assert_int_equal(s.read_bytes, s.sent_bytes + s.lost_bytes);
    assert_int_equal(s.pending_bytes, 0);
    assert_int_equal(rb.dropped, 0);
    assert_int_equal(record_unregister(h), 0);
    record_unregister_memory(src);
    free(src);
}

static void test_failures(void **state)
{
    (void)state;
    char from[512], to[512];
    /* missing source: start fails, nothing is left open, the sink is not created */
    file_url(from, sizeof from, "does-not-exist.raw");
    file_url(to, sizeof to, "never.out");
    rec_hdl_t h = record_register(from, to);
    assert_non_null(h);
    assert_int_equal(record_start(h), -ENOENT);
    record_stats_t s;
    record_get_stats(h, &s);
    assert_int_equal(s.state, RECORD_FAILED);
    assert_int_equal(s.error, -ENOENT);
    assert_int_equal(access(to + 7, F_OK), -1);
    assert_int_equal(record_wait(h, 1000), 0);
    record_unregister(h);

    /* a sink that cannot be opened closes the source it opened (fd count is unchanged) */
    char in[512];
    snprintf(in, sizeof in, "%s/small.raw", tmpdir);
    write_file(in, (const uint8_t *)"hello", 5);
    file_url(from, sizeof from, "small.raw");
    snprintf(to, sizeof to, "file://%s/no/such/dir/out", tmpdir);
    h = record_register(from, to);
    int before = open("/dev/null", O_RDONLY);
    close(before);
    assert_int_equal(record_start(h), -ENOENT);
    int after = open("/dev/null", O_RDONLY);
    close(after);
    assert_int_equal(after, before);
    record_unregister(h);

    /* the same file as source and sink is refused before it is truncated */
    file_url(to, sizeof to, "small.raw");
    h = record_register(from, to);
    assert_int_equal(record_start(h), -EINVAL);
    size_t got;
    uint8_t *d = read_file(in, &got);
    assert_int_equal(got, 5);
    free(d);
    record_unregister(h);

    /* a mem sink smaller than the source fails instead of overflowing */
    uint8_t small[3] = {0, 0, 0};
    snprintf(to, sizeof to, "mem://address=%p&size=3", (void *)small);
    assert_int_equal(record_register_memory(small, sizeof small), 0);
    h = record_register(from, to);
    finish_calls = 0;
    record_set_finish_cb(h, on_finish, NULL);
    assert_int_equal(record_start(h), 0);
    assert_int_equal(record_wait(h, 10000), 0);
    record_get_stats(h, &s);
    assert_int_equal(s.state, RECORD_FAILED);
    assert_int_equal(s.error, -ENOSPC);
    assert_int_equal(finish_calls, 1);
    assert_int_equal(finish_state, RECORD_FAILED);
    assert_memory_equal(small, "hel", 3);
    record_unregister(h);

    /* bad URLs give no handle */
    assert_null(record_register("mem://address=12abc&size=4", "file:///tmp/x"));
    assert_null(record_register("file:///tmp/x", "ws://host:99999/x"));
    assert_null(record_register(NULL, "file:///tmp/x"));
}

static void test_options(void **state)
{
    (void)state;
    rec_hdl_t h = record_register("file:///dev/null", "file:///dev/null");
    assert_non_null(h);
    assert_int_equal(record_set_option(h, RECORD_OPT_BUFFER_BYTES, 1 << 20), 0);
    assert_int_equal(record_set_option(h, RECORD_OPT_BUFFER_BYTES, 0), -EINVAL);
    assert_int_equal(record_set_option(h, RECORD_OPT_STOP_TIMEOUT_MS, -1), -EINVAL);
    assert_int_equal(record_set_option(h, RECORD_OPT_RECONNECT_MAX_MS, 1000), 0);
    assert_int_equal(record_set_option(h, RECORD_OPT_GIVE_UP_MS, 0), 0);
    assert_int_equal(record_set_option(h, (record_option_t)99, 1), -EINVAL);
    record_unregister(h);
}

static int log_lines;
static void count_log(int level, const char *msg, void *arg)
{
    (void)level;
    (void)msg;
    (*(int *)arg)++;
}

static void test_log_cb(void **state)
{
    (void)state;
    log_lines = 0;
    record_set_log_cb(count_log, &log_lines);
    assert_null(record_register("nope://x", "file:///tmp/x"));
    record_set_log_cb(NULL, NULL);
    assert_int_equal(log_lines, 1);
}

static void test_count_clamps(void **state)
{
    (void)state;
    /* 2 GiB + 4 KiB of zero pages: more than an int can count */
    size_t n = ((size_t)1 << 31) + 4096;
    void *m = mmap(NULL, n, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (m == MAP_FAILED)
        skip();
    char from[128];
    snprintf(from, sizeof from, "mem://address=%p&size=%zu", m, n);
    assert_int_equal(record_register_memory(m, n), 0);
    rec_hdl_t h = record_register(from, "file:///dev/null");
    record_set_chunk_size(h, 16 * 1024 * 1024);
    assert_int_equal(record_start(h), 0);
    assert_int_equal(record_wait(h, 120000), 0);
    int rd = 0, sn = 0;
    assert_int_equal(record_get_count(h, &rd, &sn), 0);
    assert_int_equal(rd, INT_MAX);
    assert_int_equal(sn, INT_MAX);
    record_stats_t s;
    record_get_stats(h, &s);
    assert_int_equal(s.state, RECORD_FINISHED);
    assert_true(s.read_bytes == n);
    record_unregister(h);
    record_unregister_memory(m);
    munmap(m, n);
}

/* The SDK's ring callers set only data_ready, and it may never return once their producer
 * stopped: record_stop() must still come back, with everything read delivered, refuse a
 * restart while the callback is still running, and let the worker end once data_ready
 * returns. */
static sem_t stuck_sem;
static atomic_int stuck_calls;
static void stuck_ready(void *arg)
{
    (void)arg;
    atomic_fetch_add(&stuck_calls, 1);
    while (sem_wait(&stuck_sem) && errno == EINTR)
        ;
}

static void test_stop_bounded_when_data_ready_never_returns(void **state)
{
    (void)state;
    dev_ringbuf_t rb;
    static char mem[4096];
    assert_int_equal(ringbuffer_create(&rb, mem, sizeof mem), 0);
    assert_int_equal(sem_init(&stuck_sem, 0, 0), 0);
    char from[128], to[512];
    snprintf(from, sizeof from, "ringbuffer://handle=%llu", (unsigned long long)(uintptr_t)&rb);
    file_url(to, sizeof to, "stuck.raw");
    rec_hdl_t h = record_register(from, to);
    assert_non_null(h);
    record_set_data_ready_cb(h, stuck_ready, NULL);
    assert_int_equal(record_set_option(h, RECORD_OPT_STOP_TIMEOUT_MS, 200), 0);
    assert_int_equal(record_start(h), 0);
    uint8_t chunk[100] = {1};
    assert_int_equal(ringbuffer_write(&rb, chunk, sizeof chunk), (int)sizeof chunk);
    int64_t dl = now_ms() + 10000;
    while (atomic_load(&stuck_calls) == 0 && now_ms() < dl) {
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    assert_int_equal(atomic_load(&stuck_calls), 1);   /* the worker is inside data_ready */
    int64_t t0 = now_ms();
    /* stop takes over the idle worker's last steps: all 100 bytes reached the file */
    assert_int_equal(record_stop(h), 0);
    int64_t took = now_ms() - t0;
    assert_true(took < 10000);                         /* a hang check, not a benchmark */
    record_stats_t st;
    assert_int_equal(record_get_stats(h, &st), 0);
    assert_int_equal(st.state, RECORD_STOPPED);
    assert_int_equal(st.read_bytes, sizeof chunk);
    assert_int_equal(st.lost_bytes, 0);
    assert_int_equal(record_start(h), -EBUSY);         /* data_ready has not returned */
    sem_post(&stuck_sem);                              /* the producer comes back */
    dl = now_ms() + 10000;
    int rc;
    while ((rc = record_start(h)) == -EBUSY && now_ms() < dl) {
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    assert_int_equal(rc, 0);
    sem_post(&stuck_sem);   /* lets the restarted worker's data_ready return at stop */
    assert_int_equal(record_set_option(h, RECORD_OPT_STOP_TIMEOUT_MS, 5000), 0);
    rc = record_unregister(h);
    assert_int_equal(rc, 0);
    assert_int_equal(atomic_load(&stuck_calls) >= 1, 1);
    sem_destroy(&stuck_sem);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mem_to_ring),
        cmocka_unit_test(test_ring_to_file_and_callback_args),
        cmocka_unit_test(test_file_to_file_restart_finish_once),
        cmocka_unit_test(test_empty_file),
        cmocka_unit_test(test_double_start_stop),
        cmocka_unit_test(test_unregister_running_and_stale),
        cmocka_unit_test(test_stop_bounded_when_sink_blocks),
        cmocka_unit_test(test_failures),
        cmocka_unit_test(test_options),
        cmocka_unit_test(test_log_cb),
        cmocka_unit_test(test_count_clamps),
        cmocka_unit_test(test_stop_bounded_when_data_ready_never_returns),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
