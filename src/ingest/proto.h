/*
 * ingest proto: the pure parts of the ingest wire protocol (docs/protocol.md), kept apart
 * from the socket code so that unit tests can drive them.
 *
 * Owner: "C" (pirec ingest). No state, no allocation except inside the JSON helpers
 * (jansson); any thread may call these.
 */
#ifndef PIREC_INGEST_PROTO_H
#define PIREC_INGEST_PROTO_H

#include <stddef.h>
#include <stdint.h>

/* Checks a stream name: 1-255 bytes, no '/', no NUL or control character (< 0x20, 0x7f),
 * not starting with '.', not ending in ".losses" (the loss records). Returns 0, or -EINVAL with *why set to a short reason. */
int ingest_name_check(const char *name, size_t len, const char **why);

/* Writes NAME printable for a log line: C-style escapes for anything unusual, cut to fit
 * (with "..." at the end). Always NUL-terminates out (outlen >= 8). */
void ingest_name_escape(const char *name, size_t len, char *out, size_t outlen);

/* Splits a binary message `<name> NUL <data>`. Returns 0, or -EINVAL with *why set when
 * there is no NUL within the first 256 bytes or the name is invalid. */
int ingest_split_message(const void *msg, size_t len, const char **name, size_t *name_len,
                         const void **data, size_t *data_len, const char **why);

enum ingest_op { INGEST_OP_STAT = 1, INGEST_OP_LOSS };

struct ingest_ctl {
    enum ingest_op op;
    char name[256];
    size_t name_len;
    uint64_t at, bytes;      /* loss only */
};

/* Parses a client control message strictly: a JSON object with exactly the keys of its
 * op, integers >= 0, a valid name. Returns 0 or -EINVAL with err holding the reason. */
int ingest_ctl_parse(const char *text, size_t len, struct ingest_ctl *out, char *err,
                     size_t errlen);

/* Formats {"op":OP,"name":NAME,"size":N} into out; returns its length or -ENOSPC. */
int ingest_ctl_format(const char *op, const char *name, uint64_t size, char *out,
                      size_t outlen);

/* Parses "ADDR:PORT", "[V6]:PORT" or ":PORT" (all addresses). host gets the address
 * ("" for any), *v6 is set for bracketed addresses. -EINVAL with err set otherwise. */
int ingest_parse_listen(const char *s, char *host, size_t hostlen, int *port, int *v6,
                        char *err, size_t errlen);

#endif
