/*
 * callers: programs that use the record module the way the embedded SDK's callers do
 * (written here from their described behaviour; no SDK code). Built by the integration
 * tests against the library under test, with only the compat include path:
 *   cc -I include/pirec/compat callers.c libpirec-record.a ...
 *
 *   callers ring URLBASE SECONDS SAVE [u32|hex] [STOP_TIMEOUT_MS] [release]
 *       Three rings (mic, ref, proc) fed 2560 bytes every 80 ms by one producer thread
 *       (16 kHz, 16-bit mono in real time), streamed to URLBASE/<time>_<kind>_SAVE. Only
 *       data_ready is set (it waits for the producer's event, with no timeout); the
 *       producer stops on the caller's quit flag, then every handle is stopped. Addresses
 *       are formatted with %u and a uint32_t cast (u32, as the SDK does) or 0x-hex.
 *       "release" also sets a release callback that wakes data_ready (pirec's advice).
 *   callers file FROM_URL TO_URL FILE_SIZE
 *       Starts, polls record_get_count()'s read_bytes every 10 ms as progress, and calls
 *       record_stop() once it reaches FILE_SIZE, like the SDK's file callers.
 *
 * Prints one line per stream: "STREAM <name> written=<n> stop_rc=<rc> stop_ms=<ms>
 * read=<n> acked=<n> lost=<n> reconnects=<n> pending=<n>" and exits 0 when the calls worked
 * (the test judges the numbers and the files). With CALLERS_FINAL=1 in the environment the
 * ring handles are unregistered only after all three stopped, and then each prints
 * "FINAL <name> acked=<n> pending=<n> lost=<n>": what its stats say once every stream of
 * the link has ended.
 */
#include <yoc/record.h>
#include <aos/ringbuffer.h>

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NSTREAMS 3
#define PERIOD_MS 80
#define BYTES_PER_PERIOD 2560
#define RING_BYTES (BYTES_PER_PERIOD * 8)

static uint8_t pattern(int stream, uint64_t k)
{
    return (uint8_t)((k * 2654435761u) >> 13 ^ (uint64_t)stream * 77 ^ k);
}

/* The SDK's event: a flag under a lock; data_ready takes (clears) it. */
struct event {
    pthread_mutex_t m;
    pthread_cond_t c;
    int set;
};

static void event_set(struct event *e)
{
    pthread_mutex_lock(&e->m);
    e->set = 1;
    pthread_cond_signal(&e->c);
    pthread_mutex_unlock(&e->m);
}

/* data_ready: waits for the producer, with no timeout and no quit check (like the SDK). */
static void data_ready(void *arg)
{
    struct event *e = arg;
    pthread_mutex_lock(&e->m);
    while (!e->set)
        pthread_cond_wait(&e->c, &e->m);
    e->set = 0;
    pthread_mutex_unlock(&e->m);
}

static dev_ringbuf_t rings[NSTREAMS];
static struct event events[NSTREAMS];
static volatile int quit;   /* the caller's quit flag */
static int seconds;
static uint64_t written[NSTREAMS];

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void *producer(void *arg)
{
    (void)arg;
    struct timespec next;
    clock_gettime(CLOCK_MONOTONIC, &next);
    int periods = seconds * 1000 / PERIOD_MS;
    uint8_t buf[BYTES_PER_PERIOD];
    for (int p = 0; p < periods && !quit; p++) {
        for (int s = 0; s < NSTREAMS; s++) {
            for (int i = 0; i < BYTES_PER_PERIOD; i++)
                buf[i] = pattern(s, written[s] + (uint64_t)i);
            int w = ringbuffer_write(&rings[s], buf, BYTES_PER_PERIOD);
            if (w > 0)
                written[s] += (uint64_t)w;
            event_set(&events[s]);
        }
        next.tv_nsec += PERIOD_MS * 1000000L;
        if (next.tv_nsec >= 1000000000L) {
            next.tv_sec++;
            next.tv_nsec -= 1000000000L;
        }
        clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL);
    }
    return NULL;
}

static void report(const char *name, rec_hdl_t h, uint64_t wrote, int rc, int64_t ms)
{
    record_stats_t st;
    memset(&st, 0, sizeof st);
    record_get_stats(h, &st);
    printf("STREAM %s written=%llu stop_rc=%d stop_ms=%lld read=%llu acked=%llu lost=%llu "
           "reconnects=%u pending=%llu\n", name, (unsigned long long)wrote, rc, (long long)ms,
           (unsigned long long)st.read_bytes, (unsigned long long)st.acked_bytes,
           (unsigned long long)st.lost_bytes, st.reconnects,
           (unsigned long long)st.pending_bytes);
}

static void data_release(void *arg)
{
    event_set(arg);
}

static int run_rings(const char *base, const char *save, int u32, int stop_timeout_ms,
                     int release)
{
    static const char *kinds[NSTREAMS] = {"mic", "ref", "proc"};
    rec_hdl_t h[NSTREAMS];
    char *mem[NSTREAMS];
    char names[NSTREAMS][64];
    long t = (long)time(NULL);
    for (int s = 0; s < NSTREAMS; s++) {
        mem[s] = malloc(RING_BYTES);
        pthread_mutex_init(&events[s].m, NULL);
        pthread_cond_init(&events[s].c, NULL);
        if (!mem[s] || ringbuffer_create(&rings[s], mem[s], RING_BYTES))
            return 1;
        char from[64], to[512];
        if (u32)   /* what the SDK's callers do; truncates a 64-bit pointer */
            snprintf(from, sizeof from, "ringbuffer://handle=%u",
                     (uint32_t)(uintptr_t)&rings[s]);
        else
            snprintf(from, sizeof from, "ringbuffer://handle=0x%llx",
                     (unsigned long long)(uintptr_t)&rings[s]);
        snprintf(names[s], sizeof names[s], "%ld_%s_%s", t, kinds[s], save);
        snprintf(to, sizeof to, "%s/%s", base, names[s]);
        h[s] = record_register(from, to);
        if (!h[s]) {
            fprintf(stderr, "record_register(%s, %s) failed\n", from, to);
            return 1;
        }
        record_set_data_ready_cb(h[s], data_ready, &events[s]);
        if (release)
            record_set_data_release_cb(h[s], data_release, &events[s]);
        if (stop_timeout_ms >= 0)
            record_set_option(h[s], RECORD_OPT_STOP_TIMEOUT_MS, stop_timeout_ms);
        if (record_start(h[s])) {
            fprintf(stderr, "record_start failed\n");
            return 1;
        }
    }
    pthread_t th;
    pthread_create(&th, NULL, producer, NULL);
    pthread_join(th, NULL);   /* runs SECONDS of real time */
    quit = 1;
    const char *fe = getenv("CALLERS_FINAL");
    int final = fe && fe[0] == '1';
    for (int s = 0; s < NSTREAMS; s++) {
        int64_t t0 = now_ms();
        int rc = record_stop(h[s]);
        int64_t ms = now_ms() - t0;
        report(names[s], h[s], written[s], rc, ms);
        if (!final)
            record_unregister(h[s]);
    }
    for (int s = 0; s < NSTREAMS && final; s++) {
        record_stats_t st;
        memset(&st, 0, sizeof st);
        record_get_stats(h[s], &st);
        printf("FINAL %s acked=%llu pending=%llu lost=%llu\n", names[s],
               (unsigned long long)st.acked_bytes, (unsigned long long)st.pending_bytes,
               (unsigned long long)st.lost_bytes);
        record_unregister(h[s]);
    }
    /* data_ready may still wait: wake it before the rings go (the SDK frees them here) */
    for (int s = 0; s < NSTREAMS; s++)
        event_set(&events[s]);
    for (int s = 0; s < NSTREAMS; s++) {
        ringbuffer_destroy(&rings[s]);
        free(mem[s]);
    }
    fflush(stdout);
    return 0;
}

static int run_file(const char *from, const char *to, long long size)
{
    rec_hdl_t h = record_register(from, to);
    if (!h)
        return 1;
    if (record_start(h))
        return 1;
    int read_bytes = 0, sent = 0;
    int64_t t0 = now_ms();
    for (;;) {   /* the SDK's loop: progress is read_bytes, done when it reaches the size */
        record_get_count(h, &read_bytes, &sent);
        if (read_bytes >= size)
            break;
        struct timespec ts = {0, 10000000L};
        nanosleep(&ts, NULL);
        if (now_ms() - t0 > 600000)
            return 2;
    }
    int64_t s0 = now_ms();
    int rc = record_stop(h);
    report("file", h, (uint64_t)size, rc, now_ms() - s0);
    record_unregister(h);
    fflush(stdout);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 5 && !strcmp(argv[1], "ring")) {
        seconds = atoi(argv[3]);
        int u32 = argc < 6 || strcmp(argv[5], "hex");
        int st = argc >= 7 ? atoi(argv[6]) : -1;
        int release = argc >= 8 && !strcmp(argv[7], "release");
        return run_rings(argv[2], argv[4], u32, st, release);
    }
    if (argc == 5 && !strcmp(argv[1], "file"))
        return run_file(argv[2], argv[3], atoll(argv[4]));
    fprintf(stderr, "usage: callers ring URLBASE SECONDS SAVE [u32|hex] [STOP_MS] | "
                    "file FROM TO SIZE\n");
    return 2;
}
