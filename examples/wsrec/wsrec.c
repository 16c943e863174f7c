/*
 * wsrec: the record module's example app from the SDK documentation, ported to pirec.
 *
 * Three streams (mic, ref, proc), each fed PIECE_SIZE bytes every 80 ms (16 kHz, 16-bit,
 * mono: real time) into its own ring by its own thread, and each streamed by the record
 * module from that ring to <url>/<unix time>_<mic|ref|proc>_<save name>.
 *
 * The code keeps the seed's shape. Only the includes and the SDK's task / event / memory /
 * log calls were replaced (pthreads, a mutex + condition variable for msp_event, malloc,
 * fprintf), plus what the seed lacked: the writer threads are joined before the stop (the
 * seed stopped the record while its writer might still write), the event exists before the
 * writer starts, errors are checked, and a summary says what each stream delivered.
 *
 * Build: cc wsrec.c $(pkg-config --cflags --libs --static pirec-record)
 * Usage: wsrec URL SAVE_NAME SECONDS [INPUT_FILE]
 *   e.g. wsrec ws://127.0.0.1:9090 take1 10 voice.pcm
 * Without INPUT_FILE it streams a generated 1 kHz tone. Exit 0 when every byte fed into
 * the three rings was delivered to the server, 1 otherwise.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <pirec/record.h>
#include <pirec/ringbuffer.h>

/* ---- stand-ins for the SDK (msp/kernel.h, msp/log.h) ------------------------------ */

#define LOGD(tag, ...) (fprintf(stderr, "%s: ", tag), fprintf(stderr, __VA_ARGS__), fputc('\n', stderr))
#define MSP_EVENT_OR 0
#define MSP_EVENT_OR_CLEAR 1
#define MSP_WAIT_FOREVER -1

/* An event group: flags under a mutex, so a set before the wait is not lost. */
typedef struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    unsigned int flags;
} msp_event_t;

static void msp_event_new(msp_event_t *e, unsigned int flags)
{
    pthread_mutex_init(&e->lock, NULL);
    pthread_cond_init(&e->cond, NULL);
    e->flags = flags;
}

static void msp_event_set(msp_event_t *e, unsigned int flags, int op)
{
    (void)op;
    pthread_mutex_lock(&e->lock);
    e->flags |= flags;
    pthread_cond_broadcast(&e->cond);
    pthread_mutex_unlock(&e->lock);
}

static void msp_event_get(msp_event_t *e, unsigned int want, int op, unsigned int *got, int timeout)
{
    (void)timeout; /* only MSP_WAIT_FOREVER is used */
    pthread_mutex_lock(&e->lock);
    while (!(e->flags & want))
        pthread_cond_wait(&e->cond, &e->lock);
    *got = e->flags;
    if (op == MSP_EVENT_OR_CLEAR)
        e->flags &= ~want;
    pthread_mutex_unlock(&e->lock);
}

static void msp_event_free(msp_event_t *e)
{
    pthread_cond_destroy(&e->cond);
    pthread_mutex_destroy(&e->lock);
}

static void msp_msleep(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) && errno == EINTR)
        ;
}

static void *msp_zalloc_check(size_t n)
{
    void *p = calloc(1, n);
    if (!p) {
        fprintf(stderr, "wsrec: out of memory\n");
        exit(1);
    }
    return p;
}
#define msp_malloc_check msp_zalloc_check
#define msp_free free

/* The seed compiled its audio in (audio/test2.wav.c); here it comes from a file. */
static uint8_t *local_audio_test2;
static size_t local_audio_test2_len;

/* ---- the seed's example ------------------------------------------------------------ */

static const char *TAG = "appwsrec";

#define PIECE_SIZE (2560 * 1)
#define RINGBUFFER_SIZE (PIECE_SIZE * 50 + 1)

typedef struct _rec_mgr {
    dev_ringbuf_t ringbuffer;
    char *rbuffer;
    int piece_size;
    size_t src_data_r_pos;
    volatile int quit;
    msp_event_t wait_evt;
    rec_hdl_t hdl;
    int over_print;
    pthread_t task;
    uint64_t fed;          /* bytes the ring took */
    const char *what;
} rec_mgr_t;

#define REC_MGR_COUT 3
rec_mgr_t *g_rec_mgr[REC_MGR_COUT];

static void *write_data_task(void *arg)
{
    rec_mgr_t *rec_mgr = (rec_mgr_t *)arg;

    while (!rec_mgr->quit) {
        if (rec_mgr->src_data_r_pos + rec_mgr->piece_size > local_audio_test2_len) {
            size_t remain_len = local_audio_test2_len - rec_mgr->src_data_r_pos;
            if (remain_len > 0) {
                rec_mgr->fed += (uint64_t)ringbuffer_write(&rec_mgr->ringbuffer, &local_audio_test2[rec_mgr->src_data_r_pos], (uint32_t)remain_len);
                rec_mgr->src_data_r_pos += remain_len;
                LOGD(TAG, "%s: last piece", rec_mgr->what);
            } else {
                if (rec_mgr->over_print == 0) {
                    LOGD(TAG, "%s: write finish [%zu]", rec_mgr->what, rec_mgr->src_data_r_pos);
                    rec_mgr->over_print = 1;
                }
            }
        } else {
            rec_mgr->fed += (uint64_t)ringbuffer_write(&rec_mgr->ringbuffer, &local_audio_test2[rec_mgr->src_data_r_pos], (uint32_t)rec_mgr->piece_size);
            rec_mgr->src_data_r_pos += rec_mgr->piece_size;
        }
        if (ringbuffer_available_read_space(&rec_mgr->ringbuffer) > 0)
            msp_event_set(&rec_mgr->wait_evt, 0x01, MSP_EVENT_OR);
        msp_msleep(80);
    }
    return NULL;
}

static void data_ready(void *arg)
{
    unsigned int flags;
    rec_mgr_t *rec_mgr = (rec_mgr_t *)arg;

    msp_event_get(&rec_mgr->wait_evt, 0x01, MSP_EVENT_OR_CLEAR, &flags, MSP_WAIT_FOREVER);
}

static void data_release(void *arg)
{
    if (arg) {
        rec_mgr_t *rec_mgr = (rec_mgr_t *)arg;
        msp_event_set(&rec_mgr->wait_evt, 0x01, MSP_EVENT_OR);
    }
}

int app_ws_rec_start(const char *url, const char *save_name)
{
    static const char *const whats[REC_MGR_COUT] = {"mic", "ref", "proc"};
    time_t tt = time(NULL); /* one time stamp, so the three names match */
    for (int i = 0; i < REC_MGR_COUT; i++) {
        rec_mgr_t *rec_mgr = msp_zalloc_check(sizeof(rec_mgr_t));

        rec_mgr->what = whats[i];
        rec_mgr->src_data_r_pos = 0;
        rec_mgr->piece_size = PIECE_SIZE;
        rec_mgr->rbuffer = msp_malloc_check(RINGBUFFER_SIZE);
        ringbuffer_create(&rec_mgr->ringbuffer, rec_mgr->rbuffer, RINGBUFFER_SIZE);
        rec_mgr->quit = 0;
        /* The event exists before the module can call data_ready() (the seed created it
         * after the writer task). */
        msp_event_new(&rec_mgr->wait_evt, 0);
        g_rec_mgr[i] = rec_mgr;
        /* The seed printed the address with "%u": on a 64-bit machine that keeps only the
         * low 32 bits of the pointer (and is undefined behaviour for a pointer argument),
         * so the module would read some other memory. Print the full width in hex. */
        char buf[64];
        snprintf(buf, sizeof(buf), "ringbuffer://handle=0x%" PRIxPTR, (uintptr_t)&rec_mgr->ringbuffer);
        char buf2[512];
        snprintf(buf2, sizeof(buf2), "%s/%lld_%s_%s", url, (long long)tt, rec_mgr->what, save_name);
        rec_hdl_t hdl = record_register(buf, buf2);
        if (!hdl) {
            fprintf(stderr, "wsrec: cannot use \"%s\" (see the message above)\n", buf2);
            return -EINVAL;
        }
        rec_mgr->hdl = hdl;
        record_set_data_ready_cb(hdl, data_ready, (void *)rec_mgr);
        record_set_data_release_cb(hdl, data_release, (void *)rec_mgr);
        record_set_chunk_size(hdl, rec_mgr->piece_size);
        int rc = record_start(hdl);
        if (rc) {
            fprintf(stderr, "wsrec: cannot start %s: %s\n", buf2, strerror(-rc));
            return rc;
        }
        if (pthread_create(&rec_mgr->task, NULL, write_data_task, rec_mgr)) {
            fprintf(stderr, "wsrec: cannot start a thread\n");
            return -EAGAIN;
        }
        LOGD(TAG, "start %s rec [%d] -> %s", rec_mgr->what, i, buf2);
    }
    return 0;
}

/* Returns the number of streams that lost something. */
int app_ws_rec_stop(void)
{
    int bad = 0;
    for (int i = 0; i < REC_MGR_COUT; i++) {
        rec_mgr_t *rec_mgr = g_rec_mgr[i];
        if (rec_mgr == NULL) {
            continue;
        }
        rec_mgr->quit = 1;
        if (rec_mgr->task)
            pthread_join(rec_mgr->task, NULL); /* nothing writes the ring after this */
        if (rec_mgr->hdl) {
            int rc = record_stop(rec_mgr->hdl); /* takes what is left, drains, bounded */
            record_stats_t st;
            record_get_stats(rec_mgr->hdl, &st);
            printf("%s: fed %" PRIu64 " dropped %" PRIu64 " read %" PRIu64 " sent %" PRIu64
                   " acked %" PRIu64 " lost %" PRIu64 " reconnects %u%s\n",
                   rec_mgr->what, rec_mgr->fed, rec_mgr->ringbuffer.dropped, st.read_bytes,
                   st.sent_bytes, st.acked_bytes, st.lost_bytes, st.reconnects,
                   rc ? " (stop timed out)" : "");
            if (rc || st.lost_bytes || rec_mgr->ringbuffer.dropped ||
                st.acked_bytes != rec_mgr->fed || st.read_bytes != rec_mgr->fed)
                bad++;
            record_unregister(rec_mgr->hdl);
            rec_mgr->hdl = NULL;
        } else {
            bad++;
        }
        msp_event_free(&rec_mgr->wait_evt);
        msp_free(rec_mgr->rbuffer);
        ringbuffer_destroy(&rec_mgr->ringbuffer);
        msp_free(rec_mgr);
        g_rec_mgr[i] = NULL;
        LOGD(TAG, "mic rec stop over.");
    }
    return bad;
}

/* ---- main ------------------------------------------------------------------------- */

static int load_input(const char *path)
{
    if (!path) {
        /* 10 s of a 1 kHz tone, 16-bit little-endian, 16 kHz */
        local_audio_test2_len = 16000 * 2 * 10;
        /* one period of 1 kHz at 16 kHz, 8000 * sin(2 pi k / 16) */
        static const int16_t period[16] = {0, 3061, 5657, 7391, 8000, 7391, 5657, 3061,
                                           0, -3061, -5657, -7391, -8000, -7391, -5657, -3061};
        local_audio_test2 = msp_malloc_check(local_audio_test2_len);
        for (size_t i = 0; i < local_audio_test2_len / 2; i++) {
            int16_t v = period[i % 16];
            local_audio_test2[2 * i] = (uint8_t)(v & 0xff);
            local_audio_test2[2 * i + 1] = (uint8_t)((uint16_t)v >> 8);
        }
        return 0;
    }
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "wsrec: cannot open input \"%s\": %s\n", path, strerror(errno));
        return -1;
    }
    size_t cap = 1 << 20, n = 0;
    uint8_t *d = msp_malloc_check(cap);
    size_t r;
    while ((r = fread(d + n, 1, cap - n, f)) > 0) {
        n += r;
        if (n == cap) {
            if (cap >= (256u << 20)) {
                fprintf(stderr, "wsrec: input \"%s\" is larger than 256 MiB\n", path);
                fclose(f);
                free(d);
                return -1;
            }
            cap *= 2;
            uint8_t *nd = realloc(d, cap);
            if (!nd) {
                fprintf(stderr, "wsrec: out of memory\n");
                exit(1);
            }
            d = nd;
        }
    }
    int err = ferror(f);
    fclose(f);
    if (err) {
        fprintf(stderr, "wsrec: reading \"%s\" failed\n", path);
        free(d);
        return -1;
    }
    local_audio_test2 = d;
    local_audio_test2_len = n;
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 4 || argc > 5 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        fprintf(argc >= 2 && argv[1][0] == '-' ? stdout : stderr,
                "usage: wsrec URL SAVE_NAME SECONDS [INPUT_FILE]\n"
                "  streams INPUT_FILE (raw 16 kHz 16-bit mono; default a 1 kHz tone) in real time\n"
                "  as three streams mic/ref/proc to URL/<unix time>_<mic|ref|proc>_<SAVE_NAME>\n"
                "  for SECONDS, e.g. wsrec ws://127.0.0.1:9090 take1 10 voice.pcm\n");
        return argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) ? 0 : 2;
    }
    char *end;
    errno = 0;
    double secs = strtod(argv[3], &end);
    if (errno || end == argv[3] || *end || !(secs > 0) || secs > 86400) {
        fprintf(stderr, "wsrec: SECONDS \"%s\" must be a number in (0, 86400]\n", argv[3]);
        return 2;
    }
    if (load_input(argc == 5 ? argv[4] : NULL))
        return 1;

    /* SIGINT/SIGTERM end the run early; every thread started below inherits the mask. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);

    int rc = app_ws_rec_start(argv[1], argv[2]);
    if (rc == 0) {
        struct timespec ts = {(time_t)secs, (long)((secs - (double)(time_t)secs) * 1e9)};
        while (sigtimedwait(&sigs, NULL, &ts) < 0 && errno == EINTR)
            ;
    }
    int bad = app_ws_rec_stop();
    free(local_audio_test2);
    if (rc)
        return 1;
    if (bad)
        fprintf(stderr, "wsrec: %d stream%s did not deliver everything\n", bad, bad == 1 ? "" : "s");
    return bad ? 1 : 0;
}
