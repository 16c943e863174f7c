/*
 * ws_link_conn: the connection of a WebSocket link: connecting and reconnecting with
 * backoff, liveness (pings only for peers that answer them, TCP keep-alive otherwise), the
 * reconnect watchdog, what a drop or a close code means, certificate checks, and the lws
 * callback. Everything here runs on the link's service thread. See ws_link.c.
 */
#include "record/ws_link.h"

#include "common/log.h"
#include "common/timeutil.h"
#include "record/ws_link_int.h"
#include "record/wsproto.h"

#include <errno.h>
#include <jansson.h>
#include <libwebsockets.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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
              "healthy connection)", wsl_scheme(l), l->host, l->port, (unsigned long long)ms,
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
        log_debug("record", "%s://%s:%d: TCP keep-alive not fully set: %s", wsl_scheme(l), l->host,
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
    int idle = l->idle_closed;
    if (!stop && !idle && !l->att && !l->retry_pending)
        l->stalls++;
    pthread_mutex_unlock(&l->mu);
    if (!stop && !idle) {
        if (!l->att && !l->retry_pending) {
            log_err("record", "%s://%s:%d: reconnect watchdog: no attempt and no retry "
                    "scheduled; retrying now", wsl_scheme(l), l->host, l->port);
            connect_now(l);
        } else if (l->att && !connected &&
                   mono_ms() - l->att_started_ms > WS_HANDSHAKE_MAX_S * 1000) {
            log_warn("record", "%s://%s:%d: no handshake after %d s; trying again", wsl_scheme(l),
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
        log_info("record", "%s://%s:%d: connected%s (%s server)", wsl_scheme(l), l->host, l->port,
                 l->ever_connected ? " again" : "", resume ? "resumable" : "legacy");
    else
        log_debug("record", "%s://%s:%d: connected (%s server)", wsl_scheme(l), l->host, l->port,
                  resume ? "resumable" : "legacy");
    l->mode = resume ? MODE_RESUME : MODE_LEGACY;
    l->connected = 1;
    l->ever_connected = 1;
    l->last_failure[0] = 0;
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
            wsl_log_loss(s, "while the server was unreachable (the buffer was full)", 1);
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
                 wsl_scheme(l), l->host, l->port, s->name, (unsigned long long)gone);
    }
    wsl_legacy_unconfirmed_lost(l, "the connection dropped");   /* ended streams, too */
}

static void on_lost(struct ws_link *l, const char *why)
{
    pthread_mutex_lock(&l->mu);
    int was = l->connected;
    l->connected = 0;
    snprintf(l->last_failure, sizeof l->last_failure, "%s", why && *why ? why : "unknown");
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
        legacy_drop_counts_lost(l);   /* nothing after a confirmed close (FIN_OK) */
    int confirmed = l->fin == FIN_OK;
    l->fin = FIN_NONE;
    if (confirmed && !wsl_link_has_data(l))
        l->idle_closed = 1;   /* we closed it on purpose: come back when data comes */
    /* Only a connection that stayed up and was not refused resets the backoff: a server
     * that accepts and then refuses (full disk, a limit) is retried ever more slowly. */
    if (was && !l->refused && mono_ms() - l->est_ms >= WS_HEALTHY_MS)
        l->tries = 0;
    for (struct ws_stream *s = l->streams; s; s = s->next) {
        s->sync = SYNC_NONE;
        if (l->mode == MODE_LEGACY)
            s->cur = s->tail;
    }
    int stopping = l->stop, idle = l->idle_closed;
    pthread_cond_broadcast(&l->cond);
    pthread_mutex_unlock(&l->mu);
    if (stopping) {
        l->done = 1;
        return;
    }
    if (idle)
        return;
    if (!l->outage_logged) {
        if (was)
            log_warn("record", "%s://%s:%d: connection lost (%s); reconnecting, data is "
                     "buffered meanwhile", wsl_scheme(l), l->host, l->port, why);
        else
            log_warn("record", "%s://%s:%d: cannot connect (%s); retrying in the background, "
                     "data is buffered meanwhile", wsl_scheme(l), l->host, l->port, why);
        l->outage_logged = 1;
    } else {
        log_debug("record", "%s://%s:%d: connect failed again (%s)", wsl_scheme(l), l->host,
                  l->port, why);
    }
    schedule_retry(l);
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
    if (l->fin == FIN_SENT) {   /* the legacy server read everything we sent: delivered */
        pthread_mutex_lock(&l->mu);
        l->fin = FIN_OK;
        wsl_legacy_confirmed(l);
        pthread_cond_broadcast(&l->cond);
        pthread_mutex_unlock(&l->mu);
        return;
    }
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
                        "(%s: %s); not retrying this stream", wsl_scheme(l), l->host, l->port,
                        s->name, code, meaning, reason);
            }
        pthread_cond_broadcast(&l->cond);
    } else {
        log_warn("record", "%s://%s:%d: the server closed the connection with code %d (%s: %s)",
                 wsl_scheme(l), l->host, l->port, code, meaning, reason);
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
                         wsl_scheme(l), l->host, l->port, WS_RX_MAX);
                l->rx_skip = 1;
            } else {
                memcpy(l->rx + l->rx_len, in, len);
                l->rx_len += len;
            }
        }
        if (lws_is_final_fragment(wsi) && l->rx_text && !l->rx_skip && l->mode == MODE_RESUME)
            wsl_handle_control(l, l->rx, l->rx_len);
        if (lws_is_final_fragment(wsi)) {
            pthread_mutex_lock(&l->mu);
            int more = wsl_link_has_work(l);
            pthread_mutex_unlock(&l->mu);
            if (more)
                lws_callback_on_writable(wsi);
        }
        break;
    case LWS_CALLBACK_CLIENT_WRITEABLE:
        if (wsi != l->att)
            return -1;
        return wsl_on_writable(l, wsi);
    case LWS_CALLBACK_EVENT_WAIT_CANCELLED: {
        /* another thread queued data, opened a stream or asked us to stop */
        pthread_mutex_lock(&l->mu);
        int connected = l->connected;
        int more = connected && wsl_link_has_work(l);
        int stop = l->stop;
        int wake = l->idle_closed && !stop && wsl_link_has_data(l);
        if (wake)
            l->idle_closed = 0;
        pthread_mutex_unlock(&l->mu);
        if (wake)
            connect_now(l);
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

const struct lws_protocols wsl_link_protocols[] = {
    /* tx_packet_size: lws sends at most this per send() (else rx_buffer_size): a whole
     * message goes out in one call */
    { "pirec-record", link_callback, 0, WS_FRAG_MAX * 2, 0, NULL,
      2 * WS_FRAME_HDR_MAX + 256 + WS_MSG_MAX },
    { NULL, NULL, 0, 0, 0, NULL, 0 }   /* 4.1 has no LWS_PROTOCOL_LIST_TERM */
};

void *wsl_link_thread(void *arg)
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

