/*
 * ws_link_send: what a link sends next (round robin over whole messages, control messages
 * first) and what the server's control messages mean for the streams (stat, ack). Runs on
 * the link's service thread, with the link's mutex where noted. See ws_link.c and
 * docs/protocol.md.
 */
#include "record/ws_link.h"

#include "common/log.h"
#include "common/timeutil.h"
#include "record/ws_frame.h"
#include "record/ws_link_int.h"
#include "record/wsproto.h"

#include <errno.h>
#include <jansson.h>
#include <libwebsockets.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- work selection (service thread, under mu) -------------------------------------- */

int wsl_stream_wants_control(const struct ws_link *l, const struct ws_stream *s)
{
    if (l->mode != MODE_RESUME || s->fatal)
        return 0;
    return s->sync == SYNC_NONE || (s->sync == SYNC_OK && s->loss_pending);
}

int wsl_stream_wants_data(const struct ws_link *l, const struct ws_stream *s)
{
    if (s->fatal || s->sync != SYNC_OK || s->cur >= s->head)
        return 0;
    return l->mode == MODE_LEGACY || !s->loss_pending;
}

int wsl_link_has_data(const struct ws_link *l)
{
    for (const struct ws_stream *s = l->streams; s; s = s->next)
        if (s->cur < s->head)
            return 1;
    return 0;
}

int wsl_link_has_work(const struct ws_link *l)
{
    if (l->msg.active || l->stop || l->fin == FIN_REQ)
        return 1;
    for (const struct ws_stream *s = l->streams; s; s = s->next)
        if (wsl_stream_wants_control(l, s) || wsl_stream_wants_data(l, s))
            return 1;
    return 0;
}

/* Next stream after `after` in list order, wrapping: round robin over whole messages. */
struct ws_stream *wsl_next_data_stream(struct ws_link *l)
{
    struct ws_stream *start = l->rr && l->rr->next ? l->rr->next : l->streams;
    struct ws_stream *s = start;
    if (!s)
        return NULL;
    do {
        if (wsl_stream_wants_data(l, s))
            return s;
        s = s->next ? s->next : l->streams;
    } while (s != start);
    return NULL;
}

/* ---- control messages --------------------------------------------------------------- */

/* Frames a JSON text message into l->frag (our own masking, ws_frame.h); returns the frame's
 * length, or 0 when there is nothing to send (or no mask key: the caller closes). */
size_t wsl_build_control(struct ws_link *l, json_t *j)
{
    size_t n = 0;
    if (!j)
        return 0;
    char *txt = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    if (!txt)
        return 0;
    size_t tl = strlen(txt);
    unsigned char key[4];
    if (tl <= WS_CTL_MAX && !ws_keys_next(&l->keys, key)) {
        n = ws_frame_header(l->frag, WS_OP_TEXT, 1, tl, key);
        ws_frame_mask_copy(l->frag + n, (const unsigned char *)txt, tl, key, 0);
        n += tl;
    }
    free(txt);
    return n;
}

struct ws_stream *wsl_find_stream(struct ws_link *l, const char *name)
{
    for (struct ws_stream *s = l->streams; s; s = s->next)
        if (!strcmp(s->name, name))
            return s;
    return NULL;
}

/* The stat reply: where the server's file ends decides what to resend and what is lost
 * (docs/protocol.md, "How the client maps its stream onto the file"). */
void wsl_resync(struct ws_link *l, struct ws_stream *s, uint64_t size)
{
    if (!s->have_base) {
        /* the first byte we still owe lands at the file's end; bytes a legacy server took
         * before (a server that changed kind) are not counted as lost */
        s->have_base = 1;
        s->base = (int64_t)size - (int64_t)(s->loss_pending ? s->loss_at : s->tail);
        s->acked_file = size;
    }
    uint64_t hi = s->loss_pending ? s->loss_at : s->cur;   /* most the server can have */
    int64_t stored = (int64_t)size - s->base;
    if (stored > (int64_t)hi) {
        log_warn("record", "%s://%s:%d stream %s: the server's file has %lld bytes more than "
                 "this stream sent (another writer?); continuing at its end",
                 wsl_scheme(l), l->host, l->port, s->name, (long long)(stored - (int64_t)hi));
        s->base = (int64_t)size - (int64_t)hi;
        stored = (int64_t)hi;
    }
    if ((int64_t)size < (int64_t)s->acked_file)
        log_warn("record", "%s://%s:%d stream %s: the server now stores %llu bytes but had "
                 "acknowledged %llu: it lost data",
                 wsl_scheme(l), l->host, l->port, s->name, (unsigned long long)size,
                 (unsigned long long)s->acked_file);
    if (size > s->acked_file) {
        s->acked += size - s->acked_file;
        s->acked_file = size;
    }
    if (stored < 0)
        stored = 0;   /* below our first byte: nothing of ours to account */
    if ((uint64_t)stored >= s->tail) {
        s->tail = (uint64_t)stored;
        s->cur = s->tail;
        s->loss_pending = 0;
    } else {
        uint64_t p = s->loss_pending ? s->loss_at : s->tail;
        if (p > (uint64_t)stored) {   /* sent before the outage, evicted, never stored */
            s->lost += p - (uint64_t)stored;
            s->lost_unlogged += p - (uint64_t)stored;
        }
        s->loss_pending = 1;
        s->loss_at = (uint64_t)stored;
        s->cur = s->tail;
    }
    s->sync = SYNC_OK;
    wsl_log_loss(s, "while the server was unreachable (the buffer was full)", 1);
    pthread_cond_broadcast(&l->cond);
}

void wsl_handle_control(struct ws_link *l, const char *txt, size_t len)
{
    json_error_t err;
    json_t *j = json_loadb(txt, len, 0, &err);
    const char *op = NULL, *name = NULL;
    json_int_t size = -1;
    if (!j || json_unpack_ex(j, &err, 0, "{s:s, s:s, s?:I}", "op", &op, "name", &name,
                             "size", &size) < 0) {
        log_warn("record", "%s://%s:%d: ignoring a control message the client does not "
                 "understand: %s", wsl_scheme(l), l->host, l->port, err.text);
        json_decref(j);
        return;
    }
    pthread_mutex_lock(&l->mu);
    struct ws_stream *s = wsl_find_stream(l, name);
    if (s && size >= 0) {
        if (!strcmp(op, "stat") && s->sync == SYNC_WAIT) {
            wsl_resync(l, s, (uint64_t)size);
        } else if (!strcmp(op, "ack") && s->sync == SYNC_OK) {
            uint64_t n = (uint64_t)size;
            if (n > s->acked_file) {
                s->acked += n - s->acked_file;
                s->acked_file = n;
            }
            int64_t off = (int64_t)n - s->base;
            if (off > (int64_t)s->tail) {
                s->tail = (uint64_t)off < s->cur ? (uint64_t)off : s->cur;
                pthread_cond_broadcast(&l->cond);
            } else if (wsl_stream_done(s)) {
                pthread_cond_broadcast(&l->cond);
            }
        }
    }
    pthread_mutex_unlock(&l->mu);
    json_decref(j);
}

/* Masks ring bytes [off, off + n) of s into dst; returns the mask phase after them. */
static unsigned mask_from_ring(const struct ws_stream *s, uint64_t off, unsigned char *dst,
                               size_t n, const unsigned char key[4], unsigned phase)
{
    uint64_t at = off % s->cap;
    size_t first = (size_t)(s->cap - at) < n ? (size_t)(s->cap - at) : n;
    phase = ws_frame_mask_copy(dst, s->ring + at, first, key, phase);
    return ws_frame_mask_copy(dst + first, s->ring, n - first, key, phase);
}

/* Frames the next data message of s into m->buf: "<name> NUL <data>" in two fragments (the
 * original server stores only fragmented messages; the first carries at most half of the
 * data), each with its own mask key. 0 or -EIO (no key). Under mu. */
static int build_data_message(struct ws_link *l, struct ws_stream *s, struct ws_msg *m)
{
    uint64_t dl = s->head - s->cur;
    if (dl > WS_MSG_MAX)
        dl = WS_MSG_MAX;
    size_t d1 = (size_t)dl / 2;
    if (d1 > WS_FRAG_MAX)
        d1 = WS_FRAG_MAX;
    unsigned char k1[4], k2[4];
    if (ws_keys_next(&l->keys, k1) || ws_keys_next(&l->keys, k2))
        return -EIO;
    unsigned char *p = m->buf;
    size_t f1 = s->name_len + 1 + d1;
    p += ws_frame_header(p, WS_OP_BINARY, 0, f1, k1);
    unsigned ph = ws_frame_mask_copy(p, (const unsigned char *)s->name, s->name_len + 1, k1, 0);
    p += s->name_len + 1;
    mask_from_ring(s, s->cur, p, d1, k1, ph);
    p += d1;
    p += ws_frame_header(p, WS_OP_CONT, 1, dl - d1, k2);
    mask_from_ring(s, s->cur + d1, p, (size_t)(dl - d1), k2, 0);
    p += dl - d1;
    m->active = 1;
    m->owner = s;
    m->start = s->cur;
    m->end = s->cur + dl;
    m->len = (size_t)(p - m->buf);
    s->cur = m->end;
    l->rr = s;
    return 0;
}

/* One writable callback: one whole data message (both fragments) or one control message,
 * framed here and handed to lws as raw bytes in one write: lws sends what the socket takes
 * and queues the rest ahead of anything else (its pings, the close), so frames never
 * interleave. Returns -1 to close. */
int wsl_on_writable(struct ws_link *l, struct lws *wsi)
{
    unsigned char *out = NULL;
    size_t n = 0;
    struct ws_msg *m = &l->msg;

    pthread_mutex_lock(&l->mu);
    if (l->stop) {
        pthread_mutex_unlock(&l->mu);
        lws_close_reason(wsi, LWS_CLOSE_STATUS_NORMAL, (unsigned char *)"bye", 3);
        return -1;
    }
    if (l->fin == FIN_SENT) {   /* waiting for the legacy server's answer: nothing more */
        pthread_mutex_unlock(&l->mu);
        return 0;
    }
    if (l->fin == FIN_REQ) {
        /* the server answers our close after it has read every message before it */
        l->fin = FIN_SENT;
        pthread_mutex_unlock(&l->mu);
        static const unsigned char done[] = {0x03, 0xe8, 'd', 'o', 'n', 'e'};
        unsigned char *p = l->frag + LWS_PRE;
        memcpy(p, done, sizeof done);
        if (lws_write(wsi, p, sizeof done, WSL_WRITE_CLOSE_FRAME) < 0)
            return -1;
        lws_set_timeout(wsi, PENDING_TIMEOUT_CLOSE_ACK, 5);
        return 0;
    }
    int nokey = 0;
    struct ws_stream *c = NULL;
    for (struct ws_stream *s = l->streams; s && !c; s = s->next)
        if (wsl_stream_wants_control(l, s))
            c = s;
    if (c && c->sync == SYNC_NONE) {
        n = wsl_build_control(l, json_pack("{s:s, s:s}", "op", "stat", "name", c->name));
        c->sync = SYNC_WAIT;
        out = l->frag;
        nokey = !n;
    } else if (c) {
        uint64_t bytes = c->tail - c->loss_at;
        n = wsl_build_control(l, json_pack("{s:s, s:s, s:I, s:I}", "op", "loss", "name", c->name,
                                       "at", (json_int_t)(c->base + (int64_t)c->loss_at),
                                       "bytes", (json_int_t)bytes));
        c->base -= (int64_t)bytes;
        c->loss_pending = 0;
        out = l->frag;
        nokey = !n;
    } else {
        struct ws_stream *s = wsl_next_data_stream(l);
        if (s) {
            wsl_log_loss(s, "(the server takes data slower than it comes; buffer full)", 0);
            if (build_data_message(l, s, m) == 0) {
                out = m->buf;
                n = m->len;
            } else {
                nokey = 1;
            }
        }
    }
    pthread_mutex_unlock(&l->mu);

    if (nokey) {
        log_err("record", "%s://%s:%d: no random mask key (OpenSSL RAND_bytes failed); closing",
                wsl_scheme(l), l->host, l->port);
        return -1;
    }
    if (n && lws_write(wsi, out, n, LWS_WRITE_RAW) < (int)n) {
        log_warn("record", "%s://%s:%d: write failed", wsl_scheme(l), l->host, l->port);
        return -1;   /* the message stays active: on_lost accounts for it */
    }

    pthread_mutex_lock(&l->mu);
    if (m->active) {
        struct ws_stream *o = m->owner;
        if (o) {
            if (m->end > o->sent_hi) {
                o->sent += m->end - (m->start > o->sent_hi ? m->start : o->sent_hi);
                o->sent_hi = m->end;
            }
            if (l->mode == MODE_LEGACY) {
                o->acked += m->end - m->start;
                o->conn_acked += m->end - m->start;
                if (o->tail < m->end)
                    o->tail = m->end;
            }
        }
        m->active = 0;
        m->owner = NULL;
        pthread_cond_broadcast(&l->cond);
    }
    int more = wsl_link_has_work(l);
    pthread_mutex_unlock(&l->mu);
    if (more)
        lws_callback_on_writable(wsi);
    return 0;
}
