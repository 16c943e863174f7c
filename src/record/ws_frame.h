/*
 * ws_frame: the client's own framing of the frames it sends (RFC 6455, section 5): header,
 * fresh mask key per frame, payload masked word-wide while it is copied into place.
 *
 * Why by hand: libwebsockets 4.1 masks client payload one byte at a time (about 40 % of the
 * sender's CPU in a profile of `pirec send`), and no Debian library masks word-wide (wslay
 * also masks bytewise). ws_link builds whole messages here and hands them to lws as raw
 * bytes (LWS_WRITE_RAW), which lws queues in order with its own frames (pings, close).
 *
 * Threads: ws_frame_mask_copy() and ws_frame_header() are pure; a struct ws_keys belongs
 * to one thread (the link's service thread).
 */
#ifndef PIREC_RECORD_WS_FRAME_H
#define PIREC_RECORD_WS_FRAME_H

#include <stddef.h>
#include <stdint.h>

#define WS_FRAME_HDR_MAX 14          /* 2 + 8 (length) + 4 (mask key) */

enum { WS_OP_CONT = 0x0, WS_OP_TEXT = 0x1, WS_OP_BINARY = 0x2 };

/* Unpredictable mask keys (RFC 6455 10.3), drawn from OpenSSL's CSPRNG in batches. */
struct ws_keys {
    unsigned char pool[256];
    size_t used;                     /* bytes of pool taken; sizeof pool = empty */
};

void ws_keys_init(struct ws_keys *k);

/* Next 4-byte key into key. 0, or -EIO when the CSPRNG fails (never a predictable key). */
int ws_keys_next(struct ws_keys *k, unsigned char key[4]);

/* Writes a masked client frame header for `len` payload bytes into out (>= WS_FRAME_HDR_MAX
 * bytes); returns its length. */
size_t ws_frame_header(unsigned char *out, int opcode, int fin, uint64_t len,
                       const unsigned char key[4]);

/* dst[i] = src[i] ^ key[(phase + i) % 4] for i < n; returns the phase after n bytes, so a
 * payload copied in pieces continues its mask. dst and src may be the same buffer but must
 * not otherwise overlap. */
unsigned ws_frame_mask_copy(unsigned char *dst, const unsigned char *src, size_t n,
                            const unsigned char key[4], unsigned phase);

#endif
