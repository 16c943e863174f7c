/*
 * http_files: what the HTTP layer sends besides streams: API answers as JSON, recordings
 * (with a Range: server/http_range.h, 206/416), and the embedded page with its security headers.
 * Threads: libmicrohttpd's (these queue responses on a connection).
 */
#ifndef PIREC_SERVER_HTTP_FILES_H
#define PIREC_SERVER_HTTP_FILES_H

#include "server/api.h"
#include "server/recorder.h"
#include "server/routes.h"

#include <microhttpd.h>
#include <stdint.h>

/* Sends an API answer as JSON (its body is consumed). */
enum MHD_Result http_send_reply(struct MHD_Connection *c, struct api_reply *a);
/* Sends one of the API's refusals. */
enum MHD_Result http_send_refusal(struct MHD_Connection *c, enum api_refusal why);
/* GET /api/recordings/:name (Range: one "bytes=" range). The file is read by `readers`
 * (a block at a time, the connection suspended meanwhile), never on the event thread;
 * every reader job must have run before libmicrohttpd stops. */
struct workers;
enum MHD_Result http_send_recording(struct MHD_Connection *c, struct recorder *rec,
                                    struct workers *readers, const struct route *r);
/* The embedded page's files. */
enum MHD_Result http_send_static(struct MHD_Connection *c, const struct route *r);

/* Strict decimal digits of [s, end) into *out: 0 or -1. */
int http_parse_u64(const char *s, const char *end, uint64_t *out);

#endif
