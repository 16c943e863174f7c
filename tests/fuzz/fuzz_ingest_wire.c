/* Fuzzes what `pirec ingest`'s own transport parses from a stranger on the network: the
 * HTTP upgrade request (src/ingest/handshake.c) and WebSocket frame headers and unmasking
 * (src/ingest/wsframe.c). Checks the parsers' promises, not just the absence of crashes:
 * the head length is within the input, a complete header lies within the input and its
 * re-encoding round-trips, word-wide unmasking equals byte-wise unmasking. */
#include "fuzz_util.h"

#include "ingest/handshake.h"
#include "ingest/wsframe.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *req = (char *)fuzz_copy(data, size);
    struct handshake hs;
    const char *why = NULL;
    size_t head = handshake_parse(req, size, &hs, &why);
    if (head > size)
        abort();
    if (head) {
        char out[1024];
        if (hs.status == 101 && (why || strlen(hs.accept) != 28))
            abort();
        if (hs.status != 101 && !why)
            abort();
        if (!handshake_response(&hs, why, out, sizeof out))
            abort();
    } else if (size >= HANDSHAKE_MAX) {
        abort();
    }
    free(req);

    uint8_t *buf = fuzz_copy(data, size);
    struct wsframe_hdr h;
    int r = wsframe_parse(buf, size, &h, &why);
    if (r == 1) {
        if (h.hdr_len > size || h.hdr_len > WSFRAME_HDR_MAX || h.hdr_len < 2)
            abort();
        if (h.opcode >= WSFRAME_CLOSE && (h.len > 125 || !h.fin))
            abort();
        uint8_t out[WSFRAME_HDR_MAX];
        size_t n = wsframe_header(out, h.opcode, h.len);
        struct wsframe_hdr back;
        if (wsframe_parse(out, n, &back, &why) != 1 || back.len != h.len ||
            back.opcode != h.opcode || back.masked)
            abort();
        size_t plen = size - h.hdr_len;
        uint8_t *a = buf + h.hdr_len;
        uint8_t *b = malloc(plen + 1);
        if (!b)
            abort();
        memcpy(b, a, plen);
        uint64_t off = size ? data[0] : 0;
        wsframe_unmask(a, plen, h.mask, off);
        for (size_t i = 0; i < plen; i++)
            if ((uint8_t)(b[i] ^ h.mask[(off + i) & 3]) != a[i])
                abort();
        free(b);
    } else if (r != 0 && r != -EPROTO) {
        abort();
    }
    free(buf);
    return 0;
}
