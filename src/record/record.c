/*
 * record: handles, their registry and their worker threads (include/pirec/record.h).
 *
 * Handles are numbers, not pointers: rec_hdl_t carries an id that is never reused, and
 * every call looks it up in a registry under a mutex. A stale or made-up handle therefore
 * gets -EINVAL (and a log line) instead of touching freed memory. A lookup takes a
 * reference; the struct is freed when it is unregistered and the last reference is gone.
 *
 * Locks, outermost first:
 *   op_lock   per handle: serialises start / stop / unregister (held across the join)
 *   lock      per handle: state, settings, counters snapshot; the condition `cond`
 *             signals state changes (record_wait) and wakes an idle worker
 *   reg_lock  the registry list and reference counts (never held while taking another)
 * Callbacks are always called with no lock held.
 *
 * One worker thread per running handle: read a chunk from the source, write it to the
 * sink, repeat. A finite source that ends is drained and then FINISHED. record_stop()
 * asks the worker to quit (it reads what is left in a ring, then drains the sink), waits
 * until RECORD_OPT_STOP_TIMEOUT_MS, then aborts the sink and counts what was left as lost.
 * The worker closes both ends itself before it reports the end, so that when record_wait()
 * returns, a file sink is complete and synced.
 */
#include <pirec/record.h>

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

#include "common/log.h"
#include "record/addr_registry.h"
#include "record/endpoint.h"
#include "record/url.h"

#define DEFAULT_CHUNK 4096
#define MAX_CHUNK (16 * 1024 * 1024)
#define IDLE_WAIT_MS 5    /* ring source without data_ready: sleep on the condition this long */
#define STUCK_GRACE_MS 500 /* after the stop timeout and the abort: how long the worker may
                              still take before stop leaves it behind (a data_ready that
                              never returns) */

struct rec {
    uint64_t id;
    struct rec *next;       /* registry list; reg_lock */
    int refs;               /* reg_lock */
    atomic_int removed;     /* unregistered: lookups fail, start refuses */

    pthread_mutex_t op_lock;
    pthread_mutex_t lock;
    pthread_cond_t cond;

    struct rec_url from, to;

    /* settings; lock */
    data_ready_func ready_cb;
    void *ready_arg;
    data_release_func release_cb;
    void *release_arg;
    record_finish_func finish_cb;
    void *finish_arg;
    int chunk;
    int64_t buffer_bytes, stop_timeout_ms, reconnect_max_ms, give_up_ms;
    char ca_file[4097];
    int has_pin;
    unsigned char pin[32];

    /* run state; lock unless noted */
    record_state_t state;
    int error;
    int thread_live;        /* a thread was created and not yet joined; op_lock */
    pthread_t thread;
    int worker_done;
    int worker_alive;       /* the worker thread has not returned (also when left behind) */
    int in_ready;           /* the worker is inside data_ready() */
    int ends_taken;         /* stop closed the ends itself: the worker left behind must not */
    int ends_closed;        /* the worker began closing the ends: abort must not touch them */
    atomic_int quit;        /* stop reading new data, drain */
    atomic_int abort;       /* stop waiting for the sink */
    struct rec_ep src, dst;
    uint8_t *buf;

    /* counters of the current (or last) run; written by the worker */
    _Atomic uint64_t read_bytes, written_bytes, lost_local;
    struct ws_stream_stats ws_last;   /* lock: final ws stats, kept after the stream closed */
    int have_ws_last;
};

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static struct rec *reg_head;
static uint64_t reg_next_id = 1;

/* Ids are scaled so a handle looks like an aligned pointer and is never NULL. */
static rec_hdl_t id_to_hdl(uint64_t id) { return (rec_hdl_t)(uintptr_t)(id * 16); }

static struct rec *rec_get(rec_hdl_t hdl, const char *fn)
{
    uintptr_t v = (uintptr_t)hdl;
    struct rec *r = NULL;
    if (v && v % 16 == 0) {
        pthread_mutex_lock(&reg_lock);
        for (struct rec *p = reg_head; p; p = p->next)
            if (p->id == v / 16) {
                r = p;
                r->refs++;
                break;
            }
        pthread_mutex_unlock(&reg_lock);
    }
    if (!r)
        log_err("record", "%s: invalid or unregistered handle %p", fn, (void *)hdl);
    return r;
}

static void rec_free(struct rec *r)
{
    pthread_mutex_destroy(&r->op_lock);
    pthread_mutex_destroy(&r->lock);
    pthread_cond_destroy(&r->cond);
    free(r->buf);
    free(r);
}

static void rec_put(struct rec *r)
{
    pthread_mutex_lock(&reg_lock);
    int last = --r->refs == 0;
    pthread_mutex_unlock(&reg_lock);
    if (last)
        rec_free(r);
}

static const struct rec_ep_ops *ops_for(enum rec_url_kind kind)
{
    switch (kind) {
    case REC_URL_RING: return &rec_ep_ring_ops;
    case REC_URL_MEM: return &rec_ep_mem_ops;
    case REC_URL_FILE: return &rec_ep_file_ops;
    case REC_URL_WS: return &rec_ep_ws_ops;
    }
    return NULL;
}

int record_register_memory(const void *addr, size_t size)
{
    int rc = rec_addr_add(REC_ADDR_MEM, addr, size);
    if (rc)
        log_err("record", "record_register_memory(%p, %zu): %s", addr, size,
                rc == -EINVAL ? "the address is NULL or the size 0" : strerror(-rc));
    return rc;
}

int record_unregister_memory(const void *addr)
{
    int rc = rec_addr_remove(REC_ADDR_MEM, addr);
    if (rc)
        log_err("record", "record_unregister_memory(%p): not a registered block", addr);
    return rc;
}

/* ringbuffer:// and mem:// name memory by number: only what this process registered is
 * accepted (a ring made by ringbuffer_create, a block given to record_register_memory), and
 * the number is replaced by the full address (it may have been the low 32 bits only). */
static int resolve_url(struct rec_url *u)
{
    uintptr_t at;
    int rc = 0;
    if (u->kind == REC_URL_RING)
        rc = rec_addr_resolve_ring(u->addr, &at);
    else if (u->kind == REC_URL_MEM)
        rc = rec_addr_resolve_mem(u->addr, u->size, &at);
    else
        return 0;
    if (!rc)
        u->addr = at;
    return rc;
}

rec_hdl_t record_register(const char *from, const char *to)
{
    struct rec *r = calloc(1, sizeof *r);
    if (!r) {
        log_err("record", "record_register: out of memory");
        return NULL;
    }
    if (rec_url_parse(from, REC_URL_SOURCE, &r->from) || rec_url_parse(to, REC_URL_SINK, &r->to) ||
        resolve_url(&r->from) || resolve_url(&r->to)) {
        free(r);
        return NULL;
    }
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&r->cond, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&r->op_lock, NULL);
    pthread_mutex_init(&r->lock, NULL);
    r->chunk = DEFAULT_CHUNK;
    r->buffer_bytes = 8 * 1024 * 1024;
    r->stop_timeout_ms = 5000;
    r->reconnect_max_ms = 5000;
    r->give_up_ms = 0;
    r->state = RECORD_IDLE;
    r->refs = 1; /* the registry's */
    pthread_mutex_lock(&reg_lock);
    r->id = reg_next_id++;
    r->next = reg_head;
    reg_head = r;
    pthread_mutex_unlock(&reg_lock);
    log_debug("record", "registered %s -> %s as handle %" PRIu64,
              rec_url_kind_name(r->from.kind), rec_url_kind_name(r->to.kind), r->id);
    return id_to_hdl(r->id);
}

void record_set_data_ready_cb(rec_hdl_t hdl, data_ready_func cb, void *arg)
{
    struct rec *r = rec_get(hdl, __func__);
    if (!r)
        return;
    pthread_mutex_lock(&r->lock);
    r->ready_cb = cb;
    r->ready_arg = arg;
    pthread_mutex_unlock(&r->lock);
    rec_put(r);
}

void record_set_data_release_cb(rec_hdl_t hdl, data_release_func cb, void *arg)
{
    struct rec *r = rec_get(hdl, __func__);
    if (!r)
        return;
    pthread_mutex_lock(&r->lock);
    r->release_cb = cb;
    r->release_arg = arg;
    pthread_mutex_unlock(&r->lock);
    rec_put(r);
}

void record_set_finish_cb(rec_hdl_t hdl, record_finish_func cb, void *arg)
{
    struct rec *r = rec_get(hdl, __func__);
    if (!r)
        return;
    pthread_mutex_lock(&r->lock);
    r->finish_cb = cb;
    r->finish_arg = arg;
    pthread_mutex_unlock(&r->lock);
    rec_put(r);
}

void record_set_chunk_size(rec_hdl_t hdl, int chunk_size)
{
    struct rec *r = rec_get(hdl, __func__);
    if (!r)
        return;
    if (chunk_size < 1 || chunk_size > MAX_CHUNK)
        log_err("record", "chunk size %d ignored: must be 1 .. %d bytes", chunk_size, MAX_CHUNK);
    else {
        pthread_mutex_lock(&r->lock);
        r->chunk = chunk_size; /* takes effect at the next start */
        pthread_mutex_unlock(&r->lock);
    }
    rec_put(r);
}

int record_set_option(rec_hdl_t hdl, record_option_t opt, int64_t value)
{
    struct rec *r = rec_get(hdl, __func__);
    if (!r)
        return -EINVAL;
    int64_t lo, hi;
    int64_t *field;
    const char *name;
    switch (opt) {
    case RECORD_OPT_BUFFER_BYTES:
        field = &r->buffer_bytes, lo = 4096, hi = (int64_t)1 << 32, name = "buffer bytes"; break;
    case RECORD_OPT_STOP_TIMEOUT_MS:
        field = &r->stop_timeout_ms, lo = 0, hi = 3600000, name = "stop timeout (ms)"; break;
    case RECORD_OPT_RECONNECT_MAX_MS:
        field = &r->reconnect_max_ms, lo = 10, hi = 600000, name = "reconnect max (ms)"; break;
    case RECORD_OPT_GIVE_UP_MS:
        field = &r->give_up_ms, lo = 0, hi = 86400000, name = "give-up (ms)"; break;
    default:
        log_err("record", "record_set_option: unknown option %d", (int)opt);
        rec_put(r);
        return -EINVAL;
    }
    int rc = 0;
    if (value < lo || value > hi) {
        log_err("record", "%s %" PRId64 " is out of range %" PRId64 " .. %" PRId64,
                name, value, lo, hi);
        rc = -EINVAL;
    } else {
        pthread_mutex_lock(&r->lock);
        *field = value; /* read at the next start */
        pthread_mutex_unlock(&r->lock);
    }
    rec_put(r);
    return rc;
}

/* "sha256:" (optional) and 64 hex digits. */
static int parse_pin(const char *s, unsigned char out[32])
{
    if (!strncasecmp(s, "sha256:", 7))
        s += 7;
    if (strlen(s) != 64)
        return -EINVAL;
    for (int i = 0; i < 32; i++) {
        unsigned v = 0;
        for (int k = 0; k < 2; k++) {
            char c = s[2 * i + k];
            unsigned d = c >= '0' && c <= '9' ? (unsigned)(c - '0')
                       : c >= 'a' && c <= 'f' ? (unsigned)(c - 'a' + 10)
                       : c >= 'A' && c <= 'F' ? (unsigned)(c - 'A' + 10) : 16u;
            if (d > 15)
                return -EINVAL;
            v = v << 4 | d;
        }
        out[i] = (unsigned char)v;
    }
    return 0;
}

int record_set_tls(rec_hdl_t hdl, const char *ca_file, const char *pin)
{
    struct rec *r = rec_get(hdl, __func__);
    if (!r)
        return -EINVAL;
    unsigned char p[32];
    int rc = 0;
    if (ca_file && strlen(ca_file) >= sizeof r->ca_file) {
        log_err("record", "record_set_tls: the CA file path is longer than %zu bytes",
                sizeof r->ca_file - 1);
        rc = -ENAMETOOLONG;
    } else if (pin && parse_pin(pin, p)) {
        log_err("record", "record_set_tls: the pin must be 64 hex digits (the SHA-256 of the "
                "server certificate's SPKI or of the certificate, DER), optionally after "
                "\"sha256:\"");
        rc = -EINVAL;
    } else {
        pthread_mutex_lock(&r->lock);
        snprintf(r->ca_file, sizeof r->ca_file, "%s", ca_file ? ca_file : "");
        r->has_pin = pin != NULL;
        if (pin)
            memcpy(r->pin, p, 32);
        pthread_mutex_unlock(&r->lock);
    }
    rec_put(r);
    return rc;
}

void record_set_log_cb(record_log_func cb, void *arg)
{
    plog_set_sink(cb, arg);
}

/* ---- counters ------------------------------------------------------------------ */

/* Caller holds r->lock. */
static void stats_locked(struct rec *r, record_stats_t *s)
{
    memset(s, 0, sizeof *s);
    s->state = r->state;
    s->error = r->error;
    s->read_bytes = atomic_load(&r->read_bytes);
    uint64_t lost_local = atomic_load(&r->lost_local);
    int running_ws = r->to.kind == REC_URL_WS && r->state == RECORD_RUNNING && !r->ends_closed;
    if (r->to.kind == REC_URL_WS && (running_ws || r->have_ws_last)) {
        struct ws_stream_stats st;
        if (running_ws)
            r->dst.ops->stats(&r->dst, &st);
        else
            st = r->ws_last;
        s->sent_bytes = st.sent;
        s->acked_bytes = st.acked;
        s->pending_bytes = st.pending;
        s->lost_bytes = st.lost + lost_local;
        s->reconnects = st.reconnects;
        s->connected = st.connected;
    } else {
        uint64_t w = atomic_load(&r->written_bytes);
        s->sent_bytes = s->acked_bytes = w;
        uint64_t done = w + lost_local;
        s->pending_bytes = s->read_bytes > done ? s->read_bytes - done : 0;
        s->lost_bytes = lost_local;
        s->connected = r->to.kind == REC_URL_WS ? 0 : 1;
    }
}

static int get_stats(rec_hdl_t hdl, record_stats_t *stats, const char *fn)
{
    if (!stats)
        return -EINVAL;
    struct rec *r = rec_get(hdl, fn);
    if (!r)
        return -EINVAL;
    pthread_mutex_lock(&r->lock);
    stats_locked(r, stats);
    pthread_mutex_unlock(&r->lock);
    rec_put(r);
    return 0;
}

int record_get_stats(rec_hdl_t hdl, record_stats_t *stats)
{
    return get_stats(hdl, stats, __func__);
}

static int clamp_int(uint64_t v) { return v > INT_MAX ? INT_MAX : (int)v; }

/* The original's file callers poll read_bytes as progress and stop when it reaches the
 * file's size. With a read-ahead buffer, read_bytes of a finite source would run ahead of
 * delivery by up to RECORD_OPT_BUFFER_BYTES, and the stop would cut the rest. So here, for
 * a finite source that is running, read_bytes is what was read AND whose fate is known
 * (delivered or counted lost) plus at most the one chunk being handed over. The stop that
 * follows drains that last chunk. record_get_stats() has the true counts. */
int record_get_count(rec_hdl_t hdl, int *read_bytes, int *sent_bytes)
{
    struct rec *r = rec_get(hdl, __func__);
    if (!r)
        return -EINVAL;
    record_stats_t s;
    pthread_mutex_lock(&r->lock);
    stats_locked(r, &s);
    uint64_t progress = s.read_bytes;
    if (s.state == RECORD_RUNNING && r->src.finite) {
        uint64_t settled = s.acked_bytes + s.lost_bytes + (uint64_t)r->chunk;
        if (progress > settled)
            progress = settled;
    }
    pthread_mutex_unlock(&r->lock);
    rec_put(r);
    if (read_bytes)
        *read_bytes = clamp_int(progress);
    if (sent_bytes)
        *sent_bytes = clamp_int(s.sent_bytes);
    return 0;
}

/* ---- the worker ------------------------------------------------------------------ */

/* Like the original: the quit flag is checked right before data_ready(), and the worker
 * sleeps 1 ms after it returns. Callers whose data_ready() consumes an event that their
 * producer sets would otherwise be called again after stop, with the event already taken. */
/* Returns 1 when record_stop() took the ends over while we were in data_ready(): the
 * worker must then touch nothing but its own exit. */
static int wait_for_data(struct rec *r, data_ready_func ready, void *arg)
{
    if (ready) {
        pthread_mutex_lock(&r->lock);
        int q = atomic_load(&r->quit);
        if (!q) {
            r->in_ready = 1;
            pthread_cond_broadcast(&r->cond);   /* record_stop() may be waiting for this */
        }
        pthread_mutex_unlock(&r->lock);
        if (q)
            return 0;
        ready(arg);
        pthread_mutex_lock(&r->lock);
        r->in_ready = 0;
        int taken = r->ends_taken;
        pthread_mutex_unlock(&r->lock);
        if (taken)
            return 1;
        struct timespec ms = {0, 1000000L};
        nanosleep(&ms, NULL);
        return 0;
    }
    /* No callback: sleep briefly on the condition; record_stop() signals it. */
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_nsec += IDLE_WAIT_MS * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&r->lock);
    if (!atomic_load(&r->quit))
        pthread_cond_timedwait(&r->cond, &r->lock, &ts);
    pthread_mutex_unlock(&r->lock);
    return 0;
}

static void *worker(void *arg)
{
    struct rec *r = arg;
    pthread_mutex_lock(&r->lock);
    data_ready_func ready = r->ready_cb;
    void *ready_arg = r->ready_arg;
    size_t chunk = (size_t)r->chunk;
    pthread_mutex_unlock(&r->lock);

    int err = 0, ended = 0;
    while (!atomic_load(&r->abort)) {
        int quitting = atomic_load(&r->quit);
        if (quitting && r->src.finite)
            break;
        ssize_t n = r->src.ops->read(&r->src, r->buf, chunk);
        if (n < 0) {
            err = (int)n;
            break;
        }
        if (n == 0) {
            if (r->src.eof) {
                ended = 1;
                break;
            }
            if (quitting) /* the ring is empty: everything the producer wrote was taken */
                break;
            if (wait_for_data(r, ready, ready_arg))
                break;   /* stop took over; ends_taken is seen below */
            continue;
        }
        atomic_fetch_add(&r->read_bytes, (uint64_t)n);
        size_t done = 0;
        int rc = r->dst.ops->write(&r->dst, r->buf, (size_t)n, &done);
        if (r->to.kind != REC_URL_WS)
            atomic_fetch_add(&r->written_bytes, (uint64_t)done);
        if (rc < 0) {
            atomic_fetch_add(&r->lost_local, (uint64_t)n - done);
            if (rc != -ECANCELED)
                err = rc;
            break;
        }
    }
    pthread_mutex_lock(&r->lock);
    int taken = r->ends_taken;
    pthread_mutex_unlock(&r->lock);
    if (!err && !taken && r->dst.ops->drain && !atomic_load(&r->abort)) {
        int rc = r->dst.ops->drain(&r->dst);
        if (rc < 0 && rc != -ECANCELED)
            err = rc;
    }

    /* Close both ends before anyone is told the run is over. */
    pthread_mutex_lock(&r->lock);
    if (r->ends_taken) {
        /* record_stop() gave up on us (we were stuck in data_ready) and closed the ends */
        r->worker_alive = 0;
        pthread_cond_broadcast(&r->cond);
        pthread_mutex_unlock(&r->lock);
        log_debug("record", "handle %" PRIu64 ": data_ready() returned after the handle was "
                 "stopped; the worker ends now", r->id);
        rec_put(r);
        return NULL;
    }
    r->ends_closed = 1;
    if (r->dst.ops->stats) {
        r->dst.ops->stats(&r->dst, &r->ws_last);
        /* ws_stream_close() drops what is still pending: that is lost now. */
        r->ws_last.lost += r->ws_last.pending;
        r->ws_last.pending = 0;
        r->have_ws_last = 1;
    }
    pthread_mutex_unlock(&r->lock);
    r->src.ops->close(&r->src);
    int crc = r->dst.ops->close(&r->dst);
    if (crc < 0 && !err)
        err = crc;

    pthread_mutex_lock(&r->lock);
    record_stats_t s;
    stats_locked(r, &s);
    record_state_t final;
    if (err)
        final = RECORD_FAILED;
    else if (ended && s.lost_bytes == 0)
        final = RECORD_FINISHED;
    else if (atomic_load(&r->quit))
        final = RECORD_STOPPED;
    else {
        final = RECORD_FAILED;
        err = -EIO;
    }
    r->error = err;
    s.state = final;
    s.error = err;
    record_finish_func fin = r->finish_cb;
    void *fin_arg = r->finish_arg;
    pthread_mutex_unlock(&r->lock);

    if (final == RECORD_FAILED)
        log_err("record", "handle %" PRIu64 " failed: %s (%" PRIu64 " bytes read, %" PRIu64
                " delivered, %" PRIu64 " lost)", r->id, strerror(-err), s.read_bytes,
                s.acked_bytes, s.lost_bytes);
    else
        log_debug("record", "handle %" PRIu64 " %s: %" PRIu64 " bytes read, %" PRIu64
                  " delivered, %" PRIu64 " lost", r->id,
                  final == RECORD_FINISHED ? "finished" : "stopped", s.read_bytes,
                  s.acked_bytes, s.lost_bytes);
    if (fin && final != RECORD_STOPPED)
        fin(id_to_hdl(r->id), &s, fin_arg);

    pthread_mutex_lock(&r->lock);
    r->state = final;
    r->worker_done = 1;
    r->worker_alive = 0;
    pthread_cond_broadcast(&r->cond);
    pthread_mutex_unlock(&r->lock);
    rec_put(r);   /* the worker's reference: the last thing it touches */
    return NULL;
}

/* ---- start / stop ------------------------------------------------------------------ */

static void ep_init(struct rec_ep *ep, const struct rec_url *url, int is_source, struct rec *r)
{
    memset(ep, 0, sizeof *ep);
    ep->ops = ops_for(url->kind);
    ep->url = url;
    ep->is_source = is_source;
    ep->abort = &r->abort;
    ep->fd = -1;
}

/* A file sink opened with O_TRUNC on the source's own file would erase it first. */
static int same_file(struct rec *r)
{
    if (r->from.kind != REC_URL_FILE || r->to.kind != REC_URL_FILE)
        return 0;
    struct stat a, b;
    if (fstat(r->src.fd, &a) || stat(r->to.path, &b))
        return 0;
    if (a.st_dev != b.st_dev || a.st_ino != b.st_ino)
        return 0;
    log_err("record", "source and sink are the same file \"%s\"", r->to.path);
    return -EINVAL;
}

/* op_lock held. */
static void reap(struct rec *r)
{
    if (r->thread_live) {
        pthread_join(r->thread, NULL);
        r->thread_live = 0;
    }
}

int record_start(rec_hdl_t hdl)
{
    struct rec *r = rec_get(hdl, __func__);
    if (!r)
        return -EINVAL;
    pthread_mutex_lock(&r->op_lock);
    int rc = 0;
    if (atomic_load(&r->removed)) {
        rc = -EINVAL;
        goto out;
    }
    pthread_mutex_lock(&r->lock);
    int running = r->thread_live && !r->worker_done;
    int left_behind = !r->thread_live && r->worker_alive;
    size_t chunk = (size_t)r->chunk;
    pthread_mutex_unlock(&r->lock);
    if (running) /* a second start is harmless */
        goto out;
    if (left_behind) {
        log_err("record", "record_start: handle %" PRIu64 " is still inside its data_ready() "
                "callback from the last run; make data_ready return (or set a release "
                "callback) before starting again", r->id);
        rc = -EBUSY;
        goto out;
    }
    reap(r);

    uint8_t *nb = realloc(r->buf, chunk);
    if (!nb) {
        rc = -ENOMEM;
        goto out;
    }
    r->buf = nb;

    pthread_mutex_lock(&r->lock);
    ep_init(&r->src, &r->from, 1, r);
    ep_init(&r->dst, &r->to, 0, r);
    r->dst.wsopt.buffer_bytes = (uint64_t)r->buffer_bytes;
    r->dst.wsopt.reconnect_max_ms = (int)r->reconnect_max_ms;
    memcpy(r->dst.wsopt.ca_file, r->ca_file, sizeof r->ca_file);
    r->dst.wsopt.has_pin = r->has_pin;
    memcpy(r->dst.wsopt.pin, r->pin, sizeof r->pin);
    r->dst.give_up_ms = r->give_up_ms;
    atomic_store(&r->quit, 0);
    atomic_store(&r->abort, 0);
    atomic_store(&r->read_bytes, 0);
    atomic_store(&r->written_bytes, 0);
    atomic_store(&r->lost_local, 0);
    memset(&r->ws_last, 0, sizeof r->ws_last);
    r->have_ws_last = 0;
    r->error = 0;
    r->worker_done = 0;
    r->in_ready = 0;
    r->ends_taken = 0;
    r->ends_closed = 1; /* until both are open */
    pthread_mutex_unlock(&r->lock);

    /* the ring or block may have been destroyed / unregistered since record_register */
    rc = resolve_url(&r->from);
    if (!rc)
        rc = resolve_url(&r->to);
    if (rc)
        goto failed;
    rc = r->src.ops->open(&r->src);
    if (rc)
        goto failed;
    /* Real-time sources must never block on the sink; finite ones must never lose. */
    r->dst.write_wait_ms = r->src.finite ? -1 : 0;
    if (!r->src.finite)
        r->dst.give_up_ms = 0;
    rc = same_file(r);
    if (!rc)
        rc = r->dst.ops->open(&r->dst);
    if (rc) {
        r->src.ops->close(&r->src);
        goto failed;
    }
    pthread_mutex_lock(&r->lock);
    r->ends_closed = 0;
    r->state = RECORD_RUNNING;
    r->worker_alive = 1;
    pthread_mutex_unlock(&r->lock);
    pthread_mutex_lock(&reg_lock);
    r->refs++;   /* the worker's, dropped by the worker itself */
    pthread_mutex_unlock(&reg_lock);
    rc = -pthread_create(&r->thread, NULL, worker, r);
    if (rc) {
        pthread_mutex_lock(&reg_lock);
        r->refs--;
        pthread_mutex_unlock(&reg_lock);
        pthread_mutex_lock(&r->lock);
        r->worker_alive = 0;
        pthread_mutex_unlock(&r->lock);
        log_err("record", "cannot start a thread: %s", strerror(-rc));
        r->src.ops->close(&r->src);
        r->dst.ops->close(&r->dst);
        goto failed;
    }
    r->thread_live = 1;
    goto out;

failed:
    pthread_mutex_lock(&r->lock);
    r->ends_closed = 1;
    r->state = RECORD_FAILED;
    r->error = rc;
    r->worker_done = 1;
    pthread_cond_broadcast(&r->cond);
    pthread_mutex_unlock(&r->lock);
out:
    pthread_mutex_unlock(&r->op_lock);
    rec_put(r);
    return rc;
}

static void add_ms(struct timespec *ts, int64_t ms)
{
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

static int before(const struct timespec *deadline)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return now.tv_sec < deadline->tv_sec ||
           (now.tv_sec == deadline->tv_sec && now.tv_nsec < deadline->tv_nsec);
}

/* lock held. Captures the sink's final counts (what is still pending is lost now) and
 * closes both ends from the stopping thread; the worker is inside data_ready() or stuck,
 * and ends_taken keeps it away from them. */
static void close_ends_here(struct rec *r)
{
    r->ends_taken = 1;
    r->ends_closed = 1;
    if (r->dst.ops->stats) {
        r->dst.ops->stats(&r->dst, &r->ws_last);
        r->ws_last.lost += r->ws_last.pending;
        r->ws_last.pending = 0;
        r->have_ws_last = 1;
    }
    pthread_mutex_unlock(&r->lock);
    r->src.ops->close(&r->src);
    int crc = r->dst.ops->close(&r->dst);
    pthread_mutex_lock(&r->lock);
    r->error = crc;
    r->state = RECORD_STOPPED;
    r->worker_done = 1;
    pthread_cond_broadcast(&r->cond);
}

/* lock held on entry and exit. The worker waits in data_ready() and the quit flag is set:
 * everything it read is already in the sink, and it will not read again. Do its last
 * steps here so that stop never depends on a callback the caller may never wake (the SDK's
 * ring callers set no release callback): take what is left in the source, wait until the
 * sink delivered it (up to the deadline), close both ends. The worker, when data_ready()
 * returns, sees ends_taken and just exits. */
static void take_over_from_worker(struct rec *r, const struct timespec *deadline)
{
    r->ends_taken = 1;
    pthread_mutex_unlock(&r->lock);
    size_t chunk = (size_t)r->chunk;
    while (before(deadline)) {
        ssize_t n = r->src.ops->read(&r->src, r->buf, chunk);
        if (n <= 0)
            break;
        atomic_fetch_add(&r->read_bytes, (uint64_t)n);
        size_t done = 0;
        int rc = r->dst.ops->write(&r->dst, r->buf, (size_t)n, &done);
        if (r->to.kind != REC_URL_WS)
            atomic_fetch_add(&r->written_bytes, (uint64_t)done);
        if (rc < 0) {
            atomic_fetch_add(&r->lost_local, (uint64_t)n - done);
            break;
        }
    }
    /* the sink's drain may block without a bound: poll its pending count instead */
    while (r->dst.ops->stats && before(deadline)) {
        struct ws_stream_stats st;
        r->dst.ops->stats(&r->dst, &st);
        if (st.pending == 0)
            break;
        struct timespec ts = {0, 5000000L};
        nanosleep(&ts, NULL);
    }
    pthread_mutex_lock(&r->lock);
    close_ends_here(r);
}

/* op_lock held. */
static int stop_locked(struct rec *r)
{
    if (!r->thread_live)
        return 0;
    if (pthread_equal(pthread_self(), r->thread)) {
        log_err("record", "record_stop/unregister called from the handle's own callback");
        return -EDEADLK;
    }
    pthread_mutex_lock(&r->lock);
    int stopped_it = !r->worker_done;
    int left = 0;
    if (stopped_it) {
        struct timespec deadline;
        clock_gettime(CLOCK_MONOTONIC, &deadline);
        add_ms(&deadline, r->stop_timeout_ms);
        data_release_func release = r->release_cb;
        void *release_arg = r->release_arg;
        atomic_store(&r->quit, 1);
        pthread_cond_broadcast(&r->cond);
        pthread_mutex_unlock(&r->lock);
        if (release) /* wakes a data_ready() that blocks until the producer writes */
            release(release_arg);
        pthread_mutex_lock(&r->lock);
        while (!r->worker_done && !r->in_ready)
            if (pthread_cond_timedwait(&r->cond, &r->lock, &deadline) == ETIMEDOUT)
                break;
        if (!r->worker_done && r->in_ready) {
            take_over_from_worker(r, &deadline);
            pthread_detach(r->thread);   /* it exits by itself when data_ready returns */
            r->thread_live = 0;
            left = 1;
        } else if (!r->worker_done) {
            log_warn("record", "handle %" PRIu64 ": stop timeout of %" PRId64
                     " ms passed, dropping what is undelivered", r->id, r->stop_timeout_ms);
            atomic_store(&r->abort, 1);
            if (!r->ends_closed && r->dst.ops->abort)
                r->dst.ops->abort(&r->dst);
            pthread_cond_broadcast(&r->cond);
            pthread_mutex_unlock(&r->lock);
            if (release)
                release(release_arg);
            pthread_mutex_lock(&r->lock);
            add_ms(&deadline, STUCK_GRACE_MS);
            while (!r->worker_done && !r->in_ready)
                if (pthread_cond_timedwait(&r->cond, &r->lock, &deadline) == ETIMEDOUT)
                    break;
            if (!r->worker_done) {
                log_err("record", "handle %" PRIu64 ": the worker did not end within %" PRId64
                        " ms of record_stop(); it is left behind", r->id,
                        r->stop_timeout_ms + STUCK_GRACE_MS);
                if (r->in_ready && !r->ends_closed)
                    close_ends_here(r);
                else
                    r->state = RECORD_STOPPED;
                pthread_detach(r->thread);
                r->thread_live = 0;
                left = 1;
            }
        }
        pthread_mutex_unlock(&r->lock);
    } else {
        pthread_mutex_unlock(&r->lock);
    }
    if (!left)
        reap(r);
    if (!stopped_it)
        return 0;
    record_stats_t s;
    pthread_mutex_lock(&r->lock);
    stats_locked(r, &s);
    pthread_mutex_unlock(&r->lock);
    if (s.lost_bytes) {
        log_warn("record", "handle %" PRIu64 " stopped: %" PRIu64 " of %" PRIu64
                 " bytes read were not delivered", r->id, s.lost_bytes, s.read_bytes);
        return -ETIMEDOUT;
    }
    return 0;
}

int record_stop(rec_hdl_t hdl)
{
    struct rec *r = rec_get(hdl, __func__);
    if (!r)
        return -EINVAL;
    pthread_mutex_lock(&r->op_lock);
    int rc = stop_locked(r);
    pthread_mutex_unlock(&r->op_lock);
    rec_put(r);
    return rc;
}

int record_wait(rec_hdl_t hdl, int timeout_ms)
{
    struct rec *r = rec_get(hdl, __func__);
    if (!r)
        return -EINVAL;
    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    if (timeout_ms > 0)
        add_ms(&deadline, timeout_ms);
    int rc = 0;
    pthread_mutex_lock(&r->lock);
    while (r->state == RECORD_RUNNING && !r->worker_done) {
        if (timeout_ms < 0)
            pthread_cond_wait(&r->cond, &r->lock);
        else if (pthread_cond_timedwait(&r->cond, &r->lock, &deadline) == ETIMEDOUT) {
            rc = r->worker_done ? 0 : -ETIMEDOUT;
            break;
        }
    }
    pthread_mutex_unlock(&r->lock);
    rec_put(r);
    return rc;
}

int record_unregister(rec_hdl_t hdl)
{
    struct rec *r = rec_get(hdl, __func__);
    if (!r)
        return -EINVAL;
    pthread_mutex_lock(&r->op_lock);
    if (r->thread_live && pthread_equal(pthread_self(), r->thread)) {
        pthread_mutex_unlock(&r->op_lock);
        rec_put(r);
        log_err("record", "record_unregister called from the handle's own callback");
        return -EDEADLK;
    }
    /* Unlink first: from here on lookups fail and record_start refuses. */
    int was_linked = 0;
    pthread_mutex_lock(&reg_lock);
    if (!atomic_load(&r->removed)) {
        atomic_store(&r->removed, 1);
        for (struct rec **pp = &reg_head; *pp; pp = &(*pp)->next)
            if (*pp == r) {
                *pp = r->next;
                was_linked = 1;
                break;
            }
    }
    pthread_mutex_unlock(&reg_lock);
    stop_locked(r);
    pthread_mutex_unlock(&r->op_lock);
    if (was_linked)
        rec_put(r); /* the registry's reference */
    rec_put(r);
    return was_linked ? 0 : -EINVAL;
}
