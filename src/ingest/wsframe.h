/*
 * wsframe: RFC 6455 frame headers for the ingest server, pure functions.
 *
 * Hand-written rather than a library: the server must see the client's mask bit (an
 * unmasked client frame is closed with 1002, RFC 6455 5.1; lws 4.1 hides it), and
 * unmasking runs over every byte the ingest receives, so it is done a machine word at a
 * time and in place in the read buffer (lws 4.1 unmasks byte by byte; wslay, reported to
 * do the same, was not measured here). The header grammar is small;
 * tests/fuzz/fuzz_ingest_wire.c fuzzes it together with the handshake parser.
 *
 * Owner: "C" (pirec ingest). No state: any thread.
 */
#ifndef PIREC_INGEST_WSFRAME_H
#define PIREC_INGEST_WSFRAME_H

#include <stddef.h>
#include <stdint.h>

enum {
    WSFRAME_CONT = 0x0, WSFRAME_TEXT = 0x1, WSFRAME_BINARY = 0x2,
    WSFRAME_CLOSE = 0x8, WSFRAME_PING = 0x9, WSFRAME_PONG = 0xA,
};

#define WSFRAME_HDR_MAX 14

struct wsframe_hdr {
    int fin;
    int opcode;
    int masked;
    uint8_t mask[4];
    uint64_t len;      /* payload length */
    size_t hdr_len;    /* bytes of the header itself */
};

/* Parses the frame header at p. Returns 1 (complete: *h filled), 0 (n too short, read
 * more) or -EPROTO with *why naming the violation (reserved bits, unknown opcode, a
 * fragmented or long control frame, a length with its top bit set). The mask bit is
 * reported, not judged: the caller refuses unmasked frames. */
int wsframe_parse(const uint8_t *p, size_t n, struct wsframe_hdr *h, const char **why);

/* XORs n payload bytes with the key, starting at payload offset off (mod 4). */
void wsframe_unmask(uint8_t *p, size_t n, const uint8_t mask[4], uint64_t off);

/* Writes an unmasked, final server frame header for len payload bytes into out
 * (WSFRAME_HDR_MAX bytes); returns its length. */
size_t wsframe_header(uint8_t *out, int opcode, uint64_t len);

#endif
