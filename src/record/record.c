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
 *
 * Files: this one has the registry, the settings and the counters; record_run.c the
 * worker, start, stop and wait; record_int.h what they share.
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
#include "record/record_int.h"
#include "record/url.h"

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static struct rec *reg_head;
static uint64_t reg_next_id = 1;


struct rec *rec_get(rec_hdl_t hdl, const char *fn)
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
    ws_fate_put(r->ws_fate);
    free(r->buf);
    free(r);
}

void rec_ref(struct rec *r)
{
    pthread_mutex_lock(&reg_lock);
    r->refs++;
    pthread_mutex_unlock(&reg_lock);
}

void rec_put(struct rec *r)
{
    pthread_mutex_lock(&reg_lock);
    int last = --r->refs == 0;
    pthread_mutex_unlock(&reg_lock);
    if (last)
        rec_free(r);
}

const struct rec_ep_ops *rec_ops_for(enum rec_url_kind kind)
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
int rec_resolve_url(struct rec_url *u)
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
        rec_resolve_url(&r->from) || rec_resolve_url(&r->to)) {
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
void rec_stats_locked(struct rec *r, record_stats_t *s)
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
        if (!running_ws && r->ws_fate) {   /* decided since the stop? */
            struct ws_fate_stats f;
            ws_fate_get(r->ws_fate, &f);
            st.acked += f.confirmed;
            st.lost += f.lost;
            st.pending = f.unconfirmed;
        }
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
    rec_stats_locked(r, stats);
    pthread_mutex_unlock(&r->lock);
    rec_put(r);
    return 0;
}

int record_get_stats(rec_hdl_t hdl, record_stats_t *stats)
{
    return get_stats(hdl, stats, __func__);
}

int record_get_link_failure(rec_hdl_t hdl, char *buf, size_t n)
{
    if (!buf || !n)
        return -EINVAL;
    buf[0] = 0;
    struct rec *r = rec_get(hdl, __func__);
    if (!r)
        return -EINVAL;
    pthread_mutex_lock(&r->lock);
    int running_ws = r->to.kind == REC_URL_WS && r->state == RECORD_RUNNING && !r->ends_closed;
    if (running_ws) {
        struct ws_stream_stats st;
        r->dst.ops->stats(&r->dst, &st);
        if (!st.connected)
            snprintf(buf, n, "%s", st.last_failure);
    }
    pthread_mutex_unlock(&r->lock);
    rec_put(r);
    return 0;
}

int record_get_server_size(rec_hdl_t hdl, uint64_t *size)
{
    if (!size)
        return -EINVAL;
    struct rec *r = rec_get(hdl, __func__);
    if (!r)
        return -EINVAL;
    int rc = -EAGAIN;
    pthread_mutex_lock(&r->lock);
    int running_ws = r->to.kind == REC_URL_WS && r->state == RECORD_RUNNING && !r->ends_closed;
    if (r->to.kind != REC_URL_WS) {
        rc = -ENOTSUP;
    } else if (running_ws || r->have_ws_last) {
        struct ws_stream_stats st;
        if (running_ws)
            r->dst.ops->stats(&r->dst, &st);
        else
            st = r->ws_last;
        if (st.have_server_size) {
            *size = st.server_size;
            rc = 0;
        } else if (st.connected && !st.resumable) {
            rc = -ENOTSUP;   /* a legacy server cannot say */
        }
    }
    pthread_mutex_unlock(&r->lock);
    rec_put(r);
    return rc;
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
    rec_stats_locked(r, &s);
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
    rec_stop_locked(r);
    pthread_mutex_unlock(&r->op_lock);
    if (was_linked)
        rec_put(r); /* the registry's reference */
    rec_put(r);
    return was_linked ? 0 : -EINVAL;
}

