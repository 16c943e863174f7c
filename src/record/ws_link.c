/*
 * ws_link: the WebSocket sink of the record module (see ws_link.h for the contract and
 * docs/protocol.md for the wire format).
 *
 * Shape: a registry of links keyed by tls+host+port. Each link owns one lws context and
 * one service thread ("ws-link"); every lws call except lws_cancel_service() happens on
 * that thread. Streams hold their bytes in a ring indexed by absolute stream offsets, all
 * guarded by the link's mutex; writers copy into the ring and wake the service thread.
 *
 * Offsets of a stream (all absolute stream offsets, never wrapping):
 *   tail <= cur <= head
 *   [tail, head)  bytes held in the ring (not yet acked, or legacy: not yet on the socket)
 *   [tail, cur)   bytes already put into messages on the current or a previous socket
 *   [cur, head)   bytes not yet sent
 * Resumable servers map stream offset o to file offset base + o (docs/protocol.md);
 * "loss" messages move base so that the file never has a hole.
 *
 * Legacy limit: a server without pirec.resume.1 cannot tell what it stored, so a message is
 * freed once its last fragment has been handed to the socket. Bytes the kernel accepted but
 * that died with the connection are lost without the client knowing.
 */
#include "record/ws_link.h"

#include "common/log.h"
#include "common/timeutil.h"
#include "record/wsproto.h"

#include <errno.h>
#include <jansson.h>
#include <libwebsockets.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define WS_SUBPROTOCOL  WSPROTO_SUBPROTOCOL
#define WS_MSG_MAX      (16 * 1024)   /* data bytes per message */
#define WS_FRAG_MAX     (8 * 1024)    /* bytes per fragment (and per writable callback) */
#define WS_RX_MAX       (64 * 1024)   /* longest control message we accept */
#define WS_DEFAULT_BUF  (4ull << 20)
#define WS_DEFAULT_RECONNECT_MS 5000
#define WS_BACKOFF_FIRST_MS 200
#define WS_STOP_GRACE_MS 1000
#define WS_LOSS_LOG_MS  10000
#define WS_HEALTHY_MS   2000          /* a connection up this long (and not refused) resets
                                         the backoff */
#define WS_WATCHDOG_MS  1000          /* period of the reconnect watchdog */
#define WS_HANDSHAKE_MAX_S 20         /* an attempt not established by then is killed */
/* Keep-alive of peers that speak pirec.resume.1 (they answer pings). */
#define WS_PING_S       5
#define WS_HANGUP_S     15
/* Legacy peers (the original server never answers a ping): no WebSocket ping at all;
 * TCP keep-alive and TCP_USER_TIMEOUT find a dead peer instead. */
#define WS_TCP_KEEPIDLE_S  10
#define WS_TCP_KEEPINTVL_S 5
#define WS_TCP_KEEPCNT     3
#define WS_TCP_USER_TIMEOUT_MS 30000

enum { SYNC_NONE, SYNC_WAIT, SYNC_OK };      /* per stream, per connection */
enum { MODE_UNKNOWN, MODE_LEGACY, MODE_RESUME };

struct ws_link;

struct ws_stream {
    struct ws_link *link;
    struct ws_stream *next;
    char name[256];
    size_t name_len;
    unsigned char *ring;
    uint64_t cap;
    uint64_t head, tail, cur;
    int sync;
    int have_base;          /* got the first stat reply */
    int64_t base;           /* file offset of stream offset 0 (resumable) */
    uint64_t acked_file;    /* largest file size the server confirmed */
    int loss_pending;       /* bytes [loss_at, tail) are gone: tell the server */
    uint64_t loss_at;
    int ever_connected;
    int aborted;
    int fatal;              /* the server refused this stream for good (negative errno) */
    /* stats */
    uint64_t sent_hi, sent, acked, lost, lost_unlogged;
    uint64_t conn_acked;    /* legacy: bytes handed to the current socket */
    uint32_t reconnects;
    int error;
    int64_t loss_logged_ms;
};

/* The data message being written, fragment by fragment: copied out of the ring when it
 * starts, so that eviction or a closing stream cannot cut a message in half. */
struct ws_msg {
    int active;
    struct ws_stream *owner;   /* NULL once its stream closed (under mu) */
    uint64_t start, end;       /* stream offsets of its data */
    unsigned char *buf;        /* name NUL data */
    size_t len, off, first_len;
};

struct ws_link {
    /* immutable after creation */
    int tls, port;
    uint32_t stalls;           /* times the watchdog found no attempt and no retry (a bug) */
    char host[256];            /* as in the target (may be "[::1]") */
    char addr[256];            /* for connect(): no brackets */
    char hosthdr[300];         /* Host header */
    char path[1024];
    int reconnect_max_ms;
    int insecure;
    char ca_file[4097];
    int has_pin;
    unsigned char pin[32];
    char tls_err[300];         /* why the last certificate check failed (service thread) */
    struct lws_context *ctx;
    pthread_t thread;
    struct ws_link *next;      /* registry list, under reg_mu */
    int refs;                  /* under reg_mu */

    pthread_mutex_t mu;
    pthread_cond_t cond;
    /* under mu */
    struct ws_stream *streams;
    struct ws_stream *rr;      /* stream that sent the last data message */
    int stop;
    int connected;
    int mode;
    int ever_connected;

    /* service thread only */
    int done;                  /* stop finished: leave the service loop */
    int stop_seen;
    int hs_resume;             /* the handshake answered pirec.resume.1 */
    lws_sorted_usec_list_t sul_retry, sul_stop, sul_watchdog;
    lws_retry_bo_t idle;       /* keep-alive policy of the current attempt (lws keeps a pointer) */
    struct lws *att;           /* the current attempt / connection; NULL when none */
    int in_connect;            /* inside lws_client_connect_via_info() */
    int att_failed;            /* ... and it already reported a failure */
    int retry_pending;         /* sul_retry is scheduled */
    int64_t att_started_ms;
    int64_t est_ms;            /* when the current connection was established */
    int refused;               /* the peer closed it with a code other than 1000/1001 */
    unsigned tries;            /* attempts since the last healthy connection: the backoff */
    int outage_logged;
    struct ws_msg msg;
    unsigned char *frag;       /* LWS_PRE + one fragment */
    char *rx;
    size_t rx_len;
    int rx_text, rx_skip;
};

static pthread_mutex_t reg_mu = PTHREAD_MUTEX_INITIALIZER;
static struct ws_link *reg_links;
static pthread_once_t log_once = PTHREAD_ONCE_INIT;

static const char *scheme(const struct ws_link *l) { return l->tls ? "wss" : "ws"; }

/* ---- lws log routing ------------------------------------------------------------ */

static void lws_log_emit(int level, const char *line)
{
    char buf[512];
    size_t n = strlen(line);
    if (n >= sizeof buf)
        n = sizeof buf - 1;
    memcpy(buf, line, n);
    while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        n--;
    buf[n] = '\0';
    plog(level & LLL_ERR ? PLOG_ERR : PLOG_WARN, "lws", "%s", buf);
}

static void log_init(void) { lws_set_log_level(LLL_ERR | LLL_WARN, lws_log_emit); }

/* ---- ring ---------------------------------------------------------------------- */

static void ring_put(struct ws_stream *s, const unsigned char *p, size_t n)
{
    uint64_t at = s->head % s->cap;
    size_t first = (size_t)(s->cap - at) < n ? (size_t)(s->cap - at) : n;
    memcpy(s->ring + at, p, first);
    memcpy(s->ring, p + first, n - first);
    s->head += n;
}

static void ring_get(const struct ws_stream *s, uint64_t off, unsigned char *p, size_t n)
{
    uint64_t at = off % s->cap;
    size_t first = (size_t)(s->cap - at) < n ? (size_t)(s->cap - at) : n;
    memcpy(p, s->ring + at, first);
    memcpy(p + first, s->ring, n - first);
}

/* Drops the k oldest held bytes. Bytes never sent are lost for sure and counted now;
 * bytes already sent may be stored by the server: the next stat decides (resync()). */
static void evict(struct ws_stream *s, uint64_t k)
{
    uint64_t x = s->tail + k;
    uint64_t from = s->cur > s->tail ? s->cur : s->tail;
    if (x > from) {
        uint64_t d = x - from;
        s->lost += d;
        s->lost_unlogged += d;
        if (!s->loss_pending) {
            s->loss_pending = 1;
            s->loss_at = from;
        }
    }
    s->tail = x;
    if (s->cur < x)
        s->cur = x;
}

/* Everything queued is acknowledged (resumable) or on the socket (legacy). Under mu. */
static int stream_done(const struct ws_stream *s)
{
    const struct ws_link *l = s->link;
    if (l->msg.active && l->msg.owner == s)
        return 0;
    if (s->head == 0)
        return 1;
    if (l->mode == MODE_LEGACY)
        return s->tail == s->head;
    if (l->mode == MODE_RESUME)
        return s->have_base && !s->loss_pending && s->tail == s->head &&
               (int64_t)s->acked_file >= s->base + (int64_t)s->head;
    return 0;
}

/* Loss is logged once per outage (at the resync), at close, and while connected at most
 * every WS_LOSS_LOG_MS: never once per chunk. Under mu. */
static void log_loss(struct ws_stream *s, const char *when, int force)
{
    if (!s->lost_unlogged)
        return;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    int64_t now = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    if (!force && s->loss_logged_ms && now - s->loss_logged_ms < WS_LOSS_LOG_MS)
        return;
    s->loss_logged_ms = now;
    log_warn("record", "%s://%s:%d stream %s: %llu bytes lost %s",
             scheme(s->link), s->link->host, s->link->port, s->name,
             (unsigned long long)s->lost_unlogged, when);
    s->lost_unlogged = 0;
}

/* ---- work selection (service thread, under mu) -------------------------------------- */

static int stream_wants_control(const struct ws_link *l, const struct ws_stream *s)
{
    if (l->mode != MODE_RESUME || s->fatal)
        return 0;
    return s->sync == SYNC_NONE || (s->sync == SYNC_OK && s->loss_pending);
}

static int stream_wants_data(const struct ws_link *l, const struct ws_stream *s)
{
    if (s->fatal || s->sync != SYNC_OK || s->cur >= s->head)
        return 0;
    return l->mode == MODE_LEGACY || !s->loss_pending;
}

static int link_has_work(const struct ws_link *l)
{
    if (l->msg.active || l->stop)
        return 1;
    for (const struct ws_stream *s = l->streams; s; s = s->next)
        if (stream_wants_control(l, s) || stream_wants_data(l, s))
            return 1;
    return 0;
}

/* Next stream after `after` in list order, wrapping: round robin over whole messages. */
static struct ws_stream *next_data_stream(struct ws_link *l)
{
    struct ws_stream *start = l->rr && l->rr->next ? l->rr->next : l->streams;
    struct ws_stream *s = start;
    if (!s)
        return NULL;
    do {
        if (stream_wants_data(l, s))
            return s;
        s = s->next ? s->next : l->streams;
    } while (s != start);
    return NULL;
}

/* ---- control messages --------------------------------------------------------------- */

/* Builds a JSON text message into l->frag after LWS_PRE; returns its length or 0. */
static size_t build_control(struct ws_link *l, json_t *j)
{
    size_t n = 0;
    if (!j)
        return 0;
    char *txt = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    if (!txt)
        return 0;
    n = strlen(txt);
    if (n <= WS_FRAG_MAX + 256)
        memcpy(l->frag + LWS_PRE, txt, n);
    else
        n = 0;
    free(txt);
    return n;
}

static struct ws_stream *find_stream(struct ws_link *l, const char *name)
{
    for (struct ws_stream *s = l->streams; s; s = s->next)
        if (!strcmp(s->name, name))
            return s;
    return NULL;
}

/* The stat reply: where the server's file ends decides what to resend and what is lost
 * (docs/protocol.md, "How the client maps its stream onto the file"). */
static void resync(struct ws_link *l, struct ws_stream *s, uint64_t size)
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
                 scheme(l), l->host, l->port, s->name, (long long)(stored - (int64_t)hi));
        s->base = (int64_t)size - (int64_t)hi;
        stored = (int64_t)hi;
    }
    if ((int64_t)size < (int64_t)s->acked_file)
        log_warn("record", "%s://%s:%d stream %s: the server now stores %llu bytes but had "
                 "acknowledged %llu: it lost data",
                 scheme(l), l->host, l->port, s->name, (unsigned long long)size,
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
    log_loss(s, "while the server was unreachable (the buffer was full)", 1);
    pthread_cond_broadcast(&l->cond);
}

static void handle_control(struct ws_link *l, const char *txt, size_t len)
{
    json_error_t err;
    json_t *j = json_loadb(txt, len, 0, &err);
    const char *op = NULL, *name = NULL;
    json_int_t size = -1;
    if (!j || json_unpack_ex(j, &err, 0, "{s:s, s:s, s?:I}", "op", &op, "name", &name,
                             "size", &size) < 0) {
        log_warn("record", "%s://%s:%d: ignoring a control message the client does not "
                 "understand: %s", scheme(l), l->host, l->port, err.text);
        json_decref(j);
        return;
    }
    pthread_mutex_lock(&l->mu);
    struct ws_stream *s = find_stream(l, name);
    if (s && size >= 0) {
        if (!strcmp(op, "stat") && s->sync == SYNC_WAIT) {
            resync(l, s, (uint64_t)size);
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
            } else if (stream_done(s)) {
                pthread_cond_broadcast(&l->cond);
            }
        }
    }
    pthread_mutex_unlock(&l->mu);
    json_decref(j);
}

/* ---- connection ------------------------------------------------------------------- */

static void connect_now(struct ws_link *l);

static void retry_cb(lws_sorted_usec_list_t *sul)
{
    struct ws_link *l = lws_container_of(sul, struct ws_link, sul_retry);
    l->retry_pending = 0;
    connect_now(l);
}

static void stop_cb(lws_sorted_usec_list_t *sul)
{
    struct ws_link *l = lws_container_of(sul, struct ws_link, sul_stop);
    l->done = 1;   /* the peer did not finish the close handshake in time */
}

static int stopping(struct ws_link *l)
{
    pthread_mutex_lock(&l->mu);
    int st = l->stop;
    pthread_mutex_unlock(&l->mu);
    return st;
}

static void schedule_retry(struct ws_link *l)
{
    if (stopping(l))
        return;
    uint64_t d = WS_BACKOFF_FIRST_MS;
    for (unsigned i = 0; i < l->tries && d < (uint64_t)l->reconnect_max_ms; i++)
        d *= 2;
    if (d > (uint64_t)l->reconnect_max_ms)
        d = (uint64_t)l->reconnect_max_ms;
    /* jitter in [d/2, d] so that many clients do not come back in lockstep */
    uint32_t r = 0;
    lws_get_random(l->ctx, &r, sizeof r);
    uint64_t ms = d / 2 + (d / 2 ? r % (d / 2 + 1) : 0);
    if (l->tries < 64)
        l->tries++;
    log_debug("record", "%s://%s:%d: next attempt in %llu ms (attempt %u since the last "
              "healthy connection)", scheme(l), l->host, l->port, (unsigned long long)ms,
              l->tries);
    l->retry_pending = 1;
    lws_sul_schedule(l->ctx, 0, &l->sul_retry, retry_cb, (lws_usec_t)ms * LWS_US_PER_MS);
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void on_lost(struct ws_link *l, const char *why);

/* Is this wsi our current attempt? An error reported from inside
 * lws_client_connect_via_info() arrives before we know the wsi. */
static int is_attempt(struct ws_link *l, struct lws *wsi)
{
    return (l->att && wsi == l->att) || (l->in_connect && !l->att);
}

/* The attempt ended (error, close, or destroyed without either): exactly once per attempt. */
static void attempt_ended(struct ws_link *l, struct lws *wsi, const char *why)
{
    if (!is_attempt(l, wsi))
        return;
    l->att = NULL;
    if (l->in_connect)
        l->att_failed = 1;
    on_lost(l, why);
}

static void connect_now(struct ws_link *l)
{
    if (l->att || stopping(l))
        return;
    /* Until the handshake says otherwise, assume a peer that answers pings; legacy peers
     * get theirs switched off in on_established(). lws keeps a pointer to this policy. */
    memset(&l->idle, 0, sizeof l->idle);
    l->idle.secs_since_valid_ping = WS_PING_S;
    l->idle.secs_since_valid_hangup = WS_HANGUP_S;
    struct lws_client_connect_info i;
    memset(&i, 0, sizeof i);
    i.context = l->ctx;
    i.address = l->addr;
    i.port = l->port;
    i.path = l->path;
    i.host = l->hosthdr;
    i.origin = l->hosthdr;
    i.protocol = WS_SUBPROTOCOL;
    i.local_protocol_name = "pirec-record";
    i.retry_and_idle_policy = &l->idle;
    if (l->tls) {
        i.ssl_connection = LCCSCF_USE_SSL;
        if (l->insecure)
            i.ssl_connection |= LCCSCF_ALLOW_SELFSIGNED | LCCSCF_SKIP_SERVER_CERT_HOSTNAME_CHECK |
                                LCCSCF_ALLOW_INSECURE | LCCSCF_ALLOW_EXPIRED;
    }
    l->att_started_ms = mono_ms();
    l->in_connect = 1;
    l->att_failed = 0;
    struct lws *w = lws_client_connect_via_info(&i);
    l->in_connect = 0;
    if (l->att_failed)          /* already reported (and a retry scheduled) */
        return;
    if (!w) {
        on_lost(l, "cannot start a connection");
        return;
    }
    l->att = w;
}

/* Legacy peers: the original server never answers a ping, so a WebSocket keep-alive would
 * hang up on it every WS_HANGUP_S and make it delete the stream's file. Switch lws' idle
 * policy off (its hang-up timer is pushed out and re-armed by the watchdog) and let TCP
 * find a dead peer: keep-alive probes when idle, TCP_USER_TIMEOUT when data stays unacked. */
static void legacy_liveness(struct ws_link *l, struct lws *wsi)
{
    l->idle.secs_since_valid_ping = UINT16_MAX;
    l->idle.secs_since_valid_hangup = UINT16_MAX;
    lws_validity_confirmed(wsi);
    lws_sockfd_type fd = lws_get_socket_fd(wsi);
    if (fd < 0)
        return;
    int one = 1, idle = WS_TCP_KEEPIDLE_S, intvl = WS_TCP_KEEPINTVL_S, cnt = WS_TCP_KEEPCNT;
    unsigned int uto = WS_TCP_USER_TIMEOUT_MS;
    if (setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one) ||
        setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle) ||
        setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof intvl) ||
        setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof cnt) ||
        setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &uto, sizeof uto))
        log_debug("record", "%s://%s:%d: TCP keep-alive not fully set: %s", scheme(l), l->host,
                  l->port, strerror(errno));
}

/* Every WS_WATCHDOG_MS on the service thread: a link that is not stopping always has either
 * an attempt under way or a retry scheduled. If neither, that is a bug somewhere in the
 * callback paths: count it (ws_stream_stats.stalls), log it and retry. An attempt that
 * hangs in the handshake longer than WS_HANDSHAKE_MAX_S is killed (its close reports it). */
static void watchdog_cb(lws_sorted_usec_list_t *sul)
{
    struct ws_link *l = lws_container_of(sul, struct ws_link, sul_watchdog);
    pthread_mutex_lock(&l->mu);
    int stop = l->stop, connected = l->connected, legacy = l->mode == MODE_LEGACY;
    if (!stop && !l->att && !l->retry_pending)
        l->stalls++;
    pthread_mutex_unlock(&l->mu);
    if (!stop) {
        if (!l->att && !l->retry_pending) {
            log_err("record", "%s://%s:%d: reconnect watchdog: no attempt and no retry "
                    "scheduled; retrying now", scheme(l), l->host, l->port);
            connect_now(l);
        } else if (l->att && !connected &&
                   mono_ms() - l->att_started_ms > WS_HANDSHAKE_MAX_S * 1000) {
            log_warn("record", "%s://%s:%d: no handshake after %d s; trying again", scheme(l),
                     l->host, l->port, WS_HANDSHAKE_MAX_S);
            l->att_started_ms = mono_ms();
            lws_set_timeout(l->att, PENDING_TIMEOUT_AWAITING_SERVER_RESPONSE, LWS_TO_KILL_ASYNC);
        } else if (l->att && connected && legacy) {
            lws_validity_confirmed(l->att);   /* keep lws' idle hang-up away (see above) */
        }
    }
    lws_sul_schedule(l->ctx, 0, &l->sul_watchdog, watchdog_cb,
                     (lws_usec_t)WS_WATCHDOG_MS * LWS_US_PER_MS);
}

static void on_established(struct ws_link *l, struct lws *wsi)
{
    int resume = l->hs_resume;
    lws_sul_cancel(&l->sul_retry);
    l->retry_pending = 0;
    if (!resume)
        legacy_liveness(l, wsi);
    pthread_mutex_lock(&l->mu);
    if (l->ever_connected || l->outage_logged)
        log_info("record", "%s://%s:%d: connected%s (%s server)", scheme(l), l->host, l->port,
                 l->ever_connected ? " again" : "", resume ? "resumable" : "legacy");
    else
        log_debug("record", "%s://%s:%d: connected (%s server)", scheme(l), l->host, l->port,
                  resume ? "resumable" : "legacy");
    l->mode = resume ? MODE_RESUME : MODE_LEGACY;
    l->connected = 1;
    l->ever_connected = 1;
    l->est_ms = mono_ms();
    l->refused = 0;
    l->outage_logged = 0;
    for (struct ws_stream *s = l->streams; s; s = s->next) {
        if (s->ever_connected)
            s->reconnects++;
        s->ever_connected = 1;
        s->conn_acked = 0;
        if (resume) {
            s->sync = SYNC_NONE;   /* ask where the file ends before any data */
        } else {
            s->cur = s->tail;      /* resend what the old socket did not take */
            s->loss_pending = 0;   /* a legacy server has no way to hear about it */
            s->sync = SYNC_OK;
            log_loss(s, "while the server was unreachable (the buffer was full)", 1);
        }
    }
    pthread_cond_broadcast(&l->cond);
    pthread_mutex_unlock(&l->mu);
    lws_callback_on_writable(wsi);
}

/* A legacy server cannot tell what it stored, and the original one deletes a stream's
 * file when a new connection sends it again. So when a connection to a legacy server dies,
 * everything handed to that socket may be gone: it moves from acked to lost, is logged,
 * and a finite run then fails instead of reporting success over a truncated file. Under mu. */
static void legacy_drop_counts_lost(struct ws_link *l)
{
    for (struct ws_stream *s = l->streams; s; s = s->next) {
        uint64_t gone = s->conn_acked < s->acked ? s->conn_acked : s->acked;
        s->conn_acked = 0;
        if (!gone)
            continue;
        s->acked -= gone;
        s->lost += gone;
        log_warn("record", "%s://%s:%d stream %s: the connection to this legacy server (no "
                 "pirec.resume.1) dropped; it may discard what it got (the original server "
                 "deletes the file on a new connection): %llu bytes counted as lost",
                 scheme(l), l->host, l->port, s->name, (unsigned long long)gone);
    }
}

static void on_lost(struct ws_link *l, const char *why)
{
    pthread_mutex_lock(&l->mu);
    int was = l->connected;
    l->connected = 0;
    struct ws_msg *m = &l->msg;
    if (m->active) {
        struct ws_stream *o = m->owner;
        /* the peer drops an unfinished message; part of it may have been evicted meanwhile */
        if (o && l->mode == MODE_LEGACY && o->tail > m->start) {
            uint64_t gone = (o->tail < m->end ? o->tail : m->end) - m->start;
            o->lost += gone;
            o->lost_unlogged += gone;
        }
        m->active = 0;
        m->owner = NULL;
    }
    if (was && l->mode == MODE_LEGACY && !l->stop)
        legacy_drop_counts_lost(l);
    /* Only a connection that stayed up and was not refused resets the backoff: a server
     * that accepts and then refuses (full disk, a limit) is retried ever more slowly. */
    if (was && !l->refused && mono_ms() - l->est_ms >= WS_HEALTHY_MS)
        l->tries = 0;
    for (struct ws_stream *s = l->streams; s; s = s->next) {
        s->sync = SYNC_NONE;
        if (l->mode == MODE_LEGACY)
            s->cur = s->tail;
    }
    int stopping = l->stop;
    pthread_cond_broadcast(&l->cond);
    pthread_mutex_unlock(&l->mu);
    if (stopping) {
        l->done = 1;
        return;
    }
    if (!l->outage_logged) {
        if (was)
            log_warn("record", "%s://%s:%d: connection lost (%s); reconnecting, data is "
                     "buffered meanwhile", scheme(l), l->host, l->port, why);
        else
            log_warn("record", "%s://%s:%d: cannot connect (%s); retrying in the background, "
                     "data is buffered meanwhile", scheme(l), l->host, l->port, why);
        l->outage_logged = 1;
    } else {
        log_debug("record", "%s://%s:%d: connect failed again (%s)", scheme(l), l->host,
                  l->port, why);
    }
    schedule_retry(l);
}

/* One writable callback: one fragment or one control message. Returns -1 to close. */
static int on_writable(struct ws_link *l, struct lws *wsi)
{
    unsigned char *p = l->frag + LWS_PRE;
    size_t n = 0;
    int flags = 0, data_final = 0;
    struct ws_msg *m = &l->msg;

    pthread_mutex_lock(&l->mu);
    if (l->stop && !m->active) {
        pthread_mutex_unlock(&l->mu);
        lws_close_reason(wsi, LWS_CLOSE_STATUS_NORMAL, (unsigned char *)"bye", 3);
        return -1;
    }
    if (!m->active) {
        struct ws_stream *c = NULL;
        for (struct ws_stream *s = l->streams; s && !c; s = s->next)
            if (stream_wants_control(l, s))
                c = s;
        if (c && c->sync == SYNC_NONE) {
            n = build_control(l, json_pack("{s:s, s:s}", "op", "stat", "name", c->name));
            c->sync = SYNC_WAIT;
            flags = LWS_WRITE_TEXT;
        } else if (c) {
            uint64_t bytes = c->tail - c->loss_at;
            n = build_control(l, json_pack("{s:s, s:s, s:I, s:I}", "op", "loss", "name", c->name,
                                           "at", (json_int_t)(c->base + (int64_t)c->loss_at),
                                           "bytes", (json_int_t)bytes));
            c->base -= (int64_t)bytes;
            c->loss_pending = 0;
            flags = LWS_WRITE_TEXT;
        } else {
            struct ws_stream *s = next_data_stream(l);
            if (s) {
                log_loss(s, "(the server takes data slower than it comes; buffer full)", 0);
                uint64_t dl = s->head - s->cur;
                if (dl > WS_MSG_MAX)
                    dl = WS_MSG_MAX;
                m->active = 1;
                m->owner = s;
                m->start = s->cur;
                m->end = s->cur + dl;
                memcpy(m->buf, s->name, s->name_len + 1);
                ring_get(s, s->cur, m->buf + s->name_len + 1, (size_t)dl);
                m->len = s->name_len + 1 + (size_t)dl;
                m->off = 0;
                /* at least two fragments: the first carries at most half of the data */
                size_t d1 = (size_t)dl / 2;
                if (d1 > WS_FRAG_MAX)
                    d1 = WS_FRAG_MAX;
                m->first_len = s->name_len + 1 + d1;
                s->cur = m->end;
                l->rr = s;
            }
        }
    }
    if (m->active) {
        size_t left = m->len - m->off;
        if (m->off == 0) {
            n = m->first_len;
            flags = LWS_WRITE_BINARY | LWS_WRITE_NO_FIN;
        } else {
            n = left > WS_FRAG_MAX ? WS_FRAG_MAX : left;
            flags = LWS_WRITE_CONTINUATION | (n < left ? LWS_WRITE_NO_FIN : 0);
            data_final = n == left;
        }
        memcpy(p, m->buf + m->off, n);
    }
    pthread_mutex_unlock(&l->mu);

    if (n) {
        int w = lws_write(wsi, p, n, (enum lws_write_protocol)flags);
        if (w < (int)n) {
            log_warn("record", "%s://%s:%d: write failed", scheme(l), l->host, l->port);
            return -1;
        }
    }

    pthread_mutex_lock(&l->mu);
    if (m->active) {
        m->off += n;
        if (data_final) {
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
    }
    int more = link_has_work(l);
    pthread_mutex_unlock(&l->mu);
    if (more)
        lws_callback_on_writable(wsi);
    return 0;
}

/* The server closed with a code. Codes for which retrying cannot help (policy 1008,
 * 1003, 1009: wsproto_close_meaning) are fatal for the stream the reason names (the server
 * quotes it escaped), or for every stream of the link when it names none: reconnecting
 * would only be refused again, and cut the other streams each time. */
static void on_peer_close(struct ws_link *l, const unsigned char *in, size_t len)
{
    int code = in[0] << 8 | in[1];
    char reason[128];
    snprintf(reason, sizeof reason, "%.*s", (int)(len - 2 > 120 ? 120 : len - 2),
             (const char *)in + 2);
    for (char *p = reason; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = '?';
    if (code == WSPROTO_CLOSE_NORMAL || code == WSPROTO_CLOSE_GOING_AWAY)
        return;
    int fatal = 0;
    const char *meaning = wsproto_close_meaning(code, &fatal);
    pthread_mutex_lock(&l->mu);
    l->refused = 1;
    if (fatal) {
        int named = 0;
        for (struct ws_stream *s = l->streams; s; s = s->next) {
            char esc[1100], quoted[1110];
            wsproto_name_escape(s->name, s->name_len, esc, sizeof esc);
            snprintf(quoted, sizeof quoted, "'%s'", esc);
            if (strstr(reason, quoted))
                named = 1, s->fatal = -EPERM;
        }
        for (struct ws_stream *s = l->streams; s && !named; s = s->next)
            s->fatal = -EPERM;
        for (struct ws_stream *s = l->streams; s; s = s->next)
            if (s->fatal && !s->error) {
                s->error = s->fatal;
                log_err("record", "%s://%s:%d stream %s: the server refused it with close %d "
                        "(%s: %s); not retrying this stream", scheme(l), l->host, l->port,
                        s->name, code, meaning, reason);
            }
        pthread_cond_broadcast(&l->cond);
    } else {
        log_warn("record", "%s://%s:%d: the server closed the connection with code %d (%s: %s)",
                 scheme(l), l->host, l->port, code, meaning, reason);
    }
    pthread_mutex_unlock(&l->mu);
}

static void hex32(const unsigned char *d, char *out)
{
    for (int i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", d[i]);
}

/* OpenSSL's verdict on each certificate of the chain (lws passes it through): keep the
 * reason of a failure for the log line, and check the pin on the leaf. 0 = accept. */
static int verify_server_cert(struct ws_link *l, X509_STORE_CTX *xs, int preverify_ok)
{
    int depth = X509_STORE_CTX_get_error_depth(xs);
    if (!preverify_ok) {
        int e = X509_STORE_CTX_get_error(xs);
        const char *hint = "";
        if (e == X509_V_ERR_HOSTNAME_MISMATCH || e == X509_V_ERR_IP_ADDRESS_MISMATCH)
            hint = ": the certificate is not for this host name (use the name it was issued "
                   "for in the URL)";
        else if (e == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY ||
                 e == X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT ||
                 e == X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN ||
                 e == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT)
            hint = l->ca_file[0] ? ": the CA file given does not vouch for this server"
                                 : ": not signed by a CA this system trusts (give the CA file: "
                                   "record_set_tls / pirec send --ca-file)";
        snprintf(l->tls_err, sizeof l->tls_err, "certificate verify failed: %s%s",
                 X509_verify_cert_error_string(e), hint);
        return 0;   /* keep OpenSSL's "no" */
    }
    if (depth != 0 || !l->has_pin)
        return 0;
    X509 *cert = X509_STORE_CTX_get_current_cert(xs);
    unsigned char spki[32], whole[32];
    unsigned int n = 0;
    int ok_spki = 0, ok_whole = 0;
    unsigned char *der = NULL;
    int dl = cert ? i2d_X509_PUBKEY(X509_get_X509_PUBKEY(cert), &der) : -1;
    if (dl > 0 && EVP_Digest(der, (size_t)dl, spki, &n, EVP_sha256(), NULL))
        ok_spki = !memcmp(spki, l->pin, 32);
    OPENSSL_free(der);
    if (cert && X509_digest(cert, EVP_sha256(), whole, &n))
        ok_whole = !memcmp(whole, l->pin, 32);
    if (ok_spki || ok_whole)
        return 0;
    char got[65];
    hex32(spki, got);
    snprintf(l->tls_err, sizeof l->tls_err, "the server's certificate does not match the "
             "pinned SHA-256 (its SPKI hash is %s)", got);
    X509_STORE_CTX_set_error(xs, X509_V_ERR_APPLICATION_VERIFICATION);
    return 1;
}

static int link_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user,
                         void *in, size_t len)
{
    struct lws_context *ctx = lws_get_context(wsi);
    struct ws_link *l = ctx ? lws_context_user(ctx) : NULL;
    if (!l)
        return 0;

    switch (reason) {
    case LWS_CALLBACK_OPENSSL_PERFORM_SERVER_CERT_VERIFICATION:
        return verify_server_cert(l, user, (int)len);
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR: {
        char why[320];
        if (l->tls_err[0]) {
            snprintf(why, sizeof why, "%s", l->tls_err);
            l->tls_err[0] = 0;
        } else if (in && len)
            snprintf(why, sizeof why, "%.*s", (int)(len < 150 ? len : 150), (const char *)in);
        else
            snprintf(why, sizeof why, "%.150s", in ? (const char *)in : "unknown error");
        attempt_ended(l, wsi, why);
        break;
    }
    case LWS_CALLBACK_CLIENT_FILTER_PRE_ESTABLISH: {
        /* the response headers are gone by ESTABLISHED: read the subprotocol here */
        char proto[64] = "";
        int n = lws_hdr_copy(wsi, proto, sizeof proto, WSI_TOKEN_PROTOCOL);
        l->hs_resume = n > 0 && !strcmp(proto, WS_SUBPROTOCOL);
        break;
    }
    case LWS_CALLBACK_CLIENT_ESTABLISHED:
        if (wsi == l->att || (l->in_connect && !l->att)) {
            l->att = wsi;
            on_established(l, wsi);
        }
        break;
    case LWS_CALLBACK_CLIENT_CLOSED:
        attempt_ended(l, wsi, "closed");
        break;
    case LWS_CALLBACK_WSI_DESTROY:
        /* the catch-all: some failure paths of lws 4.1 (e.g. a reset during the handshake)
         * destroy the wsi without CONNECTION_ERROR or CLOSED; the attempt ends here then */
        attempt_ended(l, wsi, "connection destroyed");
        break;
    case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
        if (len >= 2)
            on_peer_close(l, in, len);
        break;
    case LWS_CALLBACK_CLIENT_RECEIVE:
        if (lws_is_first_fragment(wsi)) {
            l->rx_len = 0;
            l->rx_skip = 0;
            l->rx_text = !lws_frame_is_binary(wsi);
        }
        if (l->rx_text && !l->rx_skip) {
            if (l->rx_len + len > WS_RX_MAX) {
                log_warn("record", "%s://%s:%d: ignoring a control message over %d bytes",
                         scheme(l), l->host, l->port, WS_RX_MAX);
                l->rx_skip = 1;
            } else {
                memcpy(l->rx + l->rx_len, in, len);
                l->rx_len += len;
            }
        }
        if (lws_is_final_fragment(wsi) && l->rx_text && !l->rx_skip && l->mode == MODE_RESUME)
            handle_control(l, l->rx, l->rx_len);
        if (lws_is_final_fragment(wsi)) {
            pthread_mutex_lock(&l->mu);
            int more = link_has_work(l);
            pthread_mutex_unlock(&l->mu);
            if (more)
                lws_callback_on_writable(wsi);
        }
        break;
    case LWS_CALLBACK_CLIENT_WRITEABLE:
        if (wsi != l->att)
            return -1;
        return on_writable(l, wsi);
    case LWS_CALLBACK_EVENT_WAIT_CANCELLED: {
        /* another thread queued data, opened a stream or asked us to stop */
        pthread_mutex_lock(&l->mu);
        int connected = l->connected;
        int more = connected && link_has_work(l);
        int stop = l->stop;
        pthread_mutex_unlock(&l->mu);
        if (stop && !l->stop_seen) {
            l->stop_seen = 1;
            if (!connected)
                l->done = 1;   /* nothing to flush */
            else               /* close politely, but not forever */
                lws_sul_schedule(l->ctx, 0, &l->sul_stop, stop_cb,
                                 (lws_usec_t)WS_STOP_GRACE_MS * LWS_US_PER_MS);
        }
        if (more && l->att)
            lws_callback_on_writable(l->att);
        break;
    }
    default:
        break;
    }
    (void)user;
    return 0;
}

static const struct lws_protocols link_protocols[] = {
    { "pirec-record", link_callback, 0, WS_FRAG_MAX * 2, 0, NULL, 0 },
    { NULL, NULL, 0, 0, 0, NULL, 0 }   /* 4.1 has no LWS_PROTOCOL_LIST_TERM */
};

static void *link_thread(void *arg)
{
    struct ws_link *l = arg;
    pthread_setname_np(pthread_self(), "ws-link");
    connect_now(l);
    lws_sul_schedule(l->ctx, 0, &l->sul_watchdog, watchdog_cb,
                     (lws_usec_t)WS_WATCHDOG_MS * LWS_US_PER_MS);
    while (!l->done) {
        if (lws_service(l->ctx, 0) < 0)
            break;
    }
    lws_sul_cancel(&l->sul_retry);
    lws_sul_cancel(&l->sul_stop);
    lws_sul_cancel(&l->sul_watchdog);
    lws_context_destroy(l->ctx);
    return NULL;
}

/* ---- link lifetime (reg_mu held by callers) --------------------------------------- */

static void link_free(struct ws_link *l)
{
    pthread_mutex_destroy(&l->mu);
    pthread_cond_destroy(&l->cond);
    free(l->msg.buf);
    free(l->frag);
    free(l->rx);
    free(l);
}

static int link_create(const struct ws_target *t, const struct ws_options *o, struct ws_link **out)
{
    struct ws_link *l = calloc(1, sizeof *l);
    if (!l)
        return -ENOMEM;
    l->tls = t->tls;
    l->port = t->port;
    snprintf(l->host, sizeof l->host, "%s", t->host);
    size_t hl = strlen(t->host);
    if (hl >= 2 && t->host[0] == '[' && t->host[hl - 1] == ']')
        snprintf(l->addr, sizeof l->addr, "%.*s", (int)(hl - 2), t->host + 1);
    else
        snprintf(l->addr, sizeof l->addr, "%s", t->host);
    int v6 = strchr(l->addr, ':') != NULL;
    int dflt = t->port == (t->tls ? 443 : 80);
    if (dflt)
        snprintf(l->hosthdr, sizeof l->hosthdr, v6 ? "[%s]" : "%s", l->addr);
    else
        snprintf(l->hosthdr, sizeof l->hosthdr, v6 ? "[%s]:%d" : "%s:%d", l->addr, t->port);
    /* bytes >= 0x80 (UTF-8 names) are %-encoded in the request line, which is ASCII */
    const char *tp = t->path[0] ? t->path : "/";
    size_t po = 0;
    for (; *tp && po + 4 < sizeof l->path; tp++) {
        unsigned char ch = (unsigned char)*tp;
        if (ch >= 0x80)
            po += (size_t)snprintf(l->path + po, sizeof l->path - po, "%%%02X", ch);
        else
            l->path[po++] = (char)ch;
    }
    l->path[po] = '\0';
    l->reconnect_max_ms = o && o->reconnect_max_ms > 0 ? o->reconnect_max_ms
                                                       : WS_DEFAULT_RECONNECT_MS;
    if (l->reconnect_max_ms < 10)
        l->reconnect_max_ms = 10;
    l->refs = 0;

    l->msg.buf = malloc(256 + WS_MSG_MAX);
    l->frag = malloc(LWS_PRE + WS_FRAG_MAX + 512);
    l->rx = malloc(WS_RX_MAX);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&l->cond, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&l->mu, NULL);
    if (!l->msg.buf || !l->frag || !l->rx) {
        link_free(l);
        return -ENOMEM;
    }

    const char *ca_file = o && o->ca_file[0] ? o->ca_file : getenv("PIREC_WS_CA_FILE");
    if (t->tls && ca_file && ca_file[0]) {
        /* a CA file that cannot work is a clear error now, not a vague TLS failure later */
        FILE *f = fopen(ca_file, "r");
        X509 *x = f ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
        int e = errno;
        if (f)
            fclose(f);
        X509_free(x);
        if (!x) {
            log_err("record", "%s:%d: CA file \"%s\" %s%s", l->host, l->port, ca_file,
                    f ? "holds no PEM certificate" : "cannot be read: ",
                    f ? "" : strerror(e));
            link_free(l);
            return -EINVAL;
        }
        snprintf(l->ca_file, sizeof l->ca_file, "%s", ca_file);
    }
    if (o && o->has_pin) {
        l->has_pin = 1;
        memcpy(l->pin, o->pin, 32);
    }
    const char *ins = getenv("PIREC_WS_TLS_INSECURE_FOR_TESTS");
    if (t->tls && ins && ins[0] == '1') {
        l->insecure = 1;
        log_warn("record", "%s:%d: PIREC_WS_TLS_INSECURE_FOR_TESTS=1: the server's certificate "
                 "is NOT verified (for tests only)", l->host, l->port);
    }
    struct lws_context_creation_info ci;
    memset(&ci, 0, sizeof ci);
    ci.port = CONTEXT_PORT_NO_LISTEN;
    ci.protocols = link_protocols;
    ci.user = l;
    ci.gid = -1;
    ci.uid = -1;
    ci.fd_limit_per_thread = 16;
    if (t->tls) {
        ci.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
        if (ca_file && ca_file[0])
            ci.client_ssl_ca_filepath = ca_file;
    }
    l->ctx = lws_create_context(&ci);
    if (!l->ctx) {
        log_err("record", "%s://%s:%d: cannot create the WebSocket client context%s",
                scheme(l), l->host, l->port,
                ca_file ? " (check PIREC_WS_CA_FILE)" : "");
        link_free(l);
        return -ENOMEM;
    }
    int rc = pthread_create(&l->thread, NULL, link_thread, l);
    if (rc) {
        lws_context_destroy(l->ctx);
        link_free(l);
        return -rc;
    }
    *out = l;
    return 0;
}

static void link_stop(struct ws_link *l)
{
    /* Wake the service thread while holding mu: it reads stop under mu, so it cannot see
     * it and destroy the context before lws_cancel_service() has returned. */
    pthread_mutex_lock(&l->mu);
    l->stop = 1;
    lws_cancel_service(l->ctx);
    pthread_mutex_unlock(&l->mu);
    pthread_join(l->thread, NULL);
    link_free(l);
}

/* ---- public API ------------------------------------------------------------------ */

/* Streams share a link only with the same TLS settings (CA file, pin). */
static int same_tls(const struct ws_link *l, const struct ws_target *t,
                    const struct ws_options *o)
{
    if (!t->tls)
        return 1;
    const char *ca = o && o->ca_file[0] ? o->ca_file : getenv("PIREC_WS_CA_FILE");
    int has_pin = o && o->has_pin;
    return !strcmp(l->ca_file, ca ? ca : "") && l->has_pin == has_pin &&
           (!has_pin || !memcmp(l->pin, o->pin, 32));
}

int ws_stream_open(const struct ws_target *t, const struct ws_options *opt, struct ws_stream **out)
{
    if (!out)
        return -EINVAL;
    *out = NULL;
    if (!t || !t->host[0] || t->port <= 0 || t->port > 65535) {
        log_err("record", "ws:// target needs a host and a port 1-65535");
        return -EINVAL;
    }
    const char *why;
    if (wsproto_name_check(t->name, strnlen(t->name, sizeof t->name), &why)) {
        char esc[1100];
        wsproto_name_escape(t->name, strnlen(t->name, sizeof t->name), esc, sizeof esc);
        log_err("record", "ws stream name '%s' is refused: %s (docs/protocol.md, names)", esc,
                why);
        return -EINVAL;
    }
    pthread_once(&log_once, log_init);

    uint64_t cap = opt && opt->buffer_bytes ? opt->buffer_bytes : WS_DEFAULT_BUF;
    struct ws_stream *s = calloc(1, sizeof *s);
    if (!s)
        return -ENOMEM;
    s->ring = cap <= SIZE_MAX ? malloc((size_t)cap) : NULL;
    if (!s->ring) {
        log_err("record", "cannot allocate a %llu-byte buffer for ws stream %s",
                (unsigned long long)cap, t->name);
        free(s);
        return -ENOMEM;
    }
    s->cap = cap;
    snprintf(s->name, sizeof s->name, "%s", t->name);
    s->name_len = strlen(s->name);

    pthread_mutex_lock(&reg_mu);
    struct ws_link *l = reg_links;
    while (l && !(l->tls == t->tls && l->port == t->port && !strcasecmp(l->host, t->host) &&
                  same_tls(l, t, opt)))
        l = l->next;
    if (l) {
        pthread_mutex_lock(&l->mu);
        int dup = find_stream(l, s->name) != NULL;
        pthread_mutex_unlock(&l->mu);
        if (dup) {
            pthread_mutex_unlock(&reg_mu);
            log_err("record", "%s://%s:%d already has a stream named %s: two streams would "
                    "write into the same file; use another name", scheme(l), l->host, l->port,
                    s->name);
            free(s->ring);
            free(s);
            return -EEXIST;
        }
    } else {
        int rc = link_create(t, opt, &l);
        if (rc) {
            pthread_mutex_unlock(&reg_mu);
            free(s->ring);
            free(s);
            return rc;
        }
        l->next = reg_links;
        reg_links = l;
    }
    l->refs++;
    s->link = l;
    pthread_mutex_lock(&l->mu);
    if (l->connected) {
        s->ever_connected = 1;
        s->sync = l->mode == MODE_LEGACY ? SYNC_OK : SYNC_NONE;
    }
    /* append: older streams keep their place in the round robin */
    struct ws_stream **pp = &l->streams;
    while (*pp)
        pp = &(*pp)->next;
    *pp = s;
    pthread_mutex_unlock(&l->mu);
    pthread_mutex_unlock(&reg_mu);
    lws_cancel_service(l->ctx);
    *out = s;
    return 0;
}

int ws_stream_write(struct ws_stream *s, const void *data, size_t len, int wait_ms)
{
    if (!s || (!data && len))
        return -EINVAL;
    struct ws_link *l = s->link;
    const unsigned char *p = data;
    struct timespec dl;
    if (wait_ms > 0)
        deadline_after_ms(&dl, wait_ms);
    int rc = 0;
    pthread_mutex_lock(&l->mu);
    while (len) {
        if (s->fatal) {
            rc = s->fatal;
            break;
        }
        if (s->aborted) {
            rc = -ECANCELED;
            break;
        }
        size_t chunk = (uint64_t)len > s->cap ? (size_t)s->cap : len;
        while (s->head - s->tail + chunk > s->cap && !s->aborted && !s->fatal && wait_ms != 0) {
            lws_cancel_service(l->ctx);   /* what we queued so far must get moving */
            if (wait_ms < 0)
                pthread_cond_wait(&l->cond, &l->mu);
            else if (pthread_cond_timedwait(&l->cond, &l->mu, &dl) == ETIMEDOUT)
                break;
        }
        if (s->aborted) {
            rc = -ECANCELED;
            break;
        }
        if (s->head - s->tail + chunk > s->cap)
            evict(s, s->head - s->tail + chunk - s->cap);
        ring_put(s, p, chunk);
        p += chunk;
        len -= chunk;
    }
    pthread_mutex_unlock(&l->mu);
    lws_cancel_service(l->ctx);
    return rc;
}

int ws_stream_drain(struct ws_stream *s, int timeout_ms)
{
    if (!s)
        return -EINVAL;
    struct ws_link *l = s->link;
    struct timespec dl;
    if (timeout_ms >= 0)
        deadline_after_ms(&dl, timeout_ms);
    lws_cancel_service(l->ctx);
    int rc = 0;
    pthread_mutex_lock(&l->mu);
    for (;;) {
        if (s->fatal) {
            rc = s->fatal;
            break;
        }
        if (s->aborted) {
            rc = -ECANCELED;
            break;
        }
        if (stream_done(s))
            break;
        if (timeout_ms < 0) {
            pthread_cond_wait(&l->cond, &l->mu);
        } else if (pthread_cond_timedwait(&l->cond, &l->mu, &dl) == ETIMEDOUT) {
            rc = stream_done(s) ? 0 : -ETIMEDOUT;
            break;
        }
    }
    pthread_mutex_unlock(&l->mu);
    return rc;
}

void ws_stream_abort(struct ws_stream *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&s->link->mu);
    s->aborted = 1;
    pthread_cond_broadcast(&s->link->cond);
    pthread_mutex_unlock(&s->link->mu);
}

void ws_stream_get_stats(struct ws_stream *s, struct ws_stream_stats *st)
{
    if (!st)
        return;
    memset(st, 0, sizeof *st);
    if (!s)
        return;
    struct ws_link *l = s->link;
    pthread_mutex_lock(&l->mu);
    st->queued = s->head;
    st->sent = s->sent;
    st->acked = s->acked;
    st->lost = s->lost;
    uint64_t done = s->acked + s->lost;
    st->pending = s->head > done ? s->head - done : 0;
    st->reconnects = s->reconnects;
    st->stalls = l->stalls;
    st->connected = l->connected && s->sync == SYNC_OK;
    st->resumable = l->mode == MODE_RESUME;
    st->error = s->error;
    pthread_mutex_unlock(&l->mu);
}

void ws_stream_close(struct ws_stream *s)
{
    if (!s)
        return;
    struct ws_link *l = s->link;
    int last = 0;
    pthread_mutex_lock(&reg_mu);
    pthread_mutex_lock(&l->mu);
    struct ws_stream **pp = &l->streams;
    while (*pp && *pp != s)
        pp = &(*pp)->next;
    if (*pp)
        *pp = s->next;
    if (l->rr == s)
        l->rr = NULL;
    if (l->msg.owner == s)
        l->msg.owner = NULL;   /* the message in flight still completes */
    uint64_t done = s->acked + s->lost;
    if (s->head > done) {
        s->lost += s->head - done;
        s->lost_unlogged += s->head - done;
        log_loss(s, "at close (not delivered; drain before closing)", 1);
    } else {
        log_loss(s, "(the buffer was full)", 1);
    }
    pthread_mutex_unlock(&l->mu);
    if (--l->refs == 0) {
        struct ws_link **lp = &reg_links;
        while (*lp && *lp != l)
            lp = &(*lp)->next;
        if (*lp)
            *lp = l->next;
        last = 1;
    }
    pthread_mutex_unlock(&reg_mu);
    if (last)
        link_stop(l);
    free(s->ring);
    free(s);
}
