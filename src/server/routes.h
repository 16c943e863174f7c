/*
 * routes: turns a request line (method + decoded path) into one action of docs/api.md.
 *
 * A pure function: no I/O, no allocation, no global state, so every path rule is unit-tested
 * (tests/unit/test_routes.c). The path is the one libmicrohttpd passes after percent-decoding
 * (http.c's unescaper turns %00 into 0x7f so that a NUL can never shorten a path).
 * Every segment is checked before anything else: empty, ".", "..", a backslash or a control
 * byte anywhere is 400, so "%2e%2e", "%2f" (it becomes a '/' and thus an extra segment) and
 * "....//" never reach a handler. Static files are looked up by name in a fixed table
 * (static_files.h), never mapped to the filesystem; recording names are re-checked by the
 * recorder (openat + O_NOFOLLOW) as a second fence.
 *
 * Threads: any.
 */
#ifndef PIREC_SERVER_ROUTES_H
#define PIREC_SERVER_ROUTES_H

#include "server/jwt.h"

#include <stddef.h>

#define ROUTE_ID_MAX    64     /* device ids: [A-Za-z0-9._-]{1,63} */
#define ROUTE_NAME_MAX  256    /* recording names */
#define ROUTE_SUBID_MAX 128    /* the original's Date.now() subscription id */
#define ROUTE_PATH_MAX  512    /* longer paths are refused with 414 */

enum route_action {
    ROUTE_ERROR = 0,      /* status + error say why */
    ROUTE_TAKE,
    ROUTE_RENEW,
    ROUTE_RELEASE,
    ROUTE_START,
    ROUTE_STOP,
    ROUTE_STATUS,         /* GET /api/status */
    ROUTE_EVENTS,         /* GET /api/status/:subid (SSE) */
    ROUTE_LIST,           /* GET /api/recordings */
    ROUTE_DOWNLOAD,       /* GET /api/recordings/:name */
    ROUTE_DELETE,         /* DELETE /api/recordings/:name, POST .../:name/delete */
    ROUTE_STATIC,         /* anything else: name holds the asset path, e.g. "/index.html" */
    ROUTE_START_ALL,      /* GET|POST /api/record_all/start[/:token] */
    ROUTE_STOP_ALL,       /* GET|POST /api/record_all/stop[/:token] */
    ROUTE_TAKEOVER,       /* GET|POST /api/recording/:id/takeover (no token) */
    ROUTE_CLOCK,          /* POST /api/clock?now=UNIX_MS (token: Bearer or ?token=) */
    ROUTE_PEAKS,          /* GET /api/recordings/:name/peaks */
};

struct route {
    enum route_action action;
    int status;                  /* ROUTE_ERROR: 400, 401, 404, 405, 414 */
    const char *error;           /* ROUTE_ERROR: a static message for the JSON answer */
    const char *allow;           /* 405: the Allow header */
    int is_api;                  /* path starts with /api/ (JSON errors, no-store) */
    int needs_token;             /* renew/release/start/stop/delete */
    char id[ROUTE_ID_MAX];
    char token[JWT_MAX];         /* from the path; empty when not there */
    char name[ROUTE_NAME_MAX];   /* recording name, or static asset path */
    char subid[ROUTE_SUBID_MAX];
};

/* Fills r from method ("GET", "HEAD", "POST", "DELETE", ...) and the decoded path (no
 * query string). Always returns 0 and sets r->action; ROUTE_ERROR carries the status. */
int route_parse(const char *method, const char *path, struct route *r);

/* Checks (no I/O): a device id, a lease token (JWT charset, < JWT_MAX), a recording name
 * (no '/', '\\', '"', control bytes, no leading '.', ends in ".flac", < ROUTE_NAME_MAX).
 * 1 when valid. */
int route_valid_id(const char *s);
int route_valid_token(const char *s);
int route_valid_name(const char *s);

/* 1 when line (len bytes, ending in '\n') looks like an HTTP/1 request line:
 * "METHOD SP TARGET SP HTTP/D.D" + CRLF or LF, METHOD 1..16 upper-case letters, TARGET
 * printable without spaces. Anything else is answered 400 before libmicrohttpd sees it. */
int route_request_line_ok(const char *line, size_t len);

/* Copies path into out with the token segment of /api/recording/:id/VERB/:token replaced
 * by "***", for logging. */
void route_mask_path(const char *path, char *out, size_t out_len);

#endif
