/*
 * forward_head: the FLAC side of forwarding (see forward.h): a take file's metadata blocks
 * as they are on disk, the head message that carries the final ones, and stream names.
 */
#include "server/forward_head.h"
#include "server/forward.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_HEADER (1 << 20)

/* ---- the header of a FLAC file: its metadata blocks ---------------------------------- */

static int name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '-' || c == '.' || c == '_' || c == '+' || c == ',' || c == '=';
}

int forward_stream_name(char *out, size_t n, const char *recorder, const char *device,
                        const char *file)
{
    int r = snprintf(out, n, "fwd~%s~%s~%s", recorder, device, file);
    if (r < 0 || (size_t)r >= n || r > 240)   /* room for ".head" within 255 */
        return -ENAMETOOLONG;
    for (char *p = out + 4; *p; p++)
        if (*p != '~' && !name_char(*p))
            *p = '_';
    /* only the two separators: a '~' in the file's own name would shift the fields */
    char *third = strchr(strchr(out + 4, '~') + 1, '~') + 1;
    for (char *p = third; *p; p++)
        if (*p == '~')
            *p = '_';
    return 0;
}

/* ---- the header of a FLAC file: its metadata blocks ---------------------------------- */

/* Length of "fLaC" + all metadata blocks, and the stream's sample rate. 0 or -EINVAL. */
static int parse_header(const uint8_t *b, size_t n, size_t *len, unsigned *rate)
{
    if (n < 42 || memcmp(b, "fLaC", 4) != 0 || (b[4] & 0x7f) != 0)
        return -EINVAL;
    *rate = ((unsigned)b[18] << 12) | ((unsigned)b[19] << 4) | (b[20] >> 4);
    size_t off = 4;
    for (;;) {
        if (off + 4 > n)
            return -EINVAL;
        int last = b[off] & 0x80;
        size_t blen = ((size_t)b[off + 1] << 16) | ((size_t)b[off + 2] << 8) | b[off + 3];
        off += 4 + blen;
        if (off > n)
            return -EINVAL;
        if (last) {
            *len = off;
            return 0;
        }
    }
}

int forward_pread_all(int fd, uint8_t *buf, size_t n, uint64_t off)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = pread(fd, buf + got, n - got, (off_t)(off + got));
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -errno;
        if (r == 0)
            return -ENODATA;
        got += (size_t)r;
    }
    return 0;
}

/* Reads the header as it is on disk now. */
int forward_read_header(int fd, uint8_t **out, size_t *len, unsigned *rate)
{
    size_t cap = 16384;
    for (;;) {
        uint8_t *b = malloc(cap);
        if (!b)
            return -ENOMEM;
        ssize_t r = pread(fd, b, cap, 0);
        int rc = r < 0 ? -errno : parse_header(b, (size_t)r, len, rate);
        if (rc == 0) {
            *out = b;
            return 0;
        }
        free(b);
        if (r < (ssize_t)cap || cap >= MAX_HEADER)
            return rc;
        cap *= 4;
    }
}

int forward_head_message(const uint8_t *hdr, size_t hlen, uint64_t size, uint8_t **msg,
                         size_t *len, char md5[33])
{
    for (int i = 0; i < 16; i++)
        snprintf(md5 + 2 * i, 3, "%02x", hdr[26 + i]);
    char line[160];
    int ll = snprintf(line, sizeof line, "pirec-forward-head 1 %" PRIu64 " %zu %s\n", size,
                      hlen, md5);
    *msg = malloc((size_t)ll + hlen);
    if (!*msg)
        return -ENOMEM;
    memcpy(*msg, line, (size_t)ll);
    memcpy(*msg + ll, hdr, hlen);
    *len = (size_t)ll + hlen;
    return 0;
}
