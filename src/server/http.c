/* http: libmicrohttpd glue: admission, dispatch, worker jobs, shutdown. See http.h. */
#include "server/http.h"

#include "common/listen_addr.h"
#include "common/log.h"
#include "server/api.h"
#include "server/api_json.h"
#include "server/conn_guard.h"
#include "server/http_files.h"
#include "server/listener.h"
#include "server/origin.h"
#include "server/routes.h"
#include "server/sse.h"
#include "server/workers.h"

#include <errno.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define BODY_MAX       4096           /* no route needs a body; tiny POSTs only */
#define CONN_MEMORY    (128 * 1024)   /* headers + the SSE write buffer */
#define CONTROL_THREADS 2             /* start/stop: never queued behind a listing */
#define LIBRARY_THREADS 2             /* list/delete */
#define LIBRARY_QUEUE   16            /* listings waiting past this: 503 */

struct http_server {
    struct MHD_Daemon *d;
    struct recorder *rec;
    struct event_hub *hub;
    struct sse_server *sse;
    struct listener *listener;
    struct conn_guard *guard;
    struct workers *control;    /* start, stop */
    struct workers *library;    /* list, delete */
    struct origin_policy origins;
    /* Held for reading around every recorder call; http_quiesce takes it for writing. */
    pthread_rwlock_t api_lock;
    int quiesced;
};

enum job_state { JOB_NONE, JOB_QUEUED, JOB_DONE };

/* One request, from its headers to its completion. */
struct request {
    struct http_server *srv;
    struct MHD_Connection *conn;
    struct guard_conn *gc;
    size_t body;
    int stream;                 /* holds an event-stream slot */
    enum job_state job;
    struct route route;
    char token[JWT_MAX];        /* copies for the worker: the route's, Bearer or ?token= */
    char client[256];
    int has_token, has_client, token_malformed;
    char now[32];               /* ?now= of /api/clock */
    int has_now;
    struct api_reply reply;     /* a worker's answer */
    struct recorder_presence *presence;   /* an event stream's binding to leases */
};

/* ---- inputs ------------------------------------------------------------------------- */

/* The lease token: from the path, else Authorization: Bearer, else ?token=. NULL if none;
 * *bad set when one was given but cannot be a token. */
static const char *find_token(struct MHD_Connection *c, const struct route *r, int *bad)
{
    *bad = 0;
    if (r->token[0])
        return r->token;
    const char *t = NULL;
    const char *auth = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
    if (auth && strncasecmp(auth, "Bearer ", 7) == 0) {
        t = auth + 7;
        while (*t == ' ')
            t++;
    }
    if (!t)
        t = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "token");
    if (t && !route_valid_token(t)) {
        *bad = 1;
        return NULL;
    }
    return t;
}

/* Copies what the API needs out of the connection into rq (a worker may run it). */
static void collect(struct MHD_Connection *c, struct request *rq)
{
    const struct route *r = &rq->route;
    if (r->needs_token) {
        const char *t = find_token(c, r, &rq->token_malformed);
        if (t) {
            snprintf(rq->token, sizeof(rq->token), "%s", t);
            rq->has_token = 1;
        }
    }
    if (r->action == ROUTE_CLOCK) {
        const char *v = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "now");
        if (v) {
            snprintf(rq->now, sizeof(rq->now), "%s", v);
            rq->has_now = 1;
        }
    }
    if (r->action == ROUTE_TAKE || r->action == ROUTE_TAKEOVER) {
        const char *cl = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "client");
        if (cl) {
            snprintf(rq->client, sizeof(rq->client), "%s", cl);
            rq->has_client = 1;
        }
    }
}

static void answer(struct http_server *s, struct request *rq, struct api_reply *out)
{
    struct api_request a = {
        .route = &rq->route,
        .token = rq->has_token ? rq->token : NULL,
        .token_malformed = rq->token_malformed,
        .client = rq->has_client ? rq->client : NULL,
        .now = rq->has_now ? rq->now : NULL,
    };
    api_handle(s->rec, &a, out);
}

static int state_changing(enum route_action a)
{
    return a == ROUTE_TAKE || a == ROUTE_TAKEOVER || a == ROUTE_RENEW || a == ROUTE_RELEASE ||
           a == ROUTE_START || a == ROUTE_CLOCK ||
           a == ROUTE_STOP || a == ROUTE_DELETE;
}

/* ---- handlers ----------------------------------------------------------------------- */

static json_t *status_for_stream(void *arg)
{
    struct http_server *s = arg;
    return api_json_status_of(s->rec);
}

/* The ?token= arguments of an event stream (at most 8: one per device a page holds). */
struct stream_tokens {
    const char *t[8];
    size_t n;
};

static enum MHD_Result collect_stream_token(void *cls, enum MHD_ValueKind kind,
                                            const char *key, const char *value)
{
    struct stream_tokens *st = cls;
    if (key && value && strcmp(key, "token") == 0 && st->n < 8)
        st->t[st->n++] = value;
    return MHD_YES;
}

static enum MHD_Result do_events(struct http_server *s, struct MHD_Connection *c,
                                 struct request *rq)
{
    int rc = guard_stream_open(s->guard, rq->gc);
    if (rc < 0) {
        return http_send_refusal(c, rc == -EUSERS ? API_CLIENT_STREAMS_FULL : API_STREAMS_FULL);
    }
    rq->stream = 1;
    const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Last-Event-ID");
    if (!h)
        h = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "lastEventId");
    uint64_t last = 0;
    if (h && h[0] && http_parse_u64(h, h + strlen(h), &last) < 0)
        last = 0;   /* not one of ours: treat as a new client */
    struct MHD_Response *resp = NULL;
    rc = sse_stream_response(s->sse, c, last, status_for_stream, s, &resp);
    if (rc < 0)
        return http_send_refusal(c, rc == -ESHUTDOWN ? API_SHUTTING_DOWN : API_SUBSCRIBE_FAILED);
    enum MHD_Result ret = MHD_queue_response(c, MHD_HTTP_OK, resp);
    MHD_destroy_response(resp);
    /* The page's holder is connected while this stream is open (docs/api.md, presence). */
    struct stream_tokens toks = {.n = 0};
    MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, collect_stream_token, &toks);
    if (ret == MHD_YES && toks.n)
        rq->presence = recorder_presence_open(s->rec, toks.t, toks.n);
    return ret;
}

/* A worker: the slow answer, then the connection goes on. */
static void run_job(void *arg)
{
    struct request *rq = arg;
    struct http_server *s = rq->srv;
    pthread_rwlock_rdlock(&s->api_lock);
    if (s->quiesced)
        api_refuse(&rq->reply, API_SHUTTING_DOWN);
    else
        answer(s, rq, &rq->reply);
    pthread_rwlock_unlock(&s->api_lock);
    rq->job = JOB_DONE;
    MHD_resume_connection(rq->conn);
}

/* Suspends the connection and hands the request to a worker (api_lock held). Listing
 * 3000 takes opens 3000 files: those jobs have their own threads and a bounded queue,
 * so that a stop never waits behind other clients' listings. */
static enum MHD_Result start_job(struct http_server *s, struct MHD_Connection *c,
                                 struct request *rq)
{
    int control = rq->route.action == ROUTE_START || rq->route.action == ROUTE_STOP;
    struct workers *w = control ? s->control : s->library;
    if (!control && workers_pending(w) >= LIBRARY_QUEUE)
        return http_send_refusal(c, API_LIST_BUSY);
    rq->job = JOB_QUEUED;
    MHD_suspend_connection(c);
    if (workers_submit(w, run_job, rq) < 0) {
        api_refuse(&rq->reply, API_BUSY);
        rq->job = JOB_DONE;
        MHD_resume_connection(c);
    }
    return MHD_YES;
}

static enum MHD_Result dispatch(struct http_server *s, struct MHD_Connection *c,
                                struct request *rq)
{
    const struct route *r = &rq->route;
    if (r->action == ROUTE_STATIC)
        return http_send_static(c, r);
    struct api_reply a;
    if (r->action == ROUTE_ERROR) {
        answer(s, rq, &a);
        return http_send_reply(c, &a);
    }
    enum MHD_Result ret;
    pthread_rwlock_rdlock(&s->api_lock);
    if (s->quiesced) {
        ret = http_send_refusal(c, API_SHUTTING_DOWN);
    } else if (r->action == ROUTE_EVENTS) {
        ret = do_events(s, c, rq);
    } else if (r->action == ROUTE_DOWNLOAD) {
        ret = http_send_recording(c, s->rec, s->library, r);
    } else {
        collect(c, rq);
        if (api_route_is_slow(r)) {
            ret = start_job(s, c, rq);
        } else {
            answer(s, rq, &a);
            ret = http_send_reply(c, &a);
        }
    }
    pthread_rwlock_unlock(&s->api_lock);
    return ret;
}

/* ---- libmicrohttpd callbacks ---------------------------------------------------------- */

/* The first call of a request: its headers are in. */
static enum MHD_Result begin_request(struct http_server *s, struct MHD_Connection *c,
                                     void **con_cls)
{
    struct request *rq = calloc(1, sizeof *rq);
    if (!rq)
        return MHD_NO;
    *con_cls = rq;
    rq->srv = s;
    rq->conn = c;
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    rq->gc = ci ? ci->socket_context : NULL;
    if (guard_request_began(s->guard, rq->gc) < 0)
        return MHD_NO;   /* answered 408 already */
    const char *host = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Host");
    if (!origin_host_allowed(&s->origins, host)) {
        log_debug("http", "refused Host '%.100s' from %s", host, guard_conn_address(rq->gc));
        return http_send_refusal(c, API_UNKNOWN_HOST);
    }
    /* Refuse a big body before reading it (a response can be queued now, not while the
     * upload is under way). */
    const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
    uint64_t n;
    if (cl && (http_parse_u64(cl, cl + strlen(cl), &n) < 0 || n > BODY_MAX))
        return http_send_refusal(c, API_BODY_TOO_LARGE);
    return MHD_YES;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
    struct http_server *s = cls;
    struct request *rq = *con_cls;
    if (!rq)
        return begin_request(s, c, con_cls);
    if (*upload_data_size) {
        rq->body += *upload_data_size;
        *upload_data_size = 0;
        /* chunked and too big: nothing useful to say mid-upload, hang up */
        return rq->body > BODY_MAX ? MHD_NO : MHD_YES;
    }
    if (rq->job == JOB_DONE)
        return http_send_reply(c, &rq->reply);   /* a worker answered; resumed */
    if (rq->job == JOB_QUEUED)
        return MHD_YES;
    route_parse(method, url, &rq->route);
    if (plog_get_level() >= PLOG_DEBUG) {
        char masked[ROUTE_PATH_MAX + 8];
        route_mask_path(url, masked, sizeof masked);
        log_debug("http", "%s %s -> %d", method, masked,
                  rq->route.action == ROUTE_ERROR ? rq->route.status : 0);
    }
    if (state_changing(rq->route.action) &&
        !origin_same_origin(MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Host"),
                            MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Origin"),
                            MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Sec-Fetch-Site"),
                            MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Referer")))
        return http_send_refusal(c, API_CROSS_ORIGIN);
    return dispatch(s, c, rq);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct http_server *s = cls;
    struct request *rq = *con_cls;
    if (!rq)
        return;
    if (rq->stream)
        guard_stream_close(s->guard, rq->gc);
    if (rq->presence) {
        /* After http_quiesce the recorder may be gone: only the binding's memory is freed. */
        pthread_rwlock_rdlock(&s->api_lock);
        recorder_presence_close(s->quiesced ? NULL : s->rec, rq->presence);
        pthread_rwlock_unlock(&s->api_lock);
    }
    guard_request_ended(s->guard, rq->gc);
    api_reply_free(&rq->reply);
    free(rq);
    *con_cls = NULL;
}

static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
    struct http_server *s = cls;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        *socket_context = ci ? guard_find(s->guard, ci->connect_fd) : NULL;
    } else {
        guard_closed(s->guard, *socket_context);
        *socket_context = NULL;
    }
}

static int hexval(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}
static size_t unescape(void *cls, struct MHD_Connection *c, char *s)
{
    char *w = s;
    for (const char *p = s; *p;) {
        int hi, lo;
        if (p[0] == '%' && (hi = hexval(p[1])) >= 0 && (lo = hexval(p[2])) >= 0) {
            int v = hi * 16 + lo;
            *w++ = v ? (char)v : 0x7f;
            p += 3;
        } else {
            *w++ = *p++;
        }
    }
    *w = '\0';
    return (size_t)(w - s);
}

/* libmicrohttpd's complaints are about clients (bad request lines, resets): debug only,
 * so that strangers cannot flood the log. conn_guard.c logs a summary of refusals. */
static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    if (plog_get_level() < PLOG_DEBUG)
        return;
    char line[512];
    vsnprintf(line, sizeof line, fmt, ap);
    size_t n = strlen(line);
    while (n && line[n - 1] == '\n')
        line[--n] = '\0';
    log_debug("http", "libmicrohttpd: %s", line);
}

/* ---- accepting ------------------------------------------------------------------------ */

/* A socket pirec will not serve: say why (503), then close it. */
static void refuse(int fd, const char *response)
{
    char sink[4096];
    /* What the client already sent would turn our close into a reset that can destroy
     * the answer before it is read: take it first. */
    for (int i = 0; i < 16 && recv(fd, sink, sizeof sink, MSG_DONTWAIT) > 0; i++)
        ;
    (void)!send(fd, response, strlen(response), MSG_DONTWAIT | MSG_NOSIGNAL);
    shutdown(fd, SHUT_WR);
    close(fd);
}

static int on_accept(int fd, const struct sockaddr *addr, socklen_t len, void *arg)
{
    struct http_server *s = arg;
    struct guard_conn *gc = NULL;
    int rc = guard_admit(s->guard, fd, addr, len, &gc);
    if (rc < 0)
        refuse(fd, guard_refusal_response(s->guard, rc));
    return rc;   /* 0: the listener holds it until its request line is in */
}

static void on_first_line(int fd, const char *line, size_t len, int too_long, void *arg)
{
    struct http_server *s = arg;
    struct guard_conn *gc = guard_find(s->guard, fd);
    if (line && route_request_line_ok(line, len)) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof ss;
        if (getpeername(fd, (struct sockaddr *)&ss, &sl) < 0) {
            guard_closed(s->guard, gc);
            close(fd);
            return;
        }
        if (MHD_add_connection(s->d, fd, (struct sockaddr *)&ss, sl) != MHD_YES)
            guard_closed(s->guard, gc);   /* libmicrohttpd closed the socket */
        return;
    }
    guard_closed(s->guard, gc);
    if (line || too_long)
        refuse(fd, guard_refusal_response(s->guard, -EBADMSG));
    else
        close(fd);                   /* gone, or shut down by the header deadline */
}

/* ---- lifecycle ---------------------------------------------------------------------- */

static void free_server(struct http_server *s)
{
    listener_close(s->listener);
    /* Queued jobs run (their connections resume); later ones are refused (-ESHUTDOWN)
     * but the pools stay valid until libmicrohttpd, which may still ask, has stopped. */
    workers_stop(s->control);
    workers_stop(s->library);
    if (s->sse)
        sse_close_all(s->sse, 2000);
    if (s->d)
        MHD_stop_daemon(s->d);
    workers_destroy(s->control);
    workers_destroy(s->library);
    if (s->sse)
        sse_server_destroy(s->sse);
    guard_destroy(s->guard);
    pthread_rwlock_destroy(&s->api_lock);
    free(s);
}

int http_start(struct http_server **out, const struct http_options *opt,
               struct recorder *rec, struct event_hub *hub)
{
    char host[256], err[200];
    unsigned port;
    if (listen_addr_parse(opt->listen, host, sizeof host, &port) < 0) {
        log_err("http", "bad listen address '%s' (want ADDR:PORT, [IPV6]:PORT, :PORT or PORT)",
                opt->listen);
        return -EINVAL;
    }
    struct http_server *s = calloc(1, sizeof *s);
    if (!s)
        return -ENOMEM;
    s->rec = rec;
    s->hub = hub;
    pthread_rwlock_init(&s->api_lock, NULL);
    int rc = origin_policy_init(&s->origins, opt->allowed_hosts, err, sizeof err);
    if (rc < 0) {
        log_err("http", "allowed_hosts: %s", err);
        goto fail;
    }
    struct conn_limits lim = {
        .max_connections = opt->max_connections,
        .max_per_client = opt->max_connections_per_client,
        .max_streams = opt->max_event_streams,
        .max_streams_per_client = opt->max_event_streams_per_client,
        .header_timeout_ms = (opt->header_timeout_s ? opt->header_timeout_s : 10) * 1000,
    };
    if ((rc = guard_create(&s->guard, &lim)) < 0 ||
        (rc = workers_create(&s->control, CONTROL_THREADS, "http-ctl")) < 0 ||
        (rc = workers_create(&s->library, LIBRARY_THREADS, "http-lib")) < 0 ||
        (rc = sse_server_create(&s->sse, hub, opt->heartbeat_ms)) < 0 ||
        (rc = listener_open(&s->listener, host, port)) < 0)
        goto fail;
    unsigned limit = (opt->max_connections ? opt->max_connections : 256) + 16;
    s->d = MHD_start_daemon(
        MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_ITC | MHD_ALLOW_SUSPEND_RESUME |
        MHD_USE_ERROR_LOG | MHD_USE_NO_LISTEN_SOCKET,
        0, NULL, NULL, on_request, s,
        MHD_OPTION_EXTERNAL_LOGGER, mhd_log, s,   /* first, so every message goes through it */
        MHD_OPTION_CONNECTION_LIMIT, limit,       /* above conn_guard's: it answers first */
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)(opt->timeout_s ? opt->timeout_s : 60),
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)CONN_MEMORY,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
        MHD_OPTION_NOTIFY_CONNECTION, on_connection, s,
        MHD_OPTION_UNESCAPE_CALLBACK, unescape, s,
        MHD_OPTION_END);
    if (!s->d) {
        rc = -ENOMEM;
        log_err("http", "libmicrohttpd did not start");
        goto fail;
    }
    rc = listener_start(s->listener, on_accept, on_first_line, s);
    if (rc < 0)
        goto fail;
    *out = s;
    return 0;
fail:
    free_server(s);
    return rc;
}

uint16_t http_port(const struct http_server *s)
{
    return listener_port(s->listener);
}

const char *http_address(const struct http_server *s)
{
    return listener_address(s->listener);
}

void http_quiesce(struct http_server *s)
{
    if (!s)
        return;
    pthread_rwlock_wrlock(&s->api_lock);
    s->quiesced = 1;
    pthread_rwlock_unlock(&s->api_lock);
}

void http_stop(struct http_server *s)
{
    if (!s)
        return;
    /* No new connections; no new call into the recorder; the workers' queued answers
     * (503 now) resume their connections; parked SSE connections are resumed: then
     * libmicrohttpd can stop (it refuses to with suspended connections). */
    listener_close(s->listener);
    s->listener = NULL;
    http_quiesce(s);
    free_server(s);
}
