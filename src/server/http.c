/* http: libmicrohttpd server and the handlers of docs/api.md. See http.h. */
#include "server/http.h"

#include "common/log.h"
#include "server/api.h"
#include "server/api_json.h"
#include "server/routes.h"
#include "server/sse.h"
#include "server/static_files.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <microhttpd.h>
#include <netdb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define BODY_MAX     4096           /* no route needs a body; tiny POSTs only */
#define CONN_MEMORY  (128 * 1024)   /* headers + the SSE write buffer */

static const char CSP[] =
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
    "form-action 'self'";

struct http_server {
    struct MHD_Daemon *d;
    struct recorder *rec;
    struct event_hub *hub;
    struct sse_server *sse;
    uint16_t port;
    char addr[INET6_ADDRSTRLEN];
    /* Held for reading around every recorder call; http_quiesce takes it for writing. */
    pthread_rwlock_t api_lock;
    int quiesced;
};

struct request {
    size_t body;
};

/* ---- answers ---------------------------------------------------------------------- */

static void common_headers(struct MHD_Response *resp, int api)
{
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
    if (api)
        MHD_add_response_header(resp, "Cache-Control", "no-store");
}

static enum MHD_Result queue(struct MHD_Connection *c, unsigned status, struct MHD_Response *resp)
{
    enum MHD_Result ret = MHD_queue_response(c, status, resp);
    MHD_destroy_response(resp);
    return ret;
}

/* Sends an API answer (its body is consumed). */
static enum MHD_Result send_reply(struct MHD_Connection *c, struct api_reply *a)
{
    if (!a->body)
        return MHD_NO;
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(strlen(a->body), a->body, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        api_reply_free(a);
        return MHD_NO;
    }
    a->body = NULL;
    MHD_add_response_header(resp, "Content-Type", "application/json");
    common_headers(resp, 1);
    if (a->allow)
        MHD_add_response_header(resp, "Allow", a->allow);
    return queue(c, a->status, resp);
}

static enum MHD_Result reply_error(struct MHD_Connection *c, unsigned status, const char *msg,
                                   const char *allow)
{
    struct api_reply a;
    api_error(&a, status, msg, allow);
    return send_reply(c, &a);
}

/* ---- helpers ------------------------------------------------------------------------ */

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

static int parse_u64(const char *s, const char *end, uint64_t *out)
{
    if (s == end)
        return -1;
    uint64_t v = 0;
    for (; s < end; s++) {
        if (*s < '0' || *s > '9')
            return -1;
        if (v > (UINT64_MAX - 9) / 10)
            return -1;
        v = v * 10 + (uint64_t)(*s - '0');
    }
    *out = v;
    return 0;
}

/* One "bytes=" range against size. 1 = a range (first..last), 0 = ignore the header and
 * send everything (absent, malformed or several ranges), -1 = unsatisfiable. */
static int parse_range(const char *h, uint64_t size, uint64_t *first, uint64_t *last)
{
    if (!h || strncmp(h, "bytes=", 6) != 0 || strchr(h, ','))
        return 0;
    const char *s = h + 6;
    while (*s == ' ')
        s++;
    const char *dash = strchr(s, '-');
    if (!dash)
        return 0;
    const char *end = dash + strlen(dash);
    while (end > dash + 1 && end[-1] == ' ')
        end--;
    uint64_t a, b;
    if (s == dash) {                       /* suffix: the last b bytes */
        if (parse_u64(dash + 1, end, &b) < 0)
            return 0;
        if (b == 0 || size == 0)
            return -1;
        *first = b >= size ? 0 : size - b;
        *last = size - 1;
        return 1;
    }
    if (parse_u64(s, dash, &a) < 0)
        return 0;
    if (dash + 1 == end) {
        b = UINT64_MAX;
    } else if (parse_u64(dash + 1, end, &b) < 0 || b < a) {
        return 0;
    }
    if (a >= size)
        return -1;
    *first = a;
    *last = b >= size ? size - 1 : b;
    return 1;
}

/* The first status of an event stream. */
static json_t *status_for_stream(void *arg)
{
    struct http_server *s = arg;
    return api_json_status_of(s->rec);
}

/* ---- handlers ----------------------------------------------------------------------- */

/* The API's answer to a route that is not streamed. */
static enum MHD_Result do_api(struct http_server *s, struct MHD_Connection *c,
                              const struct route *r)
{
    struct api_request rq = {.route = r};
    if (r->needs_token)
        rq.token = find_token(c, r, &rq.token_malformed);
    if (r->action == ROUTE_TAKE)
        rq.client = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "client");
    struct api_reply a;
    api_handle(s->rec, &rq, &a);
    return send_reply(c, &a);
}

static enum MHD_Result do_download(struct http_server *s, struct MHD_Connection *c,
                                   const struct route *r)
{
    int fd = -1;
    struct stat st;
    int rc = recorder_open_recording(s->rec, r->name, &fd, &st);
    if (rc < 0) {
        struct api_reply a;
        api_errno(&a, rc);
        return send_reply(c, &a);
    }
    uint64_t size = (uint64_t)st.st_size, first = 0, last = size ? size - 1 : 0;
    int ranged = parse_range(MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Range"), size,
                             &first, &last);
    char cr[96];
    if (ranged < 0) {
        close(fd);
        struct MHD_Response *resp =
            MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
        if (!resp)
            return MHD_NO;
        snprintf(cr, sizeof cr, "bytes */%" PRIu64, size);
        MHD_add_response_header(resp, "Content-Range", cr);
        common_headers(resp, 1);
        return queue(c, MHD_HTTP_RANGE_NOT_SATISFIABLE, resp);
    }
    uint64_t len = ranged ? last - first + 1 : size;
    struct MHD_Response *resp = MHD_create_response_from_fd_at_offset64(len, fd, first);
    if (!resp) {
        close(fd);
        return MHD_NO;
    }
    MHD_add_response_header(resp, "Content-Type", "audio/flac");
    MHD_add_response_header(resp, "Accept-Ranges", "bytes");
    char disp[ROUTE_NAME_MAX + 40];
    snprintf(disp, sizeof disp, "attachment; filename=\"%s\"", r->name);
    MHD_add_response_header(resp, "Content-Disposition", disp);
    common_headers(resp, 1);
    if (ranged) {
        snprintf(cr, sizeof cr, "bytes %" PRIu64 "-%" PRIu64 "/%" PRIu64, first, last, size);
        MHD_add_response_header(resp, "Content-Range", cr);
    }
    return queue(c, ranged ? MHD_HTTP_PARTIAL_CONTENT : MHD_HTTP_OK, resp);
}

static enum MHD_Result do_events(struct http_server *s, struct MHD_Connection *c)
{
    const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Last-Event-ID");
    if (!h)
        h = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "lastEventId");
    uint64_t last = 0;
    if (h && h[0] && parse_u64(h, h + strlen(h), &last) < 0)
        last = 0;   /* not one of ours: treat as a new client */
    struct MHD_Response *resp = NULL;
    int rc = sse_stream_response(s->sse, c, last, status_for_stream, s, &resp);
    if (rc < 0)
        return reply_error(c, rc == -ESHUTDOWN ? 503 : 500, "cannot subscribe", NULL);
    return queue(c, MHD_HTTP_OK, resp);
}

static enum MHD_Result do_static(struct MHD_Connection *c, const struct route *r)
{
    const struct web_asset *a = static_file_find(r->name);
    if (!a)
        return reply_error(c, 404, "not found", NULL);
    struct MHD_Response *resp = MHD_create_response_from_buffer(
        (size_t)a->size, (void *)a->data, MHD_RESPMEM_PERSISTENT);
    if (!resp)
        return MHD_NO;
    MHD_add_response_header(resp, "Content-Type", a->content_type);
    MHD_add_response_header(resp, "Content-Security-Policy", CSP);
    MHD_add_response_header(resp, "X-Frame-Options", "DENY");
    MHD_add_response_header(resp, "Cache-Control", "no-cache");
    common_headers(resp, 0);
    return queue(c, MHD_HTTP_OK, resp);
}

static enum MHD_Result dispatch(struct http_server *s, struct MHD_Connection *c,
                                const struct route *r)
{
    if (r->action == ROUTE_STATIC)
        return do_static(c, r);
    if (r->action == ROUTE_ERROR)
        return do_api(s, c, r);
    enum MHD_Result ret;
    pthread_rwlock_rdlock(&s->api_lock);
    if (s->quiesced) {
        ret = reply_error(c, 503, "server shutting down", NULL);
    } else {
        switch (r->action) {
        case ROUTE_EVENTS: ret = do_events(s, c); break;
        case ROUTE_DOWNLOAD: ret = do_download(s, c, r); break;
        default: ret = do_api(s, c, r); break;
        }
    }
    pthread_rwlock_unlock(&s->api_lock);
    return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
    struct http_server *s = cls;
    struct request *rq = *con_cls;
    if (!rq) {
        rq = calloc(1, sizeof *rq);
        if (!rq)
            return MHD_NO;
        *con_cls = rq;
        /* Refuse a big body before reading it (a response can be queued now, not while
         * the upload is under way). */
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
        uint64_t n;
        if (cl && (parse_u64(cl, cl + strlen(cl), &n) < 0 || n > BODY_MAX))
            return reply_error(c, 413, "request body too large", NULL);
        return MHD_YES;
    }
    if (*upload_data_size) {
        rq->body += *upload_data_size;
        *upload_data_size = 0;
        /* chunked and too big: nothing useful to say mid-upload, hang up */
        return rq->body > BODY_MAX ? MHD_NO : MHD_YES;
    }
    struct route *r = malloc(sizeof *r);   /* ~3 KiB: not on MHD's thread stack */
    if (!r)
        return MHD_NO;
    route_parse(method, url, r);
    if (plog_get_level() >= PLOG_DEBUG) {
        char masked[ROUTE_PATH_MAX + 8];
        route_mask_path(url, masked, sizeof masked);
        log_debug("http", "%s %s -> %d", method, masked,
                  r->action == ROUTE_ERROR ? r->status : 0);
    }
    enum MHD_Result ret = dispatch(s, c, r);
    free(r);
    return ret;
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    free(*con_cls);
    *con_cls = NULL;
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

/* Percent-decoding of the path and arguments. Like MHD's own, except that %00 becomes
 * 0x7f, which routes.c and the token check refuse: a NUL must never shorten a path. */
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

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    char line[512];
    vsnprintf(line, sizeof line, fmt, ap);
    size_t n = strlen(line);
    while (n && line[n - 1] == '\n')
        line[--n] = '\0';
    log_warn("http", "libmicrohttpd: %s", line);
}

/* ---- lifecycle ---------------------------------------------------------------------- */

int http_parse_listen(const char *listen, char *host, size_t host_len, unsigned *port)
{
    if (!listen || !*listen)
        return -EINVAL;
    const char *colon;
    const char *h = listen;
    size_t hl;
    if (listen[0] == '[') {
        const char *rb = strchr(listen, ']');
        if (!rb || rb[1] != ':')
            return -EINVAL;
        h = listen + 1;
        hl = (size_t)(rb - h);
        colon = rb + 1;
    } else {
        colon = strrchr(listen, ':');
        if (!colon || memchr(listen, ':', (size_t)(colon - listen)))
            return -EINVAL;   /* a bare IPv6 address needs brackets */
        hl = (size_t)(colon - listen);
    }
    if (hl >= host_len)
        return -EINVAL;
    memcpy(host, h, hl);
    host[hl] = '\0';
    if (!host[0])
        snprintf(host, host_len, "0.0.0.0");
    uint64_t p;
    if (parse_u64(colon + 1, colon + 1 + strlen(colon + 1), &p) < 0 || p > 65535)
        return -EINVAL;
    *port = (unsigned)p;
    return 0;
}

int http_start(struct http_server **out, const struct http_options *opt,
               struct recorder *rec, struct event_hub *hub)
{
    char host[256];
    unsigned port;
    if (http_parse_listen(opt->listen, host, sizeof host, &port) < 0) {
        log_err("http", "bad listen address '%s' (want ADDR:PORT or [IPV6]:PORT)", opt->listen);
        return -EINVAL;
    }
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *ai = NULL;
    char portstr[8];
    snprintf(portstr, sizeof portstr, "%u", port);
    int gai = getaddrinfo(host, portstr, &hints, &ai);
    if (gai) {
        log_err("http", "cannot resolve listen address '%s': %s", host, gai_strerror(gai));
        return -EINVAL;
    }
    struct http_server *s = calloc(1, sizeof *s);
    if (!s) {
        freeaddrinfo(ai);
        return -ENOMEM;
    }
    s->rec = rec;
    s->hub = hub;
    pthread_rwlock_init(&s->api_lock, NULL);
    struct sockaddr_storage ss;
    memcpy(&ss, ai->ai_addr, ai->ai_addrlen);
    int v6 = ai->ai_family == AF_INET6;
    freeaddrinfo(ai);
    if (v6)
        inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, s->addr, sizeof s->addr);
    else
        inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, s->addr, sizeof s->addr);

    int rc = sse_server_create(&s->sse, hub, opt->heartbeat_ms);
    if (rc < 0)
        goto fail;
    unsigned flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_ITC | MHD_ALLOW_SUSPEND_RESUME |
                     MHD_USE_ERROR_LOG;
    if (v6)   /* "::" also takes IPv4 clients; a specific v6 address only its own */
        flags |= strcmp(s->addr, "::") == 0 ? MHD_USE_DUAL_STACK : MHD_USE_IPv6;
    s->d = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, s,
        MHD_OPTION_EXTERNAL_LOGGER, mhd_log, s,   /* first, so every message goes through it */
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)(opt->max_connections ? opt->max_connections : 128),
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)(opt->timeout_s ? opt->timeout_s : 60),
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)CONN_MEMORY,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
        MHD_OPTION_UNESCAPE_CALLBACK, unescape, s,
        MHD_OPTION_END);
    if (!s->d) {
        rc = -EADDRINUSE;
        log_err("http", "cannot listen on %s (in use, or not an address of this host?)",
                opt->listen);
        goto fail;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
    s->port = info ? info->port : (uint16_t)port;
    *out = s;
    return 0;
fail:
    if (s->sse)
        sse_server_destroy(s->sse);
    pthread_rwlock_destroy(&s->api_lock);
    free(s);
    return rc;
}

uint16_t http_port(const struct http_server *s)
{
    return s->port;
}

const char *http_address(const struct http_server *s)
{
    return s->addr;
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
    http_quiesce(s);
    /* Parked SSE connections must be resumed first: MHD will not stop with them. */
    sse_close_all(s->sse, 2000);
    MHD_stop_daemon(s->d);
    sse_server_destroy(s->sse);
    pthread_rwlock_destroy(&s->api_lock);
    free(s);
}
