/* utf8: see utf8.h. Written by hand: a dozen lines, and neither jansson nor libc offers a
 * "truncate to a character boundary and drop what is not text" helper. */
#include "common/utf8.h"

#include <stdint.h>
#include <string.h>

/* Length of the well-formed sequence at s (1..4) and its code point, or 0. */
static size_t decode(const unsigned char *s, uint32_t *cp)
{
    size_t n;
    uint32_t c = s[0], min;
    if (c < 0x80) {
        *cp = c;
        return 1;
    } else if ((c & 0xe0) == 0xc0) {
        n = 2, c &= 0x1f, min = 0x80;
    } else if ((c & 0xf0) == 0xe0) {
        n = 3, c &= 0x0f, min = 0x800;
    } else if ((c & 0xf8) == 0xf0) {
        n = 4, c &= 0x07, min = 0x10000;
    } else {
        return 0;
    }
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        c = (c << 6) | (s[i] & 0x3f);
    }
    if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
        return 0;
    *cp = c;
    return n;
}

size_t utf8_copy_printable(char *dst, size_t cap, const char *src)
{
    if (!cap)
        return 0;
    size_t w = 0;
    const unsigned char *s = (const unsigned char *)(src ? src : "");
    while (*s) {
        uint32_t cp;
        size_t n = decode(s, &cp);
        if (n == 0) {
            s++;                      /* a stray byte: drop it */
            continue;
        }
        int printable = cp >= 0x20 && cp != 0x7f && !(cp >= 0x80 && cp < 0xa0);
        if (printable) {
            if (w + n >= cap)
                break;
            memcpy(dst + w, s, n);
            w += n;
        }
        s += n;
    }
    dst[w] = 0;
    return w;
}
