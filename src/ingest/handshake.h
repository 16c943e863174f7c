/*
 * handshake: the HTTP/1.1 upgrade request that opens an ingest WebSocket (RFC 6455 4.2),
 * parsed strictly and answered. Pure functions; tests/fuzz/fuzz_ingest_wire.c fuzzes it.
 *
 * Written here because the transport is our own (see wsframe.h); the only thing taken
 * from a library is SHA-1 + base64 for Sec-WebSocket-Accept (OpenSSL).
 *
 * Owner: "C" (pirec ingest). No state: any thread.
 */
#ifndef PIREC_INGEST_HANDSHAKE_H
#define PIREC_INGEST_HANDSHAKE_H

#include <stddef.h>

#define HANDSHAKE_MAX 8192   /* a longer request head is refused (431) */

enum handshake_proto { HS_LEGACY = 0, HS_RESUME, HS_LEGACY_NAMED };

struct handshake {
    int status;                /* 101, or the HTTP error status to answer with */
    enum handshake_proto proto;
    char accept[32];           /* Sec-WebSocket-Accept */
};

/* Looks for a complete request head ("\r\n\r\n") in buf[0..n). Returns 0 when more bytes
 * are needed (and n < HANDSHAKE_MAX), else the head's length with *hs filled: status 101
 * for a valid upgrade, otherwise 400/426/431/405 with why naming what is wrong. A client
 * that offers pirec.resume.1 gets it; one that offers "pirec-legacy" gets that (legacy);
 * one that offers none, or only others, is legacy and gets no Sec-WebSocket-Protocol. */
size_t handshake_parse(const char *buf, size_t n, struct handshake *hs, const char **why);

/* Formats the answer for hs (101 with its headers, or the error status with why as the
 * body) into out. Returns its length, or 0 if outlen is too small. */
size_t handshake_response(const struct handshake *hs, const char *why, char *out,
                          size_t outlen);

#endif
