/*
 * ws_frame: client frame headers and word-wide masking (see ws_frame.h for why by hand).
 */
#include "record/ws_frame.h"

#include <errno.h>
#include <openssl/rand.h>
#include <string.h>

void ws_keys_init(struct ws_keys *k)
{
    k->used = sizeof k->pool;
}

int ws_keys_next(struct ws_keys *k, unsigned char key[4])
{
    if (k->used + 4 > sizeof k->pool) {
        if (RAND_bytes(k->pool, (int)sizeof k->pool) != 1)
            return -EIO;
        k->used = 0;
    }
    memcpy(key, k->pool + k->used, 4);
    memset(k->pool + k->used, 0, 4);   /* a key is used once */
    k->used += 4;
    return 0;
}

size_t ws_frame_header(unsigned char *out, int opcode, int fin, uint64_t len,
                       const unsigned char key[4])
{
    size_t n = 0;
    out[n++] = (unsigned char)((fin ? 0x80 : 0) | (opcode & 0x0f));
    if (len < 126) {
        out[n++] = (unsigned char)(0x80 | len);
    } else if (len < 65536) {
        out[n++] = 0x80 | 126;
        out[n++] = (unsigned char)(len >> 8);
        out[n++] = (unsigned char)len;
    } else {
        out[n++] = 0x80 | 127;
        for (int sh = 56; sh >= 0; sh -= 8)
            out[n++] = (unsigned char)(len >> sh);
    }
    memcpy(out + n, key, 4);
    return n + 4;
}

unsigned ws_frame_mask_copy(unsigned char *dst, const unsigned char *src, size_t n,
                            const unsigned char key[4], unsigned phase)
{
    /* the key repeated to 8 bytes, starting at this phase: every 8-byte block of the
     * payload from here on sees the same pattern */
    unsigned char pat[8];
    for (unsigned j = 0; j < 8; j++)
        pat[j] = key[(phase + j) & 3];
    uint64_t m;
    memcpy(&m, pat, 8);
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {   /* loads before stores: dst == src is fine */
        uint64_t a, b, c, d;
        memcpy(&a, src + i, 8);
        memcpy(&b, src + i + 8, 8);
        memcpy(&c, src + i + 16, 8);
        memcpy(&d, src + i + 24, 8);
        a ^= m, b ^= m, c ^= m, d ^= m;
        memcpy(dst + i, &a, 8);
        memcpy(dst + i + 8, &b, 8);
        memcpy(dst + i + 16, &c, 8);
        memcpy(dst + i + 24, &d, 8);
    }
    for (; i + 8 <= n; i += 8) {
        uint64_t a;
        memcpy(&a, src + i, 8);
        a ^= m;
        memcpy(dst + i, &a, 8);
    }
    for (; i < n; i++)
        dst[i] = src[i] ^ pat[i & 7];
    return (unsigned)((phase + n) & 3);
}
