/*
 * http_range: the Range header of a download (RFC 7233 section 2.1 and 4.4), against a
 * file of `size` bytes. pirec answers one range with 206 and never builds multipart
 * answers: a header of several ranges gets the whole file (200), or 416 when none of them
 * can be satisfied. libmicrohttpd leaves Range to its user; this is small and strict, so
 * written here. Any thread; no state.
 *
 *   bytes=A-B   bytes A..B (B past the end: to the end)
 *   bytes=A-    from A to the end
 *   bytes=-N    the last N bytes (all of them when N >= size)
 *
 * The unit is case-insensitive; spaces and tabs around elements and commas are allowed,
 * and empty list elements are skipped (RFC 7230 section 7). A number too large for 64 bits
 * counts as "beyond any size": a first byte past the end, a last byte or suffix covering
 * the whole file.
 */
#ifndef PIREC_SERVER_HTTP_RANGE_H
#define PIREC_SERVER_HTTP_RANGE_H

#include <stdint.h>

enum http_range {
    HTTP_RANGE_UNSATISFIABLE = -1,  /* answer 416 with Content-Range: bytes * / size */
    HTTP_RANGE_WHOLE = 0,           /* no header, another unit, malformed, or several ranges
                                       of which one can be satisfied: 200 with everything */
    HTTP_RANGE_ONE = 1,             /* 206 with bytes *first..*last (inclusive) */
};

/* More elements than this are not looked at: the whole file is sent. */
#define HTTP_RANGE_MAX_ELEMENTS 64

/* h may be NULL (no header). *first and *last are set only for HTTP_RANGE_ONE. */
enum http_range http_range_parse(const char *h, uint64_t size, uint64_t *first,
                                 uint64_t *last);

#endif
