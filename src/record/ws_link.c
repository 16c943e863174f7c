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
 * freed once its last fragment has been handed to the socket; when such a connection drops,
 * what it carried is counted as lost (ws_link_conn.c).
 *
 * Files: this one has the registry, the streams' buffers and the public API;
 * ws_link_conn.c the connection and the lws callback; ws_link_send.c what goes out next
 * and the control messages; ws_link_int.h what they share.
 */
#include "record/ws_link.h"

#include "common/log.h"
#include "common/timeutil.h"
#include "record/ws_link_int.h"
#include "record/wsproto.h"

#include <errno.h>
#include <jansson.h>
#include <libwebsockets.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <time.h>

static pthread_mutex_t reg_mu = PTHREAD_MUTEX_INITIALIZER;
static struct ws_link *reg_links;
static pthread_once_t log_once = PTHREAD_ONCE_INIT;

const char *wsl_scheme(const struct ws_link *l)
{
    return l->tls ? "wss" : "ws";
}

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

void wsl_log_init(void) { lws_set_log_level(LLL_ERR | LLL_WARN, lws_log_emit); }

/* ---- ring ---------------------------------------------------------------------- */

static void ring_put(struct ws_stream *s, const unsigned char *p, size_t n)
{
    uint64_t at = s->head % s->cap;
    size_t first = (size_t)(s->cap - at) < n ? (size_t)(s->cap - at) : n;
    memcpy(s->ring + at, p, first);
    memcpy(s->ring, p + first, n - first);
    s->head += n;
}

/* Drops the k oldest held bytes. Bytes never sent are lost for sure and counted now;
 * bytes already sent may be stored by the server: the next stat decides (wsl_resync()). */
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
int wsl_stream_done(const struct ws_stream *s)
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

/* Loss is logged once per outage (at the wsl_resync), at close, and while connected at most
 * every WS_LOSS_LOG_MS: never once per chunk. Under mu. */
void wsl_log_loss(struct ws_stream *s, const char *when, int force)
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
             wsl_scheme(s->link), s->link->host, s->link->port, s->name,
             (unsigned long long)s->lost_unlogged, when);
    s->lost_unlogged = 0;
}

/* ---- link lifetime (reg_mu held by callers) --------------------------------------- */

static void link_free(struct ws_link *l)
{
    wsl_legacy_unconfirmed_lost(l, "the link closed");
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

    l->msg.buf = malloc(2 * WS_FRAME_HDR_MAX + 256 + WS_MSG_MAX);
    l->frag = malloc(LWS_PRE + WS_FRAME_HDR_MAX + WS_CTL_MAX);
    ws_keys_init(&l->keys);
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
    ci.protocols = wsl_link_protocols;
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
                wsl_scheme(l), l->host, l->port,
                ca_file ? " (check PIREC_WS_CA_FILE)" : "");
        link_free(l);
        return -ENOMEM;
    }
    int rc = pthread_create(&l->thread, NULL, wsl_link_thread, l);
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
    pthread_once(&log_once, wsl_log_init);

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
        int dup = wsl_find_stream(l, s->name) != NULL;
        pthread_mutex_unlock(&l->mu);
        if (dup) {
            pthread_mutex_unlock(&reg_mu);
            log_err("record", "%s://%s:%d already has a stream named %s: two streams would "
                    "write into the same file; use another name", wsl_scheme(l), l->host, l->port,
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
    if (len)
        s->finishing = 0;
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

/* Under mu. Everything queued is delivered. For a finishing stream on a legacy server
 * that also means confirmed, which only the link's clean close can do (ws_link.h,
 * ws_stream_finish): when every stream of the link has finished, request that close and
 * wait for it; while others still use the link, the stream's bytes on the socket become
 * unconfirmed (pending, not acked) and the wait ends. */
static int delivered(struct ws_link *l, struct ws_stream *s, int finish)
{
    if (!wsl_stream_done(s))
        return 0;
    if (!finish || l->mode != MODE_LEGACY || !l->connected)
        return 1;
    s->finishing = 1;
    int all = 1, carried = l->fates != NULL;
    for (const struct ws_stream *t = l->streams; t; t = t->next) {
        if (!t->finishing || !wsl_stream_done(t))
            all = 0;
        if (t->conn_acked || t->unconfirmed)
            carried = 1;
    }
    if (!carried)
        return 1;
    if (all) {
        if (l->fin == FIN_NONE) {
            l->fin = FIN_REQ;
            lws_cancel_service(l->ctx);
        }
        return 0;
    }
    if (s->conn_acked) {
        s->acked -= s->conn_acked;
        s->unconfirmed += s->conn_acked;
        s->conn_acked = 0;
    }
    return 1;
}

static int drain(struct ws_stream *s, int timeout_ms, int finish)
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
        if (delivered(l, s, finish))
            break;
        if (timeout_ms < 0) {
            pthread_cond_wait(&l->cond, &l->mu);
        } else if (pthread_cond_timedwait(&l->cond, &l->mu, &dl) == ETIMEDOUT) {
            rc = delivered(l, s, finish) ? 0 : -ETIMEDOUT;
            break;
        }
    }
    pthread_mutex_unlock(&l->mu);
    return rc;
}

int ws_stream_drain(struct ws_stream *s, int timeout_ms)
{
    return drain(s, timeout_ms, 0);
}

int ws_stream_finish(struct ws_stream *s, int timeout_ms)
{
    return drain(s, timeout_ms, 1);
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
    st->unconfirmed = s->unconfirmed;
    st->reconnects = s->reconnects;
    st->stalls = l->stalls;
    st->connected = l->connected && s->sync == SYNC_OK;
    st->resumable = l->mode == MODE_RESUME;
    st->error = s->error;
    st->have_server_size = s->have_base && l->mode == MODE_RESUME;
    st->server_size = s->acked_file;
    snprintf(st->last_failure, sizeof st->last_failure, "%s", l->last_failure);
    pthread_mutex_unlock(&l->mu);
}

void ws_stream_close(struct ws_stream *s)
{
    ws_stream_close_fate(s, NULL);
}

void ws_stream_close_fate(struct ws_stream *s, struct ws_fate **fate)
{
    if (fate)
        *fate = NULL;
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
    uint64_t kept = s->unconfirmed;
    if (s->unconfirmed) {   /* the link decides their fate */
        struct ws_fate *f = wsl_fate_new(l, s, fate != NULL);
        if (f) {
            if (fate)
                *fate = f;
            s->unconfirmed = 0;
        } else {
            kept = 0;   /* counted as lost below */
        }
    }
    uint64_t done = s->acked + s->lost + kept;
    if (s->head > done) {
        s->lost += s->head - done;
        s->lost_unlogged += s->head - done;
        wsl_log_loss(s, "at close (not delivered; drain before closing)", 1);
    } else {
        wsl_log_loss(s, "(the buffer was full)", 1);
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

