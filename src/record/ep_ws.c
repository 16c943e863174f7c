/*
 * ep_ws: the ws:// / wss:// sink, an adapter over ws_link (record/ws_link.h).
 *
 * Finite sources write with wait_ms = -1 (never lose: wait for room in the link's
 * buffer), real-time sources with 0 (ws_link evicts and counts what does not fit).
 * The give-up option is checked here: while the link is down we poll its stats in short
 * slices instead of blocking forever, and fail with -ENOTCONN once it has been down for
 * give_up_ms.
 */
#include "record/endpoint.h"

#include <errno.h>
#include <inttypes.h>
#include <string.h>
#include <time.h>

#include "common/log.h"

#define SLICE_MS 50

int64_t rec_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int ws_open(struct rec_ep *ep)
{
    const struct ws_target *t = &ep->url->ws;
    int rc = ws_stream_open(t, &ep->wsopt, &ep->ws);
    if (rc < 0) {
        if (rc == -ENOSYS)
            log_err("record", "%s://%s:%d%s: this build has no WebSocket link yet",
                    t->tls ? "wss" : "ws", t->host, t->port, t->path);
        else
            log_err("record", "%s://%s:%d%s: cannot open the stream: %s",
                    t->tls ? "wss" : "ws", t->host, t->port, t->path, strerror(-rc));
        ep->ws = NULL;
        return rc;
    }
    ep->down_since_ms = rec_now_ms();
    return 0;
}

/* -ENOTCONN when the link has been down longer than give_up_ms. */
static int check_give_up(struct rec_ep *ep, const struct ws_stream_stats *st)
{
    if (ep->give_up_ms <= 0 || st->connected) {
        ep->down_since_ms = rec_now_ms();
        return 0;
    }
    if (rec_now_ms() - ep->down_since_ms < ep->give_up_ms)
        return 0;
    log_err("record", "%s: giving up, the server has been unreachable for %" PRId64 " ms "
            "(%" PRIu64 " bytes undelivered)", ep->url->ws.name, ep->give_up_ms, st->pending);
    return -ENOTCONN;
}

static int ws_write(struct rec_ep *ep, const void *buf, size_t len, size_t *done)
{
    *done = 0;
    if (ep->give_up_ms > 0 && ep->write_wait_ms < 0) {
        /* Wait for room ourselves, in slices, so that a dead link can end the run. */
        for (;;) {
            if (atomic_load(ep->abort))
                return -ECANCELED;
            struct ws_stream_stats st = {0};
            ws_stream_get_stats(ep->ws, &st);
            int rc = check_give_up(ep, &st);
            if (rc)
                return rc;
            if (st.pending + len <= ep->wsopt.buffer_bytes)
                break;
            struct timespec ts = {0, SLICE_MS * 1000000L};
            nanosleep(&ts, NULL);
        }
    }
    int rc = ws_stream_write(ep->ws, buf, len, ep->write_wait_ms);
    if (rc == 0)
        *done = len;
    else if (rc != -ECANCELED)
        log_err("record", "%s: write failed: %s", ep->url->ws.name, strerror(-rc));
    return rc;
}

static int ws_drain(struct rec_ep *ep)
{
    for (;;) {
        if (atomic_load(ep->abort))
            return -ECANCELED;
        int rc = ws_stream_finish(ep->ws, ep->give_up_ms > 0 ? SLICE_MS * 4 : -1);
        if (rc != -ETIMEDOUT)
            return rc;
        struct ws_stream_stats st = {0};
        ws_stream_get_stats(ep->ws, &st);
        rc = check_give_up(ep, &st);
        if (rc)
            return rc;
    }
}

static void ws_abort(struct rec_ep *ep)
{
    if (ep->ws)
        ws_stream_abort(ep->ws);
}

static void ws_stats(struct rec_ep *ep, struct ws_stream_stats *st)
{
    memset(st, 0, sizeof *st);
    if (ep->ws)
        ws_stream_get_stats(ep->ws, st);
}

static int ws_close(struct rec_ep *ep)
{
    if (ep->ws)
        ws_stream_close_fate(ep->ws, &ep->ws_fate);
    ep->ws = NULL;
    return 0;
}

const struct rec_ep_ops rec_ep_ws_ops = {
    .open = ws_open,
    .write = ws_write,
    .drain = ws_drain,
    .abort = ws_abort,
    .stats = ws_stats,
    .close = ws_close,
};
