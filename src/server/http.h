/*
 * http: the HTTP server of `pirec serve` (libmicrohttpd, one internal epoll thread).
 *
 * Serves docs/api.md: the control routes (GET as the original Pi_Record, POST too; the
 * token in the path, as `Authorization: Bearer`, or `?token=`), status, SSE events,
 * recordings (list, download with Range, delete) and the embedded web page. Path rules
 * live in routes.c; every answer (status code, JSON, message) comes from api.c.
 *
 * Staying responsive (nothing waits on the disk or on another client):
 * - pirec accepts connections itself (listener.c) and admits them through conn_guard.c:
 *   global and per-address limits answered with 503, a header deadline answered with 408,
 *   event streams on their own budget;
 * - the routes that touch the disk (start, stop, list, delete) run on worker threads
 *   while their connection is suspended, so the event loop keeps serving status, events
 *   and the page;
 * - Host must be one of ours and state-changing requests must come from the page's own
 *   origin or a non-browser client (origin.c).
 * Requests are capped (32 KiB of headers, 4 KiB of body), tokens never logged (paths
 * are logged with the token masked), malformed requests logged at debug level only.
 *
 * Threads: http_start/http_quiesce/http_stop from the main thread; the recorder and hub
 * are borrowed and must outlive http_stop(). Shutdown order: http_quiesce() (API answers
 * 503 from now on, no call into the recorder is in flight when it returns) ->
 * recorder_destroy() -> event_hub_shutdown() -> http_stop().
 */
#ifndef PIREC_SERVER_HTTP_H
#define PIREC_SERVER_HTTP_H

#include "server/events.h"
#include "server/recorder.h"

#include <stddef.h>
#include <stdint.h>

struct http_options {
    const char *listen;                    /* "ADDR:PORT", "[V6]:PORT", ":PORT", "PORT" */
    unsigned heartbeat_ms;                 /* 0 = 15 s */
    unsigned max_connections;              /* 0 = 256 */
    unsigned max_connections_per_client;   /* 0 = 32 */
    unsigned max_event_streams;            /* 0 = 64 */
    unsigned max_event_streams_per_client; /* 0 = 8 */
    unsigned header_timeout_s;             /* 0 = 10 */
    unsigned timeout_s;                    /* idle connection timeout, 0 = 60 */
    const char *allowed_hosts;             /* extra Host names (commas/spaces), or NULL */
};

struct http_server;

/* 0, -EINVAL (bad listen address or host name: message logged), -EADDRINUSE/-errno
 * (logged with the address and port). */
int  http_start(struct http_server **out, const struct http_options *opt,
                struct recorder *rec, struct event_hub *hub);
uint16_t http_port(const struct http_server *s);
/* The address as given/resolved ("0.0.0.0", "::1", ...). */
const char *http_address(const struct http_server *s);
void http_quiesce(struct http_server *s);
void http_stop(struct http_server *s);

#endif
