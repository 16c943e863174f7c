/* wsframe: see wsframe.h. */
#include "ingest/wsframe.h"
#include "record/ws_frame.h"

#include <errno.h>
#include <string.h>

int wsframe_parse(const uint8_t *p, size_t n, struct wsframe_hdr *h, const char **why)
{
    if (n < 2)
        return 0;
    if (p[0] & 0x70) {
        *why = "reserved bits set (no extension was negotiated)";
        return -EPROTO;
    }
    h->fin = !!(p[0] & 0x80);
    h->opcode = p[0] & 0x0f;
    switch (h->opcode) {
    case WSFRAME_CONT: case WSFRAME_TEXT: case WSFRAME_BINARY:
        break;
    case WSFRAME_CLOSE: case WSFRAME_PING: case WSFRAME_PONG:
        if (!h->fin) {
            *why = "fragmented control frame";
            return -EPROTO;
        }
        if ((p[1] & 0x7f) > 125) {
            *why = "control frame longer than 125 bytes";
            return -EPROTO;
        }
        break;
    default:
        *why = "unknown opcode";
        return -EPROTO;
    }
    h->masked = !!(p[1] & 0x80);
    uint64_t len = p[1] & 0x7f;
    size_t at = 2;
    if (len == 126) {
        if (n < 4)
            return 0;
        len = (uint64_t)p[2] << 8 | p[3];
        at = 4;
    } else if (len == 127) {
        if (n < 10)
            return 0;
        len = 0;
        for (int i = 0; i < 8; i++)
            len = len << 8 | p[2 + i];
        if (len >> 63) {
            *why = "payload length with its most significant bit set";
            return -EPROTO;
        }
        at = 10;
    }
    if (h->masked) {
        if (n < at + 4)
            return 0;
        memcpy(h->mask, p + at, 4);
        at += 4;
    } else {
        memset(h->mask, 0, 4);
    }
    h->len = len;
    h->hdr_len = at;
    return 1;
}

void wsframe_unmask(uint8_t *p, size_t n, const uint8_t mask[4], uint64_t off)
{
    /* The client's word-wide masking (record/ws_frame.c, checked against RFC 6455's byte
     * rule in test_ws_frame.c) works in place: one implementation for both ends. */
    ws_frame_mask_copy(p, p, n, mask, (unsigned)(off & 3));
}

size_t wsframe_header(uint8_t *out, int opcode, uint64_t len)
{
    out[0] = (uint8_t)(0x80 | (opcode & 0x0f));
    if (len < 126) {
        out[1] = (uint8_t)len;
        return 2;
    }
    if (len <= 0xffff) {
        out[1] = 126;
        out[2] = (uint8_t)(len >> 8);
        out[3] = (uint8_t)len;
        return 4;
    }
    out[1] = 127;
    for (int i = 0; i < 8; i++)
        out[2 + i] = (uint8_t)(len >> (56 - 8 * i));
    return 10;
}
