/* sse: SSE streams over the event hub with suspend/resume. See sse.h. */
#include "server/sse.h"

#include "common/log.h"
#include "common/timeutil.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Big enough for the largest event the hub stores (a status with 16 devices is ~8 KiB). */
#define SSE_BUF (64 * 1024)

struct sse_stream {
    struct sse_server *srv;
    struct MHD_Connection *conn;
    struct event_sub *sub;
    pthread_mutex_t lock;      /* guards suspended, woken, hb_due */
    int suspended;
    int woken;
    int hb_due;
    char *out;                 /* bytes not yet handed to MHD */
    size_t out_len, out_pos;
    struct sse_stream *prev, *next;
};

struct sse_server {
    struct event_hub *hub;
    unsigned heartbeat_ms;
    atomic_int closing;
    pthread_mutex_t lock;      /* the registry */
    pthread_cond_t changed;    /* a stream ended, or stop was asked */
    struct sse_stream *streams;
    unsigned count;
    int stop;
    pthread_t hb_thread;
    int hb_started;
};

/* Caller holds st->lock. */
static void resume_locked(struct sse_stream *st)
{
    if (st->suspended) {
        st->suspended = 0;
        MHD_resume_connection(st->conn);
    }
}

/* The hub's wake callback: runs under the hub's lock, so it only signals. */
static void stream_wake(void *arg)
{
    struct sse_stream *st = arg;
    pthread_mutex_lock(&st->lock);
    st->woken = 1;
    resume_locked(st);
    pthread_mutex_unlock(&st->lock);
}

static void *heartbeat_main(void *arg)
{
    struct sse_server *s = arg;
    pthread_mutex_lock(&s->lock);
    while (!s->stop) {
        struct timespec ts;
        deadline_after_ms(&ts, s->heartbeat_ms);
        int rc = 0;
        while (!s->stop && rc != ETIMEDOUT)
            rc = pthread_cond_timedwait(&s->changed, &s->lock, &ts);
        if (s->stop)
            break;
        for (struct sse_stream *st = s->streams; st; st = st->next) {
            pthread_mutex_lock(&st->lock);
            st->hb_due = 1;
            resume_locked(st);
            pthread_mutex_unlock(&st->lock);
        }
    }
    pthread_mutex_unlock(&s->lock);
    return NULL;
}

int sse_server_create(struct sse_server **out, struct event_hub *hub, unsigned heartbeat_ms)
{
    if (!out || !hub)
        return -EINVAL;
    struct sse_server *s = calloc(1, sizeof *s);
    if (!s)
        return -ENOMEM;
    s->hub = hub;
    s->heartbeat_ms = heartbeat_ms ? heartbeat_ms : SSE_HEARTBEAT_MS_DEFAULT;
    pthread_mutex_init(&s->lock, NULL);
    cond_init_monotonic(&s->changed);
    int rc = pthread_create(&s->hb_thread, NULL, heartbeat_main, s);
    if (rc) {
        pthread_cond_destroy(&s->changed);
        pthread_mutex_destroy(&s->lock);
        free(s);
        return -rc;
    }
    pthread_setname_np(s->hb_thread, "sse-heartbeat");
    s->hb_started = 1;
    *out = s;
    return 0;
}

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    struct sse_stream *st = cls;
    struct sse_server *s = st->srv;
    for (;;) {
        if (st->out_pos < st->out_len) {
            size_t n = st->out_len - st->out_pos;
            if (n > max)
                n = max;
            memcpy(buf, st->out + st->out_pos, n);
            st->out_pos += n;
            return (ssize_t)n;
        }
        st->out_pos = st->out_len = 0;
        pthread_mutex_lock(&st->lock);
        st->woken = 0;
        int hb = st->hb_due;
        st->hb_due = 0;
        pthread_mutex_unlock(&st->lock);

        ssize_t n = event_sub_read(st->sub, st->out, SSE_BUF);
        if (n == -EPIPE)
            return MHD_CONTENT_READER_END_OF_STREAM;   /* shut down, or fell behind the ring */
        if (n < 0) {
            log_warn("http", "event stream: %s", strerror((int)-n));
            return MHD_CONTENT_READER_END_WITH_ERROR;
        }
        if (n > 0) {
            st->out_len = (size_t)n;
            continue;
        }
        if (hb) {
            static const char beat[] = ": heartbeat\n\n";
            memcpy(st->out, beat, sizeof beat - 1);
            st->out_len = sizeof beat - 1;
            continue;
        }
        if (atomic_load(&s->closing))
            return MHD_CONTENT_READER_END_OF_STREAM;
        pthread_mutex_lock(&st->lock);
        if (st->woken || st->hb_due || atomic_load(&s->closing)) {
            pthread_mutex_unlock(&st->lock);
            continue;
        }
        st->suspended = 1;
        MHD_suspend_connection(st->conn);
        pthread_mutex_unlock(&st->lock);
        return 0;
    }
}

static void stream_free(void *cls)
{
    struct sse_stream *st = cls;
    struct sse_server *s = st->srv;
    /* After this the hub calls stream_wake no more. */
    event_sub_close(st->sub);
    pthread_mutex_lock(&s->lock);
    if (st->prev)
        st->prev->next = st->next;
    else
        s->streams = st->next;
    if (st->next)
        st->next->prev = st->prev;
    s->count--;
    pthread_cond_broadcast(&s->changed);
    pthread_mutex_unlock(&s->lock);
    pthread_mutex_destroy(&st->lock);
    free(st->out);
    free(st);
}

static int append(struct sse_stream *st, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int append(struct sse_stream *st, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(st->out + st->out_len, SSE_BUF - st->out_len, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= SSE_BUF - st->out_len)
        return -EMSGSIZE;
    st->out_len += (size_t)n;
    return 0;
}

int sse_stream_response(struct sse_server *s, struct MHD_Connection *conn,
                        uint64_t last_event_id, sse_status_func status, void *status_arg,
                        struct MHD_Response **out)
{
    if (atomic_load(&s->closing))
        return -ESHUTDOWN;
    struct sse_stream *st = calloc(1, sizeof *st);
    if (!st)
        return -ENOMEM;
    st->out = malloc(SSE_BUF);
    if (!st->out) {
        free(st);
        return -ENOMEM;
    }
    st->srv = s;
    st->conn = conn;
    pthread_mutex_init(&st->lock, NULL);

    uint64_t snapshot_id = event_hub_last_id(s->hub);
    int gap = 0;
    int rc = event_hub_subscribe(s->hub, last_event_id, stream_wake, st, &st->sub, &gap);
    if (rc == 0 && gap && last_event_id) {
        /* Too old to replay: start live and send a full status instead. */
        event_sub_close(st->sub);
        st->sub = NULL;
        snapshot_id = event_hub_last_id(s->hub);
        rc = event_hub_subscribe(s->hub, 0, stream_wake, st, &st->sub, NULL);
    }
    if (rc < 0)
        goto fail;
    rc = append(st, "retry: %d\n\n", SSE_RETRY_MS);
    if (rc == 0 && (last_event_id == 0 || gap) && status) {
        json_t *js = status(status_arg);
        char *txt = js ? json_dumps(js, JSON_COMPACT) : NULL;
        json_decref(js);
        if (txt)
            rc = append(st, "id: %llu\nevent: status\ndata: %s\n\n",
                        (unsigned long long)snapshot_id, txt);
        free(txt);
    }
    if (rc < 0)
        goto fail_sub;

    struct MHD_Response *resp =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16 * 1024, stream_read, st,
                                          stream_free);
    if (!resp) {
        rc = -ENOMEM;
        goto fail_sub;
    }
    MHD_add_response_header(resp, "Content-Type", "text/event-stream");
    MHD_add_response_header(resp, "Cache-Control", "no-cache");
    MHD_add_response_header(resp, "X-Accel-Buffering", "no");
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    pthread_mutex_lock(&s->lock);
    st->next = s->streams;
    if (s->streams)
        s->streams->prev = st;
    s->streams = st;
    s->count++;
    pthread_mutex_unlock(&s->lock);
    *out = resp;
    return 0;

fail_sub:
    event_sub_close(st->sub);
fail:
    pthread_mutex_destroy(&st->lock);
    free(st->out);
    free(st);
    return rc;
}

unsigned sse_stream_count(struct sse_server *s)
{
    pthread_mutex_lock(&s->lock);
    unsigned n = s->count;
    pthread_mutex_unlock(&s->lock);
    return n;
}

static void stop_heartbeat(struct sse_server *s)
{
    pthread_mutex_lock(&s->lock);
    s->stop = 1;
    pthread_cond_broadcast(&s->changed);
    pthread_mutex_unlock(&s->lock);
    if (s->hb_started)
        pthread_join(s->hb_thread, NULL);
    s->hb_started = 0;
}

void sse_close_all(struct sse_server *s, unsigned timeout_ms)
{
    /* The heartbeat must not resume anything while MHD_stop_daemon tears down. */
    stop_heartbeat(s);
    atomic_store(&s->closing, 1);
    struct timespec ts;
    deadline_after_ms(&ts, timeout_ms);
    pthread_mutex_lock(&s->lock);
    for (struct sse_stream *st = s->streams; st; st = st->next) {
        pthread_mutex_lock(&st->lock);
        resume_locked(st);
        pthread_mutex_unlock(&st->lock);
    }
    int rc = 0;
    while (s->count && rc != ETIMEDOUT)
        rc = pthread_cond_timedwait(&s->changed, &s->lock, &ts);
    if (s->count)
        log_info("http", "%u event streams still draining at shutdown", s->count);
    pthread_mutex_unlock(&s->lock);
}

void sse_server_destroy(struct sse_server *s)
{
    if (!s)
        return;
    stop_heartbeat(s);
    pthread_cond_destroy(&s->changed);
    pthread_mutex_destroy(&s->lock);
    free(s);
}
