/*
 * ingest server: libwebsockets callbacks, message reassembly, the resume protocol.
 * See ingest.h for the threading rules; everything below runs on the service thread
 * except the signal handler.
 */
#include "ingest/ingest.h"

#include "common/log.h"
#include "ingest/forwarded.h"
#include "ingest/proto.h"
#include "ingest/store.h"

#include <errno.h>
#include <libwebsockets.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>
#include <time.h>

#define ACK_BYTES (256 * 1024)
#define ACK_US (100 * 1000)
#define TICK_US (50 * 1000)
#define SLOW_WRITE_US (200 * 1000)
#define MAX_TEXT 4096        /* control messages are tiny */
#define MAX_QUEUED 256       /* unanswered control replies per connection */
/* lws 4.1 hides its close opcode (value 4 of enum lws_write_protocol, part of its ABI)
 * behind lws_close_reason(); we need it to close without hanging up at once. */
#define LWS_WRITE_CLOSE_FRAME ((enum lws_write_protocol)4)
#define CLOSE_TAKEN_OVER 4001 /* private-use close code: another connection has the name */

struct outmsg {
    struct outmsg *next;
    size_t len;
    unsigned char buf[]; /* LWS_PRE + text */
};

struct conn {
    struct lws *wsi;
    uint64_t id;
    int resume;
    char peer[64];
    unsigned char *buf;
    size_t len, cap;
    int in_msg, msg_binary;
    int closing;
    int close_code;
    char close_reason[120];
    struct outmsg *out_head, *out_tail;
    int nout;
    struct ingest_stream *owned;
    struct conn *prev, *next;
};

struct server {
    struct lws_context *ctx;
    struct ingest_store *store;
    size_t max_message;
    uint64_t max_memory, mem_used;   /* reassembly buffers of all connections */
    int max_connections;
    uint64_t next_id;
    struct conn *conns;
    int nconns;
    int stopping;
    int64_t last_slow_log_us, last_tick_us, last_stall_log_us;
    lws_sorted_usec_list_t tick;
};

static atomic_int stop_flag;
static struct lws_context *volatile signal_ctx;

void ingest_request_stop(void)
{
    atomic_store(&stop_flag, 1);
    struct lws_context *c = signal_ctx;
    if (c)
        lws_cancel_service(c); /* a write(2) to lws' pipe: fine in a signal handler */
}

static void on_signal(int sig)
{
    (void)sig;
    ingest_request_stop();
}

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static struct server *srv_of(struct lws *wsi)
{
    return lws_context_user(lws_get_context(wsi));
}

/* ---- streams owned by a connection ------------------------------------------------ */

static void own_add(struct conn *c, struct ingest_stream *s)
{
    s->owner = c;
    s->own_prev = NULL;
    s->own_next = c->owned;
    if (c->owned)
        c->owned->own_prev = s;
    c->owned = s;
}

static void own_del(struct conn *c, struct ingest_stream *s)
{
    if (s->own_prev)
        s->own_prev->own_next = s->own_next;
    else
        c->owned = s->own_next;
    if (s->own_next)
        s->own_next->own_prev = s->own_prev;
    s->own_prev = s->own_next = NULL;
    s->owner = NULL;
}

static void log_stream_closed(struct conn *c, struct ingest_stream *s, const char *why)
{
    log_info("ingest", "stream '%s' closed (%s, connection #%llu from %s): received %llu bytes "
             "in %llu messages, file now %llu bytes", s->shown, why, (unsigned long long)c->id,
             c->peer, (unsigned long long)s->received, (unsigned long long)s->messages,
             (unsigned long long)s->size);
}

/* Asks lws to close c with code/reason from its next writeable callback (we may only
 * close the connection whose callback we are in directly). */
static void conn_close_later(struct conn *c, int code, const char *reason)
{
    if (c->closing)
        return;
    c->closing = 1;
    c->close_code = code;
    snprintf(c->close_reason, sizeof c->close_reason, "%s", reason);
    lws_callback_on_writable(c->wsi);
    /* A half-dead peer may never become writeable: hang up anyway after a while. */
    lws_set_timeout(c->wsi, PENDING_TIMEOUT_CLOSE_SEND, 5);
}

/* Logs why and closes c. Returns 0 for the callback to return: the close frame goes out
 * from the writeable callback, because returning -1 from a receive callback makes lws drop
 * the socket with the peer's data unread, and the kernel then answers with a RST that
 * destroys the close frame before the peer reads it. */
static int conn_fail(struct conn *c, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int conn_fail(struct conn *c, int code, const char *fmt, ...)
{
    char msg[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    int lvl = code == LWS_CLOSE_STATUS_UNEXPECTED_CONDITION ? PLOG_ERR : PLOG_WARN;
    plog(lvl, "ingest", "connection #%llu from %s: closing with %d: %s",
         (unsigned long long)c->id, c->peer, code, msg);
    /* The close frame's reason is at most 123 bytes. */
    char reason[120];
    size_t rlen = strlen(msg);
    if (rlen >= sizeof reason)
        rlen = sizeof reason - 1;
    memcpy(reason, msg, rlen);
    reason[rlen] = '\0';
    conn_close_later(c, code, reason);
    return 0;
}

/* Makes c the owner of the stream NAME, opening its file if needed. */
static int claim(struct server *srv, struct conn *c, const char *name, size_t len,
                 struct ingest_stream **out)
{
    struct ingest_stream *s = ingest_store_find(srv->store, name, len);
    if (!s) {
        int rc = ingest_store_get(srv->store, name, len, &s);
        if (rc < 0)
            return rc;
        log_info("ingest", "stream '%s' opened by connection #%llu from %s (%s), file has "
                 "%llu bytes", s->shown, (unsigned long long)c->id, c->peer,
                 c->resume ? "pirec.resume.1" : "legacy", (unsigned long long)s->size);
    } else if (s->owner != c) {
        struct conn *old = s->owner;
        log_info("ingest", "stream '%s' taken over by connection #%llu from %s; the older "
                 "connection #%llu from %s sent %llu bytes in %llu messages", s->shown,
                 (unsigned long long)c->id, c->peer, (unsigned long long)old->id, old->peer,
                 (unsigned long long)s->received, (unsigned long long)s->messages);
        own_del(old, s);
        char reason[100];
        snprintf(reason, sizeof reason, "stream taken over by a newer connection");
        conn_close_later(old, CLOSE_TAKEN_OVER, reason);
        s->received = s->messages = 0;
    }
    if (s->owner != c) {
        own_add(c, s);
        s->acked = s->size;
        s->last_ack_us = now_us();
        s->ack_due = 0;
    }
    *out = s;
    return 0;
}

static void ack_check(struct conn *c, struct ingest_stream *s, int64_t now)
{
    if (!c->resume || s->ack_due || s->size <= s->acked)
        return;
    if (s->size - s->acked >= ACK_BYTES || now - s->last_ack_us >= ACK_US) {
        s->ack_due = 1;
        lws_callback_on_writable(c->wsi);
    }
}

static int queue_text(struct conn *c, const char *op, const struct ingest_stream *s)
{
    if (c->nout >= MAX_QUEUED)
        return -ENOBUFS;
    char text[400];
    int n = wsproto_ctl_format(op, s->name, s->size, text, sizeof text);
    if (n < 0)
        return n;
    struct outmsg *m = malloc(sizeof *m + LWS_PRE + (size_t)n);
    if (!m)
        return -ENOMEM;
    m->next = NULL;
    m->len = (size_t)n;
    memcpy(m->buf + LWS_PRE, text, (size_t)n);
    if (c->out_tail)
        c->out_tail->next = m;
    else
        c->out_head = m;
    c->out_tail = m;
    c->nout++;
    lws_callback_on_writable(c->wsi);
    return 0;
}

static int claim_or_fail(struct server *srv, struct conn *c, const char *name, size_t len,
                         struct ingest_stream **s)
{
    int rc = claim(srv, c, name, len, s);
    if (rc == 0)
        return 0;
    char esc[300];
    wsproto_name_escape(name, len, esc, sizeof esc);
    if (rc == -ELOOP || rc == -EINVAL || rc == -EISDIR)
        return conn_fail(c, LWS_CLOSE_STATUS_POLICY_VIOLATION,
                         "stream '%s': refusing to write: %s is a symlink, directory or "
                         "special file", esc, esc);
    return conn_fail(c, LWS_CLOSE_STATUS_UNEXPECTED_CONDITION,
                     "stream '%s': cannot open the file: %s", esc, strerror(-rc));
}

/* One complete binary message: <name> NUL <data>. */
static int on_binary(struct server *srv, struct conn *c, const unsigned char *p, size_t n)
{
    const char *name, *why;
    size_t nlen, dlen;
    const void *data;
    if (wsproto_split_message(p, n, &name, &nlen, &data, &dlen, &why) < 0) {
        char esc[300];
        wsproto_name_escape(name, nlen, esc, sizeof esc);
        return conn_fail(c, LWS_CLOSE_STATUS_POLICY_VIOLATION, "bad stream name: %s: '%s'",
                         why, esc);
    }
    struct ingest_stream *s;
    if (claim_or_fail(srv, c, name, nlen, &s) < 0 || c->closing)
        return 0;
    if (forwarded_is_head(name, nlen) && !forwarded_on_head(name, nlen, data, dlen))
        return 0;   /* stored (and acked) only once the forwarded copy is verified */
    int64_t t0 = now_us();
    int rc = ingest_store_append(srv->store, s, data, dlen);
    int64_t took = now_us() - t0;
    if (took > SLOW_WRITE_US && t0 - srv->last_slow_log_us > 10000000) {
        /* Every connection waits while the service thread is stuck in write(2). */
        srv->last_slow_log_us = t0;
        log_warn("ingest", "stream '%s': writing %zu bytes took %lld ms (slow or busy disk; "
                 "every connection waited)", s->shown, dlen, (long long)(took / 1000));
    }
    if (rc < 0)
        return conn_fail(c, LWS_CLOSE_STATUS_UNEXPECTED_CONDITION,
                         "stream '%s': writing %zu bytes failed: %s; the file keeps its %llu "
                         "bytes of complete messages", s->shown, dlen, strerror(-rc),
                         (unsigned long long)s->size);
    ack_check(c, s, now_us());
    if (forwarded_is_head(name, nlen))
        forwarded_stored(name, nlen);
    return 0;
}

static int on_text(struct server *srv, struct conn *c, const unsigned char *p, size_t n)
{
    if (!c->resume)
        return conn_fail(c, LWS_CLOSE_STATUS_UNACCEPTABLE_OPCODE,
                         "text message on a legacy connection (control messages need the "
                         "pirec.resume.1 subprotocol)");
    struct wsproto_ctl ctl;
    char err[300];
    if (wsproto_ctl_parse((const char *)p, n, &ctl, err, sizeof err) < 0)
        return conn_fail(c, LWS_CLOSE_STATUS_POLICY_VIOLATION, "bad control message: %s",
                         err);
    struct ingest_stream *s;
    if (claim_or_fail(srv, c, ctl.name, ctl.name_len, &s) < 0 || c->closing)
        return 0;
    if (ctl.op == WSPROTO_OP_STAT) {
        int rc = queue_text(c, "stat", s);
        if (rc < 0)
            return conn_fail(c, LWS_CLOSE_STATUS_POLICY_VIOLATION,
                             "too many control messages unanswered (%s): read the replies",
                             strerror(-rc));
        return 0;
    }
    log_warn("ingest", "stream '%s': the client of connection #%llu from %s lost %llu bytes "
             "at file offset %llu", s->shown, (unsigned long long)c->id, c->peer,
             (unsigned long long)ctl.bytes, (unsigned long long)ctl.at);
    char who[100];
    snprintf(who, sizeof who, "%s#%llu", c->peer, (unsigned long long)c->id);
    int rc = ingest_store_loss(srv->store, s, ctl.at, ctl.bytes, who);
    if (rc < 0)
        return conn_fail(c, LWS_CLOSE_STATUS_UNEXPECTED_CONDITION,
                         "stream '%s': cannot record the loss in %s.losses: %s", s->shown,
                         s->shown, strerror(-rc));
    return 0;
}

static int on_receive(struct server *srv, struct conn *c, const unsigned char *in, size_t len)
{
    if (c->closing)
        return 0; /* being closed: what it still sends is dropped */
    int fin = lws_is_final_fragment(c->wsi) && lws_remaining_packet_payload(c->wsi) == 0;
    if (!c->in_msg) {
        c->in_msg = 1;
        c->msg_binary = lws_frame_is_binary(c->wsi);
        c->len = 0;
        if (fin) { /* whole message in one piece: no copy */
            c->in_msg = 0;
            return c->msg_binary ? on_binary(srv, c, in, len) : on_text(srv, c, in, len);
        }
    }
    size_t cap = c->msg_binary ? srv->max_message : MAX_TEXT;
    if (c->len + len > cap)
        return conn_fail(c, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE,
                         "%s message larger than %zu bytes", c->msg_binary ? "binary" : "text",
                         cap);
    if (c->len + len > c->cap) {
        size_t ncap = c->cap ? c->cap : 4096;
        while (ncap < c->len + len)
            ncap *= 2;
        if (ncap > cap)
            ncap = cap;
        /* every connection's unfinished message counts against one cap: many slow
         * clients must not add up to an OOM on a Pi */
        if (srv->mem_used - c->cap + ncap > srv->max_memory)
            return conn_fail(c, WSPROTO_CLOSE_TRY_LATER,
                             "unfinished messages of all connections would exceed %llu bytes "
                             "(--max-memory); try again later",
                             (unsigned long long)srv->max_memory);
        unsigned char *nb = realloc(c->buf, ncap);
        if (!nb)
            return conn_fail(c, LWS_CLOSE_STATUS_UNEXPECTED_CONDITION,
                             "out of memory for a %zu-byte message", c->len + len);
        srv->mem_used = srv->mem_used - c->cap + ncap;
        c->buf = nb;
        c->cap = ncap;
    }
    if (len) /* an empty fragment (even the first, with no buffer yet) adds nothing */
        memcpy(c->buf + c->len, in, len);
    c->len += len;
    if (!fin)
        return 0;
    c->in_msg = 0;
    int rc = c->msg_binary ? on_binary(srv, c, c->buf, c->len)
                           : on_text(srv, c, c->buf, c->len);
    c->len = 0;
    if (c->cap > 1024 * 1024) { /* one big message should not pin memory for good */
        srv->mem_used -= c->cap;
        free(c->buf);
        c->buf = NULL;
        c->cap = 0;
    }
    return rc;
}

static int on_writeable(struct conn *c)
{
    if (c->closing == 1) {
        /* Send the close frame ourselves and keep reading (and dropping) until the peer
         * answers it: lws' own close hangs up at once, and a peer still sending then gets
         * a RST that destroys the close frame before it reads the code. */
        unsigned char buf[LWS_PRE + 2 + sizeof c->close_reason];
        size_t rlen = strlen(c->close_reason);
        buf[LWS_PRE] = (unsigned char)(c->close_code >> 8);
        buf[LWS_PRE + 1] = (unsigned char)(c->close_code & 0xff);
        memcpy(buf + LWS_PRE + 2, c->close_reason, rlen);
        c->closing = 2;
        if (lws_write(c->wsi, buf + LWS_PRE, 2 + rlen, LWS_WRITE_CLOSE_FRAME) < 0)
            return -1;
        lws_set_timeout(c->wsi, PENDING_TIMEOUT_CLOSE_ACK, 5);
        return 0;
    }
    if (c->closing)
        return 0;
    struct outmsg *m = c->out_head;
    if (m) {
        c->out_head = m->next;
        if (!c->out_head)
            c->out_tail = NULL;
        c->nout--;
        int w = lws_write(c->wsi, m->buf + LWS_PRE, m->len, LWS_WRITE_TEXT);
        free(m);
        if (w < 0)
            return -1;
    } else {
        struct ingest_stream *s = c->owned;
        while (s && !s->ack_due)
            s = s->own_next;
        if (s) {
            unsigned char buf[LWS_PRE + 400];
            int n = wsproto_ctl_format("ack", s->name, s->size, (char *)buf + LWS_PRE, 400);
            s->ack_due = 0;
            s->acked = s->size;
            s->last_ack_us = now_us();
            if (n > 0 && lws_write(c->wsi, buf + LWS_PRE, (size_t)n, LWS_WRITE_TEXT) < 0)
                return -1;
        }
    }
    int more = c->out_head != NULL;
    for (struct ingest_stream *s = c->owned; s && !more; s = s->own_next)
        more = s->ack_due;
    if (more)
        lws_callback_on_writable(c->wsi);
    return 0;
}

static void conn_gone(struct server *srv, struct conn *c)
{
    if (!c->wsi)
        return; /* never established */
    while (c->owned) {
        struct ingest_stream *s = c->owned;
        own_del(c, s);
        log_stream_closed(c, s, srv->stopping ? "server stopping" : "connection closed");
        ingest_store_release(srv->store, s);
    }
    if (c->in_msg && c->len)
        log_info("ingest", "connection #%llu from %s: dropped %zu bytes of an incomplete "
                 "message", (unsigned long long)c->id, c->peer, c->len);
    while (c->out_head) {
        struct outmsg *m = c->out_head;
        c->out_head = m->next;
        free(m);
    }
    srv->mem_used -= c->cap;
    free(c->buf);
    c->buf = NULL;
    c->cap = 0;
    if (c->prev)
        c->prev->next = c->next;
    else
        srv->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    srv->nconns--;
    log_debug("ingest", "connection #%llu from %s closed", (unsigned long long)c->id, c->peer);
    c->wsi = NULL;
}

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                    size_t len)
{
    struct conn *c = user;
    struct server *srv;
    switch (reason) {
    case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
        srv = srv_of(wsi);
        return srv->stopping ? 1 : 0;
    case LWS_CALLBACK_ESTABLISHED:
        srv = srv_of(wsi);
        memset(c, 0, sizeof *c);
        c->wsi = wsi;
        c->id = ++srv->next_id;
        c->resume = lws_get_protocol(wsi) && lws_get_protocol(wsi)->id == 1;
        lws_get_peer_simple(wsi, c->peer, sizeof c->peer);
        if (!c->peer[0])
            snprintf(c->peer, sizeof c->peer, "?");
        c->next = srv->conns;
        if (srv->conns)
            srv->conns->prev = c;
        srv->conns = c;
        srv->nconns++;
        log_debug("ingest", "connection #%llu from %s (%s)", (unsigned long long)c->id,
                  c->peer, c->resume ? "pirec.resume.1" : "legacy");
        if (srv->nconns > srv->max_connections)
            return conn_fail(c, WSPROTO_CLOSE_TRY_LATER,
                             "%d connections are open already (--max-connections); try again "
                             "later", srv->max_connections);
        return 0;
    case LWS_CALLBACK_RECEIVE:
        if (!c || !c->wsi)
            return -1;
        return on_receive(srv_of(wsi), c, in, len);
    case LWS_CALLBACK_SERVER_WRITEABLE:
        if (!c || !c->wsi)
            return 0;
        return on_writeable(c);
    case LWS_CALLBACK_CLOSED:
        if (c)
            conn_gone(srv_of(wsi), c);
        return 0;
    case LWS_CALLBACK_HTTP:
        /* Only WebSocket upgrades are served. */
        if (lws_return_http_status(wsi, HTTP_STATUS_BAD_REQUEST,
                                   "pirec ingest: WebSocket connections only"))
            return -1;
        return lws_http_transaction_completed(wsi) ? -1 : 0;
    default:
        return 0;
    }
}

static const struct lws_protocols protocols[] = {
    /* First = what a client that asks for no subprotocol gets. */
    {"pirec-legacy", callback, sizeof(struct conn), 65536, 0, NULL, 0},
    {"pirec.resume.1", callback, sizeof(struct conn), 65536, 1, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

static void tick_one(struct ingest_stream *s, void *arg)
{
    int64_t now = *(int64_t *)arg;
    if (s->owner)
        ack_check(s->owner, s, now);
}

static void on_tick(lws_sorted_usec_list_t *sul)
{
    struct server *srv = lws_container_of(sul, struct server, tick);
    int64_t now = now_us();
    if (srv->last_tick_us && now - srv->last_tick_us > 10 * TICK_US &&
        now - srv->last_stall_log_us > 10000000) {
        srv->last_stall_log_us = now;
        log_warn("ingest", "the service loop was stalled for %lld ms (CPU starved or a slow "
                 "disk); clients buffered meanwhile", (long long)((now - srv->last_tick_us) / 1000));
    }
    srv->last_tick_us = now;
    forwarded_tick(srv->store);
    ingest_store_foreach(srv->store, tick_one, &now);
    ingest_store_tick(srv->store, now);
    lws_sul_schedule(srv->ctx, 0, &srv->tick, on_tick, TICK_US);
}

static void lws_emit(int level, const char *line)
{
    char buf[400];
    snprintf(buf, sizeof buf, "%s", line);
    size_t n = strlen(buf);
    while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        buf[--n] = '\0';
    plog(level == LLL_ERR ? PLOG_ERR : PLOG_WARN, "lws", "%s", buf);
}

/* Many connections need many fds: raise the soft limit to the hard one, capped so lws'
 * fd-indexed tables stay small. Returns the limit in force. */
static unsigned raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        return 1024;
    rlim_t want = rl.rlim_max;
    if (want == RLIM_INFINITY || want > 65536)
        want = 65536;
    if (want > rl.rlim_cur) {
        rl.rlim_cur = want;
        if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
            log_warn("ingest", "cannot raise the open file limit to %llu: %s",
                     (unsigned long long)want, strerror(errno));
    } else if (rl.rlim_cur > want) {
        rl.rlim_cur = want;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    getrlimit(RLIMIT_NOFILE, &rl);
    return (unsigned)rl.rlim_cur;
}

/* lws only says "init server failed": find out why by trying the bind ourselves. */
static const char *bind_error(const struct ingest_config *cfg)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    socklen_t sl;
    int fam = cfg->v6 ? AF_INET6 : AF_INET;
    if (cfg->v6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        a->sin6_family = AF_INET6;
        a->sin6_port = htons((uint16_t)cfg->port);
        inet_pton(AF_INET6, cfg->host, &a->sin6_addr);
        sl = sizeof *a;
    } else {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        a->sin_family = AF_INET;
        a->sin_port = htons((uint16_t)cfg->port);
        if (cfg->host && cfg->host[0])
            inet_pton(AF_INET, cfg->host, &a->sin_addr);
        sl = sizeof *a;
    }
    int fd = socket(fam, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return strerror(errno);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    const char *why = "libwebsockets could not set up the listener";
    if (bind(fd, (struct sockaddr *)&ss, sl) < 0)
        why = strerror(errno);
    close(fd);
    return why;
}

int ingest_run(const struct ingest_config *cfg)
{
    struct server srv;
    memset(&srv, 0, sizeof srv);
    srv.max_message = cfg->max_message ? cfg->max_message : 16u * 1024 * 1024;
    srv.max_memory = cfg->max_memory ? cfg->max_memory : 64u * 1024 * 1024;
    srv.max_connections = cfg->max_connections > 0 ? cfg->max_connections : 256;

    unsigned fdlimit = raise_fd_limit();
    struct ingest_store_config sc = {
        .dir = cfg->dir,
        .max_open = cfg->max_open_files > 0 ? cfg->max_open_files : (int)(fdlimit / 2),
        .sync_ms = cfg->sync_ms,
        .fault_enospc_after = cfg->fault_enospc_after,
    };
    if ((unsigned)sc.max_open > fdlimit / 2)
        sc.max_open = (int)(fdlimit / 2); /* leave half of the fds for sockets */
    char err[600];
    int rc = ingest_store_open(&srv.store, &sc, err, sizeof err);
    if (rc < 0) {
        log_err("ingest", "%s", err);
        return rc;
    }
    if (forwarded_init(cfg->dir) < 0) {
        forwarded_shutdown();
        ingest_store_close(srv.store);
        return -ENOMEM;
    }
    if (cfg->fault_enospc_after >= 0)
        log_warn("ingest", "fault injection: writes fail with ENOSPC after %lld bytes",
                 (long long)cfg->fault_enospc_after);

    lws_set_log_level(getenv("PIREC_LWS_DEBUG") ? (LLL_ERR | LLL_WARN | LLL_NOTICE | LLL_INFO) : (LLL_ERR | LLL_WARN), lws_emit);

    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    info.options = LWS_SERVER_OPTION_EXPLICIT_VHOSTS;
    info.fd_limit_per_thread = fdlimit;
    info.pt_serv_buf_size = 65536;
    info.user = &srv;
    info.gid = (gid_t)-1;
    info.uid = (uid_t)-1;
    srv.ctx = lws_create_context(&info);
    if (!srv.ctx) {
        log_err("ingest", "cannot create the libwebsockets context");
        forwarded_shutdown();
        ingest_store_close(srv.store);
        return -ENOMEM;
    }

    static const lws_retry_bo_t idle = {
        .secs_since_valid_ping = 30, .secs_since_valid_hangup = 70,
    };
    lws_retry_bo_t idle_policy = idle;
    if (cfg->ping_secs) {
        idle_policy.secs_since_valid_ping = (uint16_t)cfg->ping_secs;
        idle_policy.secs_since_valid_hangup = (uint16_t)(cfg->ping_secs * 2 + 10);
    }
    struct lws_context_creation_info vinfo;
    memset(&vinfo, 0, sizeof vinfo);
    vinfo.port = cfg->port;
    vinfo.protocols = protocols;
    vinfo.vhost_name = "ingest";
    vinfo.options = LWS_SERVER_OPTION_FAIL_UPON_UNABLE_TO_BIND;
    vinfo.retry_and_idle_policy = &idle_policy;
    int any = !cfg->host || !cfg->host[0];
    int any_v4 = !any && !cfg->v6 && !strcmp(cfg->host, "0.0.0.0");
    vinfo.iface = (any || any_v4) ? NULL : cfg->host;
    if (!any && !cfg->v6)
        vinfo.options |= LWS_SERVER_OPTION_DISABLE_IPV6;
    if (cfg->v6 && !strcmp(cfg->host, "::"))
        vinfo.iface = NULL; /* lws binds [::] for "every address" */
    struct lws_vhost *vh = lws_create_vhost(srv.ctx, &vinfo);
    if (!vh) {
        log_err("ingest", "cannot listen on %s%s%s:%d: %s", cfg->v6 ? "[" : "",
                any ? "*" : cfg->host, cfg->v6 ? "]" : "", cfg->port,
                bind_error(cfg));
        lws_context_destroy(srv.ctx);
        forwarded_shutdown();
        ingest_store_close(srv.store);
        return -EADDRNOTAVAIL;
    }
    int port = lws_get_vhost_listen_port(vh);

    struct sigaction sa, old_int, old_term, old_pipe;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    atomic_store(&stop_flag, 0);
    signal_ctx = srv.ctx;
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, &old_pipe);

    lws_sul_schedule(srv.ctx, 0, &srv.tick, on_tick, TICK_US);
    log_info("ingest", "storing streams in %s (fd limit %u, up to %d files open)",
             cfg->dir && *cfg->dir ? cfg->dir : ".", fdlimit, sc.max_open);
    printf("pirec ingest: listening on %s%s%s:%d\n", cfg->v6 ? "[" : "",
           any ? "0.0.0.0" : cfg->host, cfg->v6 ? "]" : "", port);
    fflush(stdout);

    while (!atomic_load(&stop_flag))
        if (lws_service(srv.ctx, 0) < 0)
            break;

    /* Stop: refuse new connections, say goodbye to the open ones, then let lws close
     * whatever did not go in time. Complete messages are already in the files. */
    srv.stopping = 1;
    log_info("ingest", "stopping: closing %d connections", srv.nconns);
    for (struct conn *c = srv.conns; c; c = c->next)
        conn_close_later(c, LWS_CLOSE_STATUS_GOINGAWAY, "server shutting down");
    int64_t deadline = now_us() + 2000000;
    while (srv.nconns > 0 && now_us() < deadline)
        if (lws_service(srv.ctx, 0) < 0)
            break;
    lws_sul_cancel(&srv.tick);
    signal_ctx = NULL;
    lws_context_destroy(srv.ctx);
    if (srv.nconns)
        log_warn("ingest", "%d connections were still open at exit", srv.nconns);
    forwarded_shutdown();
    ingest_store_close(srv.store);
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    sigaction(SIGPIPE, &old_pipe, NULL);
    log_info("ingest", "stopped; every file synced and closed");
    return 0;
}
