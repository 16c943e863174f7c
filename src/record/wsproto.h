/*
 * wsproto: the record module's WebSocket protocol (docs/protocol.md), in one place for
 * both ends: the client (record/ws_link.c, record/url.c) and the server (`pirec ingest`,
 * src/ingest/). Name rules, message framing, control messages, close codes and what they
 * mean. Part of the record library; anything else that must judge a stream name the same
 * way (e.g. src/server's lease and routes) can include this header and link it.
 *
 * Pure functions, no state, no allocation except inside the JSON helpers (jansson): any
 * thread may call them.
 */
#ifndef PIREC_RECORD_WSPROTO_H
#define PIREC_RECORD_WSPROTO_H

#include <stddef.h>
#include <stdint.h>

#define WSPROTO_SUBPROTOCOL "pirec.resume.1"
#define WSPROTO_NAME_MAX 255

/* Close codes and their meaning for the client (wsproto_close_meaning). */
enum {
    WSPROTO_CLOSE_NORMAL = 1000,
    WSPROTO_CLOSE_GOING_AWAY = 1001,     /* server shutting down: reconnect */
    WSPROTO_CLOSE_UNSUPPORTED = 1003,    /* text on a legacy connection: fatal */
    WSPROTO_CLOSE_POLICY = 1008,         /* a rule refused (bad name, bad control): fatal for
                                            the stream the reason names */
    WSPROTO_CLOSE_TOO_BIG = 1009,        /* message over the server's cap: fatal */
    WSPROTO_CLOSE_SERVER_ERROR = 1011,   /* write failed (disk full): retry with backoff */
    WSPROTO_CLOSE_TRY_LATER = 1013,      /* server at its memory / connection cap: backoff */
    WSPROTO_CLOSE_TAKEN_OVER = 4001,     /* another connection took the name over */
};

/* THE stream name rule, applied identically by the client (record_register refuses the
 * URL) and by the server (close 1008): 1-255 bytes of valid UTF-8, no '/', no NUL or
 * control character (< 0x20, 0x7f), not starting with '.' (so not "." or ".." or a hidden
 * file), not ending in ".losses" (the loss records). Returns 0, or -EINVAL with *why set
 * to a short reason that names the rule. */
int wsproto_name_check(const char *name, size_t len, const char **why);

/* Writes NAME printable for a log line: C-style escapes for anything unusual, cut to fit
 * (with "..." at the end). Always NUL-terminates out (outlen >= 8). */
void wsproto_name_escape(const char *name, size_t len, char *out, size_t outlen);

/* Splits a binary message `<name> NUL <data>`. Returns 0, or -EINVAL with *why set when
 * there is no NUL within the first 256 bytes or the name is invalid. */
int wsproto_split_message(const void *msg, size_t len, const char **name, size_t *name_len,
                         const void **data, size_t *data_len, const char **why);

enum ingest_op { WSPROTO_OP_STAT = 1, WSPROTO_OP_LOSS };

struct wsproto_ctl {
    enum ingest_op op;
    char name[256];
    size_t name_len;
    uint64_t at, bytes;      /* loss only */
};

/* Parses a client control message strictly: a JSON object with exactly the keys of its
 * op, integers >= 0, a valid name. Returns 0 or -EINVAL with err holding the reason. */
int wsproto_ctl_parse(const char *text, size_t len, struct wsproto_ctl *out, char *err,
                     size_t errlen);

/* Formats {"op":OP,"name":NAME,"size":N} into out; returns its length or -ENOSPC. */
int wsproto_ctl_format(const char *op, const char *name, uint64_t size, char *out,
                      size_t outlen);

/* What a close code means; *fatal (if not NULL) is set when retrying cannot help. */
const char *wsproto_close_meaning(int code, int *fatal);

#endif
