/*
 * ingest conn: one connection on its loop's thread (server.h): the upgrade handshake,
 * frame parsing (wsframe.h), message reassembly under --max-message/--max-memory,
 * control frames, buffered output, the close handshake, idle pings.
 */
#include "ingest/server.h"

#include "common/log.h"
#include "ingest/handshake.h"
#include "record/wsproto.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define HANDSHAKE_US (10 * 1000000)
#define CLOSE_WAIT_US (5 * 1000000)

static void set_epollout(struct conn *c, int on)
{
    if (c->epollout == on)
        return;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP | (on ? EPOLLOUT : 0),
                             .data.ptr = c};
    if (epoll_ctl(c->lp->ep, EPOLL_CTL_MOD, c->fd, &ev) == 0)
        c->epollout = on;
}

static void peer_name(int fd, char *out, size_t len)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    snprintf(out, len, "?");
    if (getpeername(fd, (struct sockaddr *)&ss, &sl) < 0)
        return;
    if (ss.ss_family == AF_INET)
        inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, out, (socklen_t)len);
    else if (ss.ss_family == AF_INET6)
        inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, out, (socklen_t)len);
}

struct conn *conn_new(struct loop *lp, int fd)
{
    struct conn *c = calloc(1, sizeof *c);
    char *hs = malloc(HANDSHAKE_MAX);
    if (!c || !hs) {
        free(c);
        free(hs);
        return NULL;
    }
    c->kind = K_CONN;
    c->fd = fd;
    c->lp = lp;
    c->hs = hs;
    c->state = C_HANDSHAKE;
    c->last_rx_us = ingest_now_us();
    c->deadline_us = c->last_rx_us + HANDSHAKE_US;
    peer_name(fd, c->peer, sizeof c->peer);
    struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.ptr = c};
    if (epoll_ctl(lp->ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
        free(hs);
        free(c);
        return NULL;
    }
    c->next = lp->conns;
    if (lp->conns)
        lp->conns->prev = c;
    lp->conns = c;
    lp->nconns++;
    return c;
}

void conn_free(struct conn *c)
{
    struct loop *lp = c->lp;
    struct server *srv = lp->srv;
    epoll_ctl(lp->ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    if (c->state != C_HANDSHAKE || c->counted) {
        dispatch_conn_gone(c, lp->stop_seen);
        if (c->in_msg && c->len)
            log_info("ingest", "connection #%llu from %s: dropped %zu bytes of an incomplete "
                     "message", (unsigned long long)c->id, c->peer, c->len);
        log_debug("ingest", "connection #%llu from %s closed", (unsigned long long)c->id,
                  c->peer);
    }
    if (c->counted)
        atomic_fetch_sub(&srv->nconns, 1);
    atomic_fetch_sub(&srv->mem_used, c->cap);
    if (c->prev)
        c->prev->next = c->next;
    else
        lp->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    lp->nconns--;
    free(c->hs);
    free(c->buf);
    free(c->out);
    free(c->streams);
    free(c);
}

/* Writes what is queued. Returns -1 when the socket is gone. */
static int flush_out(struct conn *c)
{
    while (c->out_off < c->out_len) {
        ssize_t w = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                set_epollout(c, 1);
                return 0;
            }
            return -1;
        }
        c->out_off += (size_t)w;
    }
    c->out_off = c->out_len = 0;
    set_epollout(c, 0);
    if (c->state == C_HANGUP)
        return -1;
    return 0;
}

static int queue_raw(struct conn *c, const void *p, size_t n)
{
    if (c->out_len + n > c->out_cap) {
        if (c->out_off) {
            memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
            c->out_len -= c->out_off;
            c->out_off = 0;
        }
        size_t cap = c->out_cap ? c->out_cap : 512;
        while (cap < c->out_len + n)
            cap *= 2;
        unsigned char *nb = realloc(c->out, cap);
        if (!nb)
            return -ENOMEM;
        c->out = nb;
        c->out_cap = cap;
    }
    memcpy(c->out + c->out_len, p, n);
    c->out_len += n;
    return 0;
}

int conn_send(struct conn *c, int opcode, const void *p, size_t n)
{
    if (c->state == C_HANGUP)
        return -EPIPE;
    if (c->out_len - c->out_off > 4 * OUT_MAX) {
        /* a peer that sends (pings, stats) but never reads: no unbounded queue */
        log_warn("ingest", "connection #%llu from %s: hanging up: it does not read what it "
                 "is sent (%zu bytes queued)", (unsigned long long)c->id, c->peer,
                 c->out_len - c->out_off);
        c->state = C_HANGUP;
        c->gone = 1;
        return -ENOBUFS;
    }
    uint8_t h[WSFRAME_HDR_MAX];
    size_t hl = wsframe_header(h, opcode, n);
    if (queue_raw(c, h, hl) < 0 || (n && queue_raw(c, p, n) < 0))
        return -ENOMEM;
    if (!c->epollout && flush_out(c) < 0) {
        c->state = C_HANGUP;
        return -EPIPE;
    }
    return 0;
}

static void send_close(struct conn *c, int code, const char *reason)
{
    unsigned char b[125];
    size_t rl = strlen(reason);
    if (rl > sizeof b - 2)
        rl = sizeof b - 2;
    b[0] = (unsigned char)(code >> 8);
    b[1] = (unsigned char)code;
    memcpy(b + 2, reason, rl);
    conn_send(c, WSFRAME_CLOSE, b, 2 + rl);
}

int conn_fail(struct conn *c, int code, const char *fmt, ...)
{
    if (c->state != C_OPEN)
        return 0;
    char msg[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    plog(code == WSPROTO_CLOSE_SERVER_ERROR ? PLOG_ERR : PLOG_WARN, "ingest",
         "connection #%llu from %s: closing with %d: %s", (unsigned long long)c->id, c->peer,
         code, msg);
    /* The close frame's reason is at most 123 bytes; cut at a UTF-8 boundary. */
    char reason[120];
    size_t rl = strlen(msg);
    if (rl >= sizeof reason) {
        rl = sizeof reason - 1;
        while (rl && ((unsigned char)msg[rl] & 0xc0) == 0x80)
            rl--;
    }
    memcpy(reason, msg, rl);
    reason[rl] = '\0';
    /* Send the close frame and keep reading (and dropping) until the peer answers it:
     * hanging up at once would make the kernel answer a peer that is still sending with a
     * RST, which destroys the close frame before the peer reads the code. */
    send_close(c, code, reason);
    if (c->state == C_OPEN)
        c->state = C_CLOSING;
    c->deadline_us = ingest_now_us() + CLOSE_WAIT_US;
    return 0;
}

static void on_handshake(struct conn *c, const unsigned char *p, size_t n, size_t *used)
{
    size_t room = HANDSHAKE_MAX - c->hs_len, take = n < room ? n : room;
    memcpy(c->hs + c->hs_len, p, take);
    size_t before = c->hs_len;
    c->hs_len += take;
    struct handshake hs;
    const char *why = NULL;
    size_t head = handshake_parse(c->hs, c->hs_len, &hs, &why);
    if (!head) {
        *used = take;
        return;
    }
    *used = head - before;  /* what follows the head is already the first frames */
    struct server *srv = c->lp->srv;
    char resp[512];
    if (hs.status == 101 && c->lp->stop_seen) {
        hs.status = 503;
        why = "server shutting down";
    }
    size_t rl = handshake_response(&hs, why, resp, sizeof resp);
    free(c->hs);
    c->hs = NULL;
    if (hs.status != 101) {
        log_debug("ingest", "request from %s refused with %d: %s", c->peer, hs.status,
                  why ? why : "");
        c->state = C_HANGUP;
        if (queue_raw(c, resp, rl) == 0)
            flush_out(c);
        return;
    }
    c->state = C_OPEN;
    c->id = atomic_fetch_add(&srv->next_id, 1) + 1;
    c->resume = hs.proto == HS_RESUME;
    c->counted = 1;
    int n_open = atomic_fetch_add(&srv->nconns, 1) + 1;
    if (queue_raw(c, resp, rl) < 0 || flush_out(c) < 0) {
        c->state = C_HANGUP;
        return;
    }
    log_debug("ingest", "connection #%llu from %s (%s)", (unsigned long long)c->id, c->peer,
              c->resume ? "pirec.resume.1" : "legacy");
    if (n_open > srv->max_connections)
        conn_fail(c, WSPROTO_CLOSE_TRY_LATER, "%d connections are open already "
                  "(--max-connections); try again later", srv->max_connections);
}

/* Appends a data frame's payload piece to the message being gathered. */
static int gather(struct conn *c, const unsigned char *p, size_t n)
{
    struct server *srv = c->lp->srv;
    size_t cap = c->msg_binary ? srv->max_message : MAX_TEXT;
    if (c->len + n > cap)
        return conn_fail(c, WSPROTO_CLOSE_TOO_BIG, "%s message larger than %zu bytes",
                         c->msg_binary ? "binary" : "text", cap);
    if (c->len + n > c->cap) {
        size_t ncap = c->cap ? c->cap : 4096;
        while (ncap < c->len + n)
            ncap *= 2;
        if (ncap > cap)
            ncap = cap;
        /* every connection's unfinished message counts against one cap: many slow
         * clients must not add up to an OOM on a Pi */
        unsigned long long grow = ncap - c->cap;
        if (atomic_fetch_add(&srv->mem_used, grow) + grow > srv->max_memory) {
            atomic_fetch_sub(&srv->mem_used, grow);
            return conn_fail(c, WSPROTO_CLOSE_TRY_LATER, "unfinished messages of all "
                             "connections would exceed %llu bytes (--max-memory); try again "
                             "later", (unsigned long long)srv->max_memory);
        }
        unsigned char *nb = realloc(c->buf, ncap);
        if (!nb) {
            atomic_fetch_sub(&srv->mem_used, grow);
            return conn_fail(c, WSPROTO_CLOSE_SERVER_ERROR, "out of memory for a %zu-byte "
                             "message", c->len + n);
        }
        c->buf = nb;
        c->cap = ncap;
    }
    if (n)   /* an empty fragment (even the first, with no buffer yet) adds nothing */
        memcpy(c->buf + c->len, p, n);
    c->len += n;
    return 0;
}

static void message_done(struct conn *c)
{
    c->in_msg = 0;
    if (c->msg_binary)
        dispatch_binary(c, c->buf, c->len);
    else
        dispatch_text(c, c->buf, c->len);
    c->len = 0;
    if (c->cap > 1024 * 1024) { /* one big message should not pin memory for good */
        atomic_fetch_sub(&c->lp->srv->mem_used, c->cap);
        free(c->buf);
        c->buf = NULL;
        c->cap = 0;
    }
}

static void on_control(struct conn *c)
{
    size_t n = (size_t)c->fh.len;
    if (c->fh.opcode == WSFRAME_PING) {
        if (c->state == C_OPEN)
            conn_send(c, WSFRAME_PONG, c->ctl, n);
    } else if (c->fh.opcode == WSFRAME_CLOSE) {
        if (c->state == C_OPEN && dispatch_flush_owned(c) == 0) {
            /* the peer closes: answer with its code (RFC 6455 5.5.1) and hang up, once its
             * data is in the files */
            unsigned code = n >= 2 ? (unsigned)c->ctl[0] << 8 | c->ctl[1] : 1000;
            unsigned char b[2] = {(unsigned char)(code >> 8), (unsigned char)code};
            conn_send(c, WSFRAME_CLOSE, b, n >= 2 ? 2 : 0);
        }
        c->state = C_HANGUP;   /* freed once the reply is written */
    }
}

/* Starts frame fh: checks it against the state of the connection. */
static int frame_start(struct conn *c)
{
    const struct wsframe_hdr *h = &c->fh;
    if (!h->masked) {
        c->discard = 1;
        return conn_fail(c, 1002, "unmasked client frame (opcode %d, %llu bytes): RFC 6455 "
                         "requires a client to mask every frame", h->opcode,
                         (unsigned long long)h->len);
    }
    if (h->opcode >= WSFRAME_CLOSE)
        return 0;
    if (h->opcode == WSFRAME_CONT && !c->in_msg) {
        c->discard = 1;
        return conn_fail(c, 1002, "continuation frame without a message to continue");
    }
    if (h->opcode != WSFRAME_CONT && c->in_msg) {
        c->discard = 1;
        return conn_fail(c, 1002, "new message before the last one's final fragment");
    }
    if (h->opcode != WSFRAME_CONT) {
        c->in_msg = 1;
        c->msg_binary = h->opcode == WSFRAME_BINARY;
        c->len = 0;
    }
    return 0;
}

/* Consumes frames from p[0..n), unmasking in place. */
static void on_frames(struct conn *c, unsigned char *p, size_t n)
{
    size_t pos = 0;
    while (pos < n && !c->discard && c->state != C_HANGUP) {
        if (!c->in_frame) {
            size_t take = sizeof c->hdr - c->hdr_have;
            if (take > n - pos)
                take = n - pos;
            memcpy(c->hdr + c->hdr_have, p + pos, take);
            const char *why;
            int r = wsframe_parse(c->hdr, c->hdr_have + take, &c->fh, &why);
            if (r < 0) {
                c->discard = 1;
                if (c->state == C_OPEN)
                    conn_fail(c, 1002, "protocol error: %s", why);
                else
                    c->state = C_HANGUP;
                return;
            }
            if (r == 0) {
                c->hdr_have += take;
                pos += take;
                continue;
            }
            pos += c->fh.hdr_len - c->hdr_have;
            c->hdr_have = 0;
            c->in_frame = 1;
            c->frame_off = 0;
            if (c->state == C_OPEN && frame_start(c) < 0)
                return;
            if (c->discard)
                return;
            /* The common case: a whole unfragmented message in this read, no copy. */
            if (c->state == C_OPEN && c->fh.fin && c->fh.opcode < WSFRAME_CLOSE &&
                c->fh.opcode != WSFRAME_CONT && c->fh.len <= n - pos) {
                size_t len = (size_t)c->fh.len;
                size_t cap = c->msg_binary ? c->lp->srv->max_message : MAX_TEXT;
                c->in_frame = 0;
                c->in_msg = 0;
                if (len > cap) {
                    conn_fail(c, WSPROTO_CLOSE_TOO_BIG, "%s message larger than %zu bytes",
                              c->msg_binary ? "binary" : "text", cap);
                    return;
                }
                wsframe_unmask(p + pos, len, c->fh.mask, 0);
                if (c->msg_binary)
                    dispatch_binary(c, p + pos, len);
                else
                    dispatch_text(c, p + pos, len);
                pos += len;
                continue;
            }
        }
        uint64_t left = c->fh.len - c->frame_off;
        size_t take = left < n - pos ? (size_t)left : n - pos;
        if (c->fh.opcode >= WSFRAME_CLOSE) {
            memcpy(c->ctl + c->frame_off, p + pos, take);
            wsframe_unmask(c->ctl + c->frame_off, take, c->fh.mask, c->frame_off);
        } else if (c->state == C_OPEN) {
            wsframe_unmask(p + pos, take, c->fh.mask, c->frame_off);
            if (gather(c, p + pos, take) < 0 || c->state != C_OPEN) {
                c->discard = 1;
                return;
            }
        }
        pos += take;
        c->frame_off += take;
        if (c->frame_off < c->fh.len)
            continue;
        c->in_frame = 0;
        if (c->fh.opcode >= WSFRAME_CLOSE)
            on_control(c);
        else if (c->fh.fin && c->state == C_OPEN)
            message_done(c);
    }
}

/* Reads once (level-triggered epoll: every connection gets its turn). */
static void on_readable(struct conn *c)
{
    unsigned char *b = c->lp->rbuf;
    ssize_t r = recv(c->fd, b, READ_BUF, 0);
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return;
    if (r <= 0) {
        c->state = C_HANGUP;   /* the peer is gone: nothing more to say to it */
        c->gone = 1;
        return;
    }
    if ((size_t)r > c->lp->round_bytes)
        c->lp->round_bytes = (size_t)r;
    c->last_rx_us = ingest_now_us();
    c->ping_us = 0;
    size_t pos = 0;
    if (c->state == C_HANDSHAKE) {
        on_handshake(c, b, (size_t)r, &pos);
        if (c->state == C_HANDSHAKE || c->state == C_HANGUP)
            return;
    }
    if (c->discard)
        return;
    on_frames(c, b + pos, (size_t)r - pos);
}

void conn_on_event(struct conn *c, uint32_t events)
{
    if (events & EPOLLOUT) {
        if (flush_out(c) < 0) {
            conn_free(c);
            return;
        }
    }
    if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
        on_readable(c);
    if (c->state == C_HANGUP && (!c->epollout || c->gone || (events & (EPOLLHUP | EPOLLERR))))
        conn_free(c);
}

void conn_tick(struct conn *c, int64_t now)
{
    struct server *srv = c->lp->srv;
    if (c->state == C_HANDSHAKE || c->state == C_CLOSING) {
        if (now >= c->deadline_us)
            c->state = C_HANGUP;
    } else if (c->state == C_OPEN) {
        if (atomic_load(&c->taken_over)) {
            conn_fail(c, WSPROTO_CLOSE_TAKEN_OVER, "stream taken over by a newer connection");
        } else if (now - c->last_rx_us >= (int64_t)(srv->ping_secs * 2 + 10) * 1000000) {
            log_info("ingest", "connection #%llu from %s: silent for %u s, hanging up",
                     (unsigned long long)c->id, c->peer, srv->ping_secs * 2 + 10);
            c->state = C_HANGUP;
        } else if (now - c->last_rx_us >= (int64_t)srv->ping_secs * 1000000 &&
                   (!c->ping_us || now - c->ping_us >= (int64_t)srv->ping_secs * 1000000)) {
            c->ping_us = now;
            conn_send(c, WSFRAME_PING, NULL, 0);
        } else {
            dispatch_acks(c, now);
        }
    }
    if (c->state == C_HANGUP && (!c->epollout || c->gone || now >= c->deadline_us))
        conn_free(c);
}
