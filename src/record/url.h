/*
 * url: the strict parser of the record module's endpoint URLs (grammar in
 * docs/record-module.md and include/pirec/record.h).
 *
 * Owned by the record module (A). Pure function, no global state: any thread may call it.
 * A rejection returns -EINVAL (-ENAMETOOLONG for an over-long URL or field) and logs
 * exactly one line on the "record" component saying what is wrong; the URL is echoed only
 * when it cannot carry credentials (no '@').
 */
#ifndef PIREC_RECORD_URL_H
#define PIREC_RECORD_URL_H

#include <stddef.h>
#include <stdint.h>

#include "record/ws_link.h"

#define REC_URL_MAX 4096      /* longest URL accepted, excluding the NUL */
#define REC_PATH_MAX 4096     /* longest file path accepted, excluding the NUL */

enum rec_url_role { REC_URL_SOURCE, REC_URL_SINK };

enum rec_url_kind { REC_URL_RING = 1, REC_URL_MEM, REC_URL_FILE, REC_URL_WS };

struct rec_url {
    enum rec_url_kind kind;
    uint64_t addr;              /* ring: address of the dev_ringbuf_t; mem: start */
    uint64_t size;              /* mem: bytes (> 0) */
    char path[REC_PATH_MAX + 1];/* file */
    struct ws_target ws;        /* ws / wss */
};

int rec_url_parse(const char *url, enum rec_url_role role, struct rec_url *out);

/* Parses a decimal or 0x-hex unsigned 64-bit number that spans all of [s, s+len).
 * 0 or -EINVAL (empty, sign, junk) / -ERANGE (does not fit 64 bits). */
int rec_url_parse_u64(const char *s, size_t len, uint64_t *out);

const char *rec_url_kind_name(enum rec_url_kind kind);

#endif
