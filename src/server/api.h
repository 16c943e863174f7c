/*
 * api: the answers of docs/api.md. Every status code, JSON body and error message of the
 * API is made here from the recorder's C results (recorder.h); the transport (http.c)
 * only extracts the inputs and sends what comes back. No libmicrohttpd here, so every
 * answer can be unit-tested (tests/unit/test_api.c).
 *
 * Compatibility with the original Pi_Record client: every body has "state"; error
 * bodies also carry "token":"" and "error"; take/renew give "token" (docs/api.md).
 *
 * Threads: any. api_handle() may block on the disk for the routes api_route_is_slow()
 * names (the HTTP layer runs those on worker threads).
 */
#ifndef PIREC_SERVER_API_H
#define PIREC_SERVER_API_H

#include "server/recorder.h"
#include "server/routes.h"

struct api_reply {
    unsigned status;
    char *body;            /* JSON text, malloc'd; NULL only when out of memory */
    const char *allow;     /* Allow header (405), static, or NULL */
};

/* What the transport found in the request besides the route. */
struct api_request {
    const struct route *route;
    const char *token;       /* the path's, Bearer or ?token=; NULL if none */
    int token_malformed;     /* one was given but cannot be a token */
    const char *client;      /* ?client= of take; NULL if none */
    const char *now;         /* ?now= of /api/clock; NULL if none */
};

/* Answers ROUTE_TAKE..ROUTE_STOP, ROUTE_STATUS, ROUTE_LIST, ROUTE_DELETE and ROUTE_ERROR.
 * (ROUTE_EVENTS, ROUTE_DOWNLOAD and ROUTE_STATIC are streamed by the transport.) */
void api_handle(struct recorder *r, const struct api_request *rq, struct api_reply *out);
/* 1 for the routes whose answer may wait on the disk: start, stop, list, delete. */
int  api_route_is_slow(const struct route *rt);
/* Requests the transport refuses before (or instead of) asking the recorder. */
enum api_refusal {
    API_BAD_REQUEST_LINE,      /* 400 */
    API_BODY_TOO_LARGE,        /* 413 */
    API_UNKNOWN_HOST,          /* 403: Host is not one of ours (DNS rebinding) */
    API_CROSS_ORIGIN,          /* 403: a change asked by another site's page */
    API_HEADER_TIMEOUT,        /* 408 */
    API_SERVER_FULL,           /* 503 */
    API_CLIENT_FULL,           /* 503: this address holds its share of connections */
    API_STREAMS_FULL,          /* 503 */
    API_CLIENT_STREAMS_FULL,   /* 503 */
    API_LIST_BUSY,             /* 503: too many listings waiting */
    API_BUSY,                  /* 503: no worker could take the job */
    API_SHUTTING_DOWN,         /* 503 */
    API_SUBSCRIBE_FAILED,      /* 500 */
};
void api_refuse(struct api_reply *out, enum api_refusal why);
/* The status code and message of a refusal, for answers written without libmicrohttpd
 * (conn_guard.c). */
unsigned api_refusal_status(enum api_refusal why);
const char *api_refusal_message(enum api_refusal why);

/* An error answer with a message of the caller's. */
void api_error(struct api_reply *out, unsigned status, const char *msg, const char *allow);
/* The answer for a bare recorder errno (e.g. opening a download). */
void api_errno(struct api_reply *out, int rc);
void api_reply_free(struct api_reply *out);

#endif
