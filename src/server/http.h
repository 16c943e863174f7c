/*
 * http: the HTTP server of `pirec serve` (libmicrohttpd, one internal epoll thread).
 *
 * Serves docs/api.md: the control routes (GET as the original Pi_Record, POST too; the
 * token in the path, as `Authorization: Bearer`, or `?token=`), status, SSE events,
 * recordings (list, download with Range, delete) and the embedded web page. Path rules
 * live in routes.c; every answer (status code, JSON, message) comes from api.c.
 * Requests are capped (32 KiB of headers, 4 KiB of body), connections limited and timed
 * out, tokens never logged (paths are logged with the token masked).
 *
 * Threads: http_start/http_quiesce/http_stop from the main thread; the
 * recorder and hub are borrowed and must outlive http_stop(). Shutdown order:
 * http_quiesce() (API answers 503 from now on, no call into the recorder is in flight
 * when it returns) -> recorder_destroy() -> event_hub_shutdown() -> http_stop().
 */
#ifndef PIREC_SERVER_HTTP_H
#define PIREC_SERVER_HTTP_H

#include "server/events.h"
#include "server/recorder.h"

#include <stddef.h>
#include <stdint.h>

struct http_options {
    const char *listen;        /* "ADDR:PORT", "[V6]:PORT", ":PORT"; port 0 = any free */
    unsigned heartbeat_ms;     /* 0 = 15 s */
    unsigned max_connections;  /* 0 = 128 */
    unsigned timeout_s;        /* idle connection timeout, 0 = 60 */
};

struct http_server;

/* 0, -EINVAL (bad listen address: message logged), -EADDRINUSE/-errno. */
int  http_start(struct http_server **out, const struct http_options *opt,
                struct recorder *rec, struct event_hub *hub);
uint16_t http_port(const struct http_server *s);
/* The address as given/resolved ("0.0.0.0", "::1", ...). */
const char *http_address(const struct http_server *s);
void http_quiesce(struct http_server *s);
void http_stop(struct http_server *s);

/* Parses "ADDR:PORT" into host and port (pure; for tests). 0 or -EINVAL. */
int http_parse_listen(const char *listen, char *host, size_t host_len, unsigned *port);

#endif
