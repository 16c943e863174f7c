/*
 * record_run: a handle's run: the worker thread, record_start(), record_stop() and
 * record_wait() (include/pirec/record.h; locking rules in record.c).
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

/* Bytes per read from the source: the caller's chunk, or BULK_READ for a file or memory
 * source. Under lock. */
static size_t read_size(const struct rec *r)
{
    size_t chunk = (size_t)r->chunk;
    int bulk = r->from.kind == REC_URL_FILE || r->from.kind == REC_URL_MEM;
    return bulk && chunk < BULK_READ ? BULK_READ : chunk;
}

/* One chunk read from the source goes to the sink; counts what it took and what it lost.
 * Returns the sink's result. */
static int pass_chunk(struct rec *r, size_t n)
{
    atomic_fetch_add(&r->read_bytes, (uint64_t)n);
    size_t done = 0;
    int rc = r->dst.ops->write(&r->dst, r->buf, n, &done);
    if (r->to.kind != REC_URL_WS)
        atomic_fetch_add(&r->written_bytes, (uint64_t)done);
    if (rc < 0)
        atomic_fetch_add(&r->lost_local, (uint64_t)(n - done));
    return rc;
}

/* lock held on entry, NOT on return. Keeps the sink's final counts (ws_stream_close()
 * drops what is still pending: that is lost now), then closes both ends. Returns the
 * sink's close result (a file sink's fsync). */
static int close_ends(struct rec *r)
{
    r->ends_closed = 1;
    if (r->dst.ops->stats) {
        r->dst.ops->stats(&r->dst, &r->ws_last);
        /* still pending: only unconfirmed bytes, whose fate the link decides (ws_link.h) */
        uint64_t unc = r->ws_last.unconfirmed < r->ws_last.pending ? r->ws_last.unconfirmed
                                                                   : r->ws_last.pending;
        r->ws_last.lost += r->ws_last.pending - unc;
        r->ws_last.pending = unc;
        r->have_ws_last = 1;
    }
    pthread_mutex_unlock(&r->lock);
    r->src.ops->close(&r->src);
    int rc = r->dst.ops->close(&r->dst);
    pthread_mutex_lock(&r->lock);
    r->ws_fate = r->dst.ws_fate;
    r->dst.ws_fate = NULL;
    if (!r->ws_fate && r->ws_last.pending) {   /* the link could not keep them: lost */
        r->ws_last.lost += r->ws_last.pending;
        r->ws_last.pending = 0;
    }
    pthread_mutex_unlock(&r->lock);
    return rc;
}

static void *worker(void *arg)
{
    struct rec *r = arg;
    pthread_mutex_lock(&r->lock);
    data_ready_func ready = r->ready_cb;
    void *ready_arg = r->ready_arg;
    size_t chunk = r->buf_len;   /* fixed at start (a new chunk size waits for the next) */
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
        int rc = pass_chunk(r, (size_t)n);
        if (rc < 0) {
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
    int crc = close_ends(r);
    if (crc < 0 && !err)
        err = crc;

    pthread_mutex_lock(&r->lock);
    record_stats_t s;
    rec_stats_locked(r, &s);
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
    ep->ops = rec_ops_for(url->kind);
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
    size_t chunk = read_size(r);
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
    r->buf_len = chunk;
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
    ws_fate_put(r->ws_fate);
    r->ws_fate = NULL;
    r->error = 0;
    r->worker_done = 0;
    r->in_ready = 0;
    r->ends_taken = 0;
    r->ends_closed = 1; /* until both are open */
    pthread_mutex_unlock(&r->lock);

    /* the ring or block may have been destroyed / unregistered since record_register */
    rc = rec_resolve_url(&r->from);
    if (!rc)
        rc = rec_resolve_url(&r->to);
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
    rec_ref(r);   /* the worker's, dropped by the worker itself */
    rc = -pthread_create(&r->thread, NULL, worker, r);
    if (rc) {
        rec_put(r);   /* the worker's reference, never the last: we hold one */
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
    int crc = close_ends(r);
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
    size_t chunk = r->buf_len;
    pthread_mutex_unlock(&r->lock);
    while (before(deadline)) {
        ssize_t n = r->src.ops->read(&r->src, r->buf, chunk);
        if (n <= 0 || pass_chunk(r, (size_t)n) < 0)
            break;
    }
    /* the sink's drain may block without a bound: a ws sink finishes within the deadline
     * (on a legacy link that is what confirms delivery, ws_stream_finish); others are
     * polled for their pending count */
    if (r->to.kind == REC_URL_WS && r->dst.ws) {
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        int64_t ms = (int64_t)(deadline->tv_sec - now.tv_sec) * 1000 +
                     (deadline->tv_nsec - now.tv_nsec) / 1000000;
        if (ms > 0)
            ws_stream_finish(r->dst.ws, ms > INT_MAX ? INT_MAX : (int)ms);
    }
    while (r->dst.ops->stats && before(deadline)) {
        struct ws_stream_stats st;
        r->dst.ops->stats(&r->dst, &st);
        if (st.pending == st.unconfirmed)   /* the rest is for the link to decide */
            break;
        struct timespec ts = {0, 5000000L};
        nanosleep(&ts, NULL);
    }
    pthread_mutex_lock(&r->lock);
    close_ends_here(r);
}

/* op_lock held. */
int rec_stop_locked(struct rec *r)
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
    rec_stats_locked(r, &s);
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
    int rc = rec_stop_locked(r);
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

