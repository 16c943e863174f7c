/*
 * ingest dispatch: what a complete message does, on the connection's loop thread
 * (server.h): `<name> NUL <data>` is appended to the stream's file, `stat` and `loss`
 * control messages, acks, and which connection owns a stream. Every store access holds
 * the store lock; replies are queued after it is released.
 */
#include "ingest/server.h"

#include "common/log.h"
#include "ingest/forwarded.h"
#include "record/wsproto.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SLOW_WRITE_US (200 * 1000)

static void wake(struct loop *lp)
{
    uint64_t one = 1;
    if (write(lp->evfd, &one, sizeof one) < 0) {
        /* the counter is full: the loop is awake anyway */
    }
}

static void log_stream_closed(struct conn *c, struct ingest_stream *s, const char *why)
{
    log_info("ingest", "stream '%s' closed (%s, connection #%llu from %s): received %llu bytes "
             "in %llu messages, file now %llu bytes", s->shown, why, (unsigned long long)c->id,
             c->peer, (unsigned long long)s->received, (unsigned long long)s->messages,
             (unsigned long long)s->size);
}

/* Store lock held. Drops one reference; the last one forgets the stream. */
static void unref(struct ingest_store *st, struct ingest_stream *s)
{
    if (--s->refs == 0 && !s->owner)
        ingest_store_release(st, s);
}

/* Store lock held. Makes c the owner of the stream NAME, opening its file if needed.
 * 1: c was taken over meanwhile (drop the message); 0; or a negative errno. */
static int claim(struct conn *c, const char *name, size_t len, struct ingest_stream **out)
{
    struct server *srv = c->lp->srv;
    if (atomic_load(&c->taken_over))
        return 1;
    struct ingest_stream *s = c->last;
    if (!s || s->owner != c || s->name_len != len || memcmp(s->name, name, len))
        s = ingest_store_find(srv->store, name, len);
    if (!s) {
        int rc = ingest_store_get(srv->store, name, len, &s);
        if (rc < 0)
            return rc;
    }
    if (s->owner != c) {
        int held = 0;
        for (size_t i = 0; i < c->nstreams && !held; i++)
            held = c->streams[i] == s;
        if (!held) {
            if (c->nstreams == c->capstreams) {
                size_t cap = c->capstreams ? c->capstreams * 2 : 4;
                struct ingest_stream **v = realloc(c->streams, cap * sizeof *v);
                if (!v) {
                    if (!s->refs && !s->owner)
                        ingest_store_release(srv->store, s);
                    return -ENOMEM;
                }
                c->streams = v;
                c->capstreams = cap;
            }
            c->streams[c->nstreams++] = s;
            s->refs++;
        }
        struct conn *old = s->owner;
        if (!old) {
            log_info("ingest", "stream '%s' opened by connection #%llu from %s (%s), file "
                     "has %llu bytes", s->shown, (unsigned long long)c->id, c->peer,
                     c->resume ? "pirec.resume.1" : "legacy", (unsigned long long)s->size);
        } else {
            log_info("ingest", "stream '%s' taken over by connection #%llu from %s; the "
                     "older connection #%llu from %s sent %llu bytes in %llu messages",
                     s->shown, (unsigned long long)c->id, c->peer,
                     (unsigned long long)old->id, old->peer,
                     (unsigned long long)s->received, (unsigned long long)s->messages);
            /* old may live on another loop: flag it and wake its loop, which closes it
             * with 4001; it drops whatever it still sends (claim returns 1). */
            atomic_store(&old->taken_over, 1);
            atomic_store(&old->lp->takeover, 1);
            wake(old->lp);
            s->received = s->messages = 0;
        }
        s->owner = c;
        s->owner_flushes = c->resume;
        s->acked = s->size;
        s->last_ack_us = ingest_now_us();
        s->ack_due = 0;
    }
    c->last = s;
    *out = s;
    return 0;
}

/* Store lock held. Reports a failed claim; returns 0 to go on, -1 when c is closing. */
static int claim_failed(struct conn *c, const char *name, size_t len, int rc)
{
    char esc[300];
    wsproto_name_escape(name, len, esc, sizeof esc);
    if (rc == -ELOOP || rc == -EINVAL || rc == -EISDIR)
        conn_fail(c, WSPROTO_CLOSE_POLICY, "stream '%s': refusing to write: %s is a symlink, "
                  "directory or special file", esc, esc);
    else
        conn_fail(c, WSPROTO_CLOSE_SERVER_ERROR, "stream '%s': cannot open the file: %s", esc,
                  strerror(-rc));
    return -1;
}

/* Store lock held. Flushes s and, on a resume connection, returns the size to ack (0:
 * none). A failed flush closes c with 1011. */
static uint64_t ack_now(struct conn *c, struct ingest_stream *s, int64_t now)
{
    struct server *srv = c->lp->srv;
    int rc = s->failed ? s->failed : ingest_store_flush(srv->store, s);
    if (rc < 0) {
        conn_fail(c, WSPROTO_CLOSE_SERVER_ERROR, "stream '%s': writing failed: %s; the file "
                  "keeps its %llu bytes of complete messages", s->shown, strerror(-rc),
                  (unsigned long long)s->flushed);
        return 0;
    }
    s->acked = s->size;
    s->last_ack_us = now;
    return s->size;
}

/* At once after ACK_BYTES; otherwise from the tick, at most every ACK_US: on a real-time
 * stream an ack per message would cost more than the message (each is a send, and on the
 * client a wake-up and a receive). */
static int ack_wanted(const struct conn *c, const struct ingest_stream *s, int64_t now,
                      int from_tick)
{
    return c->resume && s->size > s->acked &&
           (s->size - s->acked >= ACK_BYTES || (from_tick && now - s->last_ack_us >= ACK_US));
}

static void send_ctl(struct conn *c, const char *op, const char *name, uint64_t size)
{
    char text[400];
    int n = wsproto_ctl_format(op, name, size, text, sizeof text);
    if (n > 0)
        conn_send(c, WSFRAME_TEXT, text, (size_t)n);
}

int dispatch_binary(struct conn *c, const unsigned char *p, size_t n)
{
    const char *name, *why;
    size_t nlen, dlen;
    const void *data;
    if (wsproto_split_message(p, n, &name, &nlen, &data, &dlen, &why) < 0) {
        char esc[300];
        wsproto_name_escape(name, nlen, esc, sizeof esc);
        return conn_fail(c, WSPROTO_CLOSE_POLICY, "bad stream name: %s: '%s'", why, esc);
    }
    struct server *srv = c->lp->srv;
    struct ingest_store *st = srv->store;
    struct ingest_stream *s;
    uint64_t ack = 0;
    char ackname[256];
    ingest_store_lock(st);
    int rc = claim(c, name, nlen, &s);
    if (rc != 0) {
        if (rc < 0)
            claim_failed(c, name, nlen, rc);
        ingest_store_unlock(st);
        return 0;
    }
    int head = forwarded_is_head(name, nlen);
    if (head) {
        /* the check reads the copy: its buffered messages must be in the file first */
        struct ingest_stream *main = ingest_store_find(st, name, nlen - 5);
        if (main)
            ingest_store_flush(st, main);
        if (!forwarded_on_head(name, nlen, data, dlen)) {
            ingest_store_unlock(st);
            return 0;   /* stored (and acked) only once the forwarded copy is verified */
        }
    }
    int64_t t0 = ingest_now_us();
    rc = ingest_store_append(st, s, data, dlen);
    int64_t now = ingest_now_us();
    if (now - t0 > SLOW_WRITE_US && t0 - srv->last_slow_log_us > 10000000) {
        srv->last_slow_log_us = t0;
        log_warn("ingest", "stream '%s': writing %zu bytes took %lld ms (slow or busy disk; "
                 "other connections waited)", s->shown, dlen, (long long)((now - t0) / 1000));
    }
    if (rc < 0) {
        conn_fail(c, WSPROTO_CLOSE_SERVER_ERROR, "stream '%s': writing %zu bytes failed: %s; "
                  "the file keeps its %llu bytes of complete messages", s->shown, dlen,
                  strerror(-rc), (unsigned long long)s->flushed);
        ingest_store_unlock(st);
        return 0;
    }
    if (ack_wanted(c, s, now, 0) && (ack = ack_now(c, s, now)) > 0)
        memcpy(ackname, s->name, s->name_len + 1);
    if (head) {
        ingest_store_flush(st, s);
        forwarded_stored(name, nlen);
    }
    ingest_store_unlock(st);
    if (ack)
        send_ctl(c, "ack", ackname, ack);
    return 0;
}

int dispatch_text(struct conn *c, const unsigned char *p, size_t n)
{
    if (!c->resume)
        return conn_fail(c, WSPROTO_CLOSE_UNSUPPORTED, "text message on a legacy connection "
                         "(control messages need the pirec.resume.1 subprotocol)");
    struct wsproto_ctl ctl;
    char err[300];
    if (wsproto_ctl_parse((const char *)p, n, &ctl, err, sizeof err) < 0)
        return conn_fail(c, WSPROTO_CLOSE_POLICY, "bad control message: %s", err);
    struct ingest_store *st = c->lp->srv->store;
    struct ingest_stream *s;
    ingest_store_lock(st);
    int rc = claim(c, ctl.name, ctl.name_len, &s);
    if (rc != 0) {
        if (rc < 0)
            claim_failed(c, ctl.name, ctl.name_len, rc);
        ingest_store_unlock(st);
        return 0;
    }
    if (ctl.op == WSPROTO_OP_STAT) {
        /* the answer is the file's size: everything received before is written first */
        uint64_t size = ack_now(c, s, ingest_now_us());
        int ok = c->state == C_OPEN;
        ingest_store_unlock(st);
        if (!ok)
            return 0;
        if (c->out_len - c->out_off > OUT_MAX)
            return conn_fail(c, WSPROTO_CLOSE_POLICY, "too many control messages unanswered "
                             "(%s): read the replies", strerror(ENOBUFS));
        send_ctl(c, "stat", ctl.name, size);
        return 0;
    }
    log_warn("ingest", "stream '%s': the client of connection #%llu from %s lost %llu bytes "
             "at file offset %llu", s->shown, (unsigned long long)c->id, c->peer,
             (unsigned long long)ctl.bytes, (unsigned long long)ctl.at);
    char who[100];
    snprintf(who, sizeof who, "%s#%llu", c->peer, (unsigned long long)c->id);
    rc = ingest_store_loss(st, s, ctl.at, ctl.bytes, who);
    if (rc < 0)
        conn_fail(c, WSPROTO_CLOSE_SERVER_ERROR, "stream '%s': cannot record the loss in "
                  "%s.losses: %s", s->shown, s->shown, strerror(-rc));
    ingest_store_unlock(st);
    return 0;
}

void dispatch_acks(struct conn *c, int64_t now)
{
    if (!c->nstreams || c->out_len - c->out_off > OUT_MAX)
        return;   /* nothing owned, or the peer does not read: ack later */
    struct ingest_store *st = c->lp->srv->store;
    for (size_t i = 0; i < c->nstreams && c->state == C_OPEN; i++) {
        struct ingest_stream *s = c->streams[i];
        uint64_t ack = 0;
        char name[256];
        ingest_store_lock(st);
        if (s->owner == c) {
            if (s->failed)
                ack_now(c, s, now);   /* reports the failure: 1011 */
            else if (ack_wanted(c, s, now, 1) && (ack = ack_now(c, s, now)) > 0)
                memcpy(name, s->name, s->name_len + 1);
        }
        ingest_store_unlock(st);
        if (ack)
            send_ctl(c, "ack", name, ack);
    }
}

int dispatch_flush_owned(struct conn *c)
{
    struct ingest_store *st = c->lp->srv->store;
    int64_t now = ingest_now_us();
    ingest_store_lock(st);
    for (size_t i = 0; i < c->nstreams && c->state == C_OPEN; i++)
        if (c->streams[i]->owner == c)
            ack_now(c, c->streams[i], now);   /* flushes; a failure closes c with 1011 */
    ingest_store_unlock(st);
    return c->state == C_OPEN ? 0 : -1;
}

void dispatch_conn_gone(struct conn *c, int stopping)
{
    struct ingest_store *st = c->lp->srv->store;
    ingest_store_lock(st);
    for (size_t i = 0; i < c->nstreams; i++) {
        struct ingest_stream *s = c->streams[i];
        if (s->owner == c) {
            s->owner = NULL;
            s->owner_flushes = 0;
            log_stream_closed(c, s, stopping ? "server stopping" : "connection closed");
        }
        unref(st, s);
    }
    ingest_store_unlock(st);
    c->nstreams = 0;
    c->last = NULL;
}
