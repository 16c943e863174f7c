/*
 * flac_repair_scan: the frame walk of repair; see flac_repair_scan.h.
 *
 * The frame walk is written by hand: libFLAC's decoder can tell where it is, but it
 * resynchronises silently over damage and reports no byte offsets of frames in a torn
 * file, which is exactly what repair needs. A frame is accepted when its header CRC-8 is
 * right, its CRC-16 closes it, and the next frame header (CRC-8 right, next frame number)
 * starts there. The last frame has no next header to vouch for it, and a torn one closes
 * its CRC-16 at the cut once in 65536 cuts: it is kept only if libFLAC decodes it cleanly.
 * Nothing else is decoded, so a 5 GB take is repaired at disk speed in bounded memory.
 */
#include "store/flac_repair_scan.h"

#include "store/flac_writer.h"

#include <FLAC/stream_decoder.h>

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define WINDOW (1u << 20)
#define MAX_FRAME_BYTES (16u << 20) /* larger than any legal frame (65535 x 8 ch x 32 bit) */

static uint8_t crc8_table[256];
static uint16_t crc16_table[256];
static pthread_once_t tables_once = PTHREAD_ONCE_INIT;

static void make_tables(void)
{
    for (unsigned i = 0; i < 256; i++) {
        unsigned c = i;
        for (int b = 0; b < 8; b++)
            c = (c & 0x80) ? ((c << 1) ^ 0x07) : (c << 1);
        crc8_table[i] = (uint8_t)c;
        unsigned d = i << 8;
        for (int b = 0; b < 8; b++)
            d = (d & 0x8000) ? ((d << 1) ^ 0x8005) : (d << 1);
        crc16_table[i] = (uint16_t)d;
    }
}

int repair_reader_init(struct repair_reader *r, int fd, uint64_t size)
{
    pthread_once(&tables_once, make_tables);
    memset(r, 0, sizeof(*r));
    r->fd = fd;
    r->size = size;
    r->buf = malloc(WINDOW);
    return r->buf ? 0 : -ENOMEM;
}

void repair_reader_free(struct repair_reader *r)
{
    free(r->buf);
    r->buf = NULL;
}

/* Pointer to file bytes [off, off+n), or NULL past the end / on a read error. */
static const uint8_t *peek(struct repair_reader *r, uint64_t off, size_t n)
{
    if (off + n > r->size || n > WINDOW)
        return NULL;
    if (off >= r->base && off + n <= r->base + r->len)
        return r->buf + (off - r->base);
    r->base = off;
    r->len = 0;
    while (r->len < WINDOW && r->base + r->len < r->size) {
        ssize_t k = pread(r->fd, r->buf + r->len, WINDOW - r->len, (off_t)(r->base + r->len));
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            break;
        r->len += (size_t)k;
    }
    return r->len >= n ? r->buf : NULL;
}

struct frame_hdr {
    unsigned len;        /* header bytes including CRC-8 */
    unsigned blocksize;
    uint64_t number;     /* frame number (fixed) or sample number (variable) */
    int variable;
};

/* Parses and checks a frame header at off against the stream's format. */
static int parse_header(struct repair_reader *r, uint64_t off, const struct repair_stream *si,
                        struct frame_hdr *h)
{
    const uint8_t *p = peek(r, off, 16);
    uint8_t tmp[16];
    if (!p) {
        /* near the end of the file: take what is there */
        size_t avail = off < r->size && r->size - off < sizeof tmp ? (size_t)(r->size - off) : 0;
        if (avail < 6 || !(p = peek(r, off, avail)))
            return -1;
        memset(tmp, 0, sizeof tmp);
        memcpy(tmp, p, avail);
        p = tmp;
    }
    if (p[0] != 0xFF || (p[1] & 0xFE) != 0xF8)
        return -1;
    h->variable = p[1] & 1;
    unsigned bs_code = p[2] >> 4, sr_code = p[2] & 15;
    unsigned ch = p[3] >> 4, ss = (p[3] >> 1) & 7;
    if (bs_code == 0 || sr_code == 15 || ch > 10 || (p[3] & 1) || ss == 3)
        return -1;
    unsigned channels = ch < 8 ? ch + 1 : 2;
    if (channels != si->channels)
        return -1;
    static const unsigned ss_bits[8] = {0, 8, 12, 0, 16, 20, 24, 32};
    if (ss && ss_bits[ss] != si->bits)
        return -1;
    /* UTF-8-like coded number */
    unsigned i = 4;
    uint64_t v = p[i];
    unsigned extra;
    if (!(v & 0x80)) {
        extra = 0;
    } else if ((v & 0xE0) == 0xC0) {
        extra = 1;
        v &= 0x1F;
    } else if ((v & 0xF0) == 0xE0) {
        extra = 2;
        v &= 0x0F;
    } else if ((v & 0xF8) == 0xF0) {
        extra = 3;
        v &= 0x07;
    } else if ((v & 0xFC) == 0xF8) {
        extra = 4;
        v &= 0x03;
    } else if ((v & 0xFE) == 0xFC) {
        extra = 5;
        v &= 0x01;
    } else if (v == 0xFE) {
        extra = 6;
        v = 0;
    } else {
        return -1;
    }
    i++;
    for (unsigned k = 0; k < extra; k++, i++) {
        if ((p[i] & 0xC0) != 0x80)
            return -1;
        v = (v << 6) | (p[i] & 0x3F);
    }
    h->number = v;
    if (bs_code == 1)
        h->blocksize = 192;
    else if (bs_code <= 5)
        h->blocksize = 576u << (bs_code - 2);
    else if (bs_code == 6)
        h->blocksize = (unsigned)p[i++] + 1;
    else if (bs_code == 7) {
        h->blocksize = ((unsigned)p[i] << 8 | p[i + 1]) + 1;
        i += 2;
    } else
        h->blocksize = 256u << (bs_code - 8);
    if (sr_code == 12)
        i += 1;
    else if (sr_code == 13 || sr_code == 14)
        i += 2;
    uint8_t crc = 0;
    for (unsigned k = 0; k < i; k++)
        crc = crc8_table[crc ^ p[k]];
    if (crc != p[i])
        return -1;
    h->len = i + 1;
    if (off + h->len > r->size)
        return -1;
    return 0;
}

/* Reads STREAMINFO and finds where the frames start. -EINVAL: not FLAC; -ENODATA: the
 * file ends inside its metadata (a crash while the take's header was being written). */
int repair_read_metadata(struct repair_reader *r, struct repair_stream *si, uint64_t *audio_start)
{
    static const uint8_t head[8] = {'f', 'L', 'a', 'C', 0, 0, 0, 34};
    const uint8_t *p = peek(r, 0, 4 + 4 + 34);
    if (!p) {
        size_t n = r->size < 8 ? (size_t)r->size : 8;
        const uint8_t *q = n ? peek(r, 0, n) : head;
        return q && !memcmp(q, head, n) ? -ENODATA : -EINVAL;
    }
    if (memcmp(p, "fLaC", 4) != 0 || (p[4] & 0x7F) != 0)
        return -EINVAL;
    unsigned len = (unsigned)p[5] << 16 | (unsigned)p[6] << 8 | p[7];
    if (len != 34)
        return -EINVAL;
    const uint8_t *s = p + 8;
    si->min_bs = (unsigned)s[0] << 8 | s[1];
    si->max_bs = (unsigned)s[2] << 8 | s[3];
    si->min_fs = (unsigned)s[4] << 16 | (unsigned)s[5] << 8 | s[6];
    si->max_fs = (unsigned)s[7] << 16 | (unsigned)s[8] << 8 | s[9];
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | s[10 + i];
    si->rate = (unsigned)(v >> 44);
    si->channels = (unsigned)((v >> 41) & 7) + 1;
    si->bits = (unsigned)((v >> 36) & 31) + 1;
    si->total = v & 0xFFFFFFFFFull;
    memcpy(si->md5, s + 18, 16);
    if (si->rate == 0 || si->bits < 4)
        return -EINVAL;
    uint64_t off = 4;
    for (;;) {
        const uint8_t *h = peek(r, off, 4);
        if (!h)
            return -ENODATA;
        unsigned l = (unsigned)h[1] << 16 | (unsigned)h[2] << 8 | h[3];
        /* a second STREAMINFO would be the one decoders believe, not the one patched */
        if ((h[0] & 0x7F) == 127 || (off > 4 && (h[0] & 0x7F) == 0))
            return -EINVAL;
        off += 4 + (uint64_t)l;
        if (off > r->size)
            return -ENODATA;
        if (h[0] & 0x80)
            break;
    }
    *audio_start = off;
    return 0;
}

/* libFLAC's view of one frame: a stream of "fLaC", a STREAMINFO and that frame alone. */
struct one_frame {
    uint8_t *buf;
    size_t len, pos;
    unsigned frames;
    int bad;
};

static FLAC__StreamDecoderReadStatus one_read(const FLAC__StreamDecoder *d, FLAC__byte out[],
                                              size_t *n, void *arg)
{
    (void)d;
    struct one_frame *o = arg;
    size_t k = o->len - o->pos < *n ? o->len - o->pos : *n;
    memcpy(out, o->buf + o->pos, k);
    o->pos += k;
    *n = k;
    return k ? FLAC__STREAM_DECODER_READ_STATUS_CONTINUE
             : FLAC__STREAM_DECODER_READ_STATUS_END_OF_STREAM;
}

static FLAC__StreamDecoderWriteStatus one_write(const FLAC__StreamDecoder *d,
                                                const FLAC__Frame *f,
                                                const FLAC__int32 *const b[], void *arg)
{
    (void)d;
    (void)f;
    (void)b;
    ((struct one_frame *)arg)->frames++;
    return FLAC__STREAM_DECODER_WRITE_STATUS_CONTINUE;
}

static void one_error(const FLAC__StreamDecoder *d, FLAC__StreamDecoderErrorStatus st,
                      void *arg)
{
    (void)d;
    (void)st;
    ((struct one_frame *)arg)->bad = 1;
}

/* Does libFLAC decode bytes [off, end) as exactly one whole frame, with no byte left? */
static int frame_decodes(struct repair_reader *r, uint64_t off, uint64_t end,
                         const struct repair_stream *si, const struct frame_hdr *h)
{
    size_t flen = (size_t)(end - off), hlen = 4 + 4 + 34;
    struct one_frame o = {.buf = malloc(hlen + flen), .len = hlen + flen};
    FLAC__StreamDecoder *d = FLAC__stream_decoder_new();
    int ok = 0;
    if (!o.buf || !d)
        goto out;
    memcpy(o.buf, "fLaC\x80\x00\x00\x22", 8);
    flac_streaminfo_pack(o.buf + 8, h->blocksize, h->blocksize, 0, 0, si->rate, si->channels,
                         si->bits, 0, NULL);
    for (size_t got = 0; got < flen;) {
        ssize_t k = pread(r->fd, o.buf + hlen + got, flen - got, (off_t)(off + got));
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            goto out;
        got += (size_t)k;
    }
    if (FLAC__stream_decoder_init_stream(d, one_read, NULL, NULL, NULL, NULL, one_write, NULL,
                                         one_error, &o) != FLAC__STREAM_DECODER_INIT_STATUS_OK)
        goto out;
    FLAC__bool done = FLAC__stream_decoder_process_until_end_of_stream(d);
    FLAC__stream_decoder_finish(d);
    ok = done && !o.bad && o.frames == 1 && o.pos == o.len;
out:
    if (d)
        FLAC__stream_decoder_delete(d);
    free(o.buf);
    return ok;
}

#define MAX_HEADER_BYTES 16 /* sync 2, codes 2, number up to 7, block size 2, rate 2, CRC 1 */

/* Does the frame that starts at off with header cur end at end? Yes when the next frame
 * header (with the next number) starts there; or when the file ends there, or after less
 * than a header starting with the sync byte (the next header torn), and libFLAC decodes
 * the frame whole. */
static int frame_boundary(struct repair_reader *r, uint64_t off, uint64_t end,
                          const struct repair_stream *si, const struct repair_walk *w,
                          const struct frame_hdr *cur)
{
    struct frame_hdr n;
    if (end < r->size && parse_header(r, end, si, &n) == 0 && n.variable == cur->variable)
        return n.number == (cur->variable ? w->samples + cur->blocksize : w->frames + 1);
    const uint8_t *b;
    if (end == r->size ||
        (r->size - end < MAX_HEADER_BYTES && (b = peek(r, end, 1)) && b[0] == 0xFF))
        return frame_decodes(r, off, end, si, cur);
    return 0;
}

void repair_walk_frames(struct repair_reader *r, const struct repair_stream *si,
                        struct repair_walk *w)
{
    uint64_t off = w->audio_start;
    w->end = off;
    while (off < r->size) {
        struct frame_hdr h;
        if (parse_header(r, off, si, &h) < 0)
            break;
        if (h.number != (h.variable ? w->samples : w->frames))
            break;
        uint16_t crc = 0;
        uint64_t p = off, found = 0;
        uint64_t limit = off + MAX_FRAME_BYTES < r->size ? off + MAX_FRAME_BYTES : r->size;
        while (p < limit && !found) {
            size_t n = (size_t)(limit - p < WINDOW / 2 ? limit - p : WINDOW / 2);
            const uint8_t *b = peek(r, p, n);
            if (!b)
                break;
            for (size_t i = 0; i < n; i++) {
                crc = (uint16_t)((crc << 8) ^ crc16_table[(crc >> 8) ^ b[i]]);
                uint64_t end = p + i + 1;
                if (crc == 0 && end - off > h.len + 2) {
                    if (frame_boundary(r, off, end, si, w, &h)) {
                        found = end;
                        break;
                    }
                    /* frame_boundary may have moved the window */
                    if (!(b = peek(r, p, n)))
                        break;
                }
            }
            if (!found)
                p += n;
        }
        if (!found)
            break;
        unsigned fs = (unsigned)(found - off);
        if (!w->min_fs || fs < w->min_fs)
            w->min_fs = fs;
        if (fs > w->max_fs)
            w->max_fs = fs;
        if (!w->frames) {
            w->first_bs = h.blocksize;
            w->variable = h.variable;
        }
        /* min/max block size leave out the last frame, which may be short */
        if (w->frames) {
            if (!w->min_bs || w->last_bs < w->min_bs)
                w->min_bs = w->last_bs;
            if (w->last_bs > w->max_bs)
                w->max_bs = w->last_bs;
        }
        w->last_bs = h.blocksize;
        w->frames++;
        w->samples += h.blocksize;
        off = found;
        w->end = off;
    }
}

/* Is there a frame header at or after `from`: any (any = 1), or one numbered past the
 * frames the walk kept? */
static int header_after(struct repair_reader *r, const struct repair_stream *si, uint64_t from,
                        const struct repair_walk *w, int any)
{
    for (uint64_t off = from; off + 6 <= r->size; off++) {
        const uint8_t *b = peek(r, off, 2);
        if (!b)
            return 0;
        if (b[0] != 0xFF || (b[1] & 0xFE) != 0xF8)
            continue;
        struct frame_hdr h;
        if (parse_header(r, off, si, &h) == 0 &&
            (any || h.number > (h.variable ? w->samples : w->frames)))
            return 1;
    }
    return 0;
}

/* Does a frame that follows on from the walk lie in the tail? Then the damage is in the
 * middle and truncating would destroy audio. */
int repair_tail_has_frames(struct repair_reader *r, const struct repair_stream *si,
                           const struct repair_walk *w)
{
    return header_after(r, si, w->end, w, 0);
}

/* A take whose file ends inside its metadata: created, but killed before its header was
 * all written. Small, the start of a FLAC header, and no frame header anywhere. */
int repair_header_torn(struct repair_reader *r, const struct repair_stream *si)
{
    return r->size < 4 + 4 + 34 ||
           (r->size < (1u << 20) && !header_after(r, si, 4 + 4 + 34, NULL, 1));
}

/* A take cut off before its first whole frame (a crash right after it started or split):
 * nothing but the metadata, or that and less than one frame. It holds no audio. */
int repair_empty_take(struct repair_reader *r, const struct repair_stream *si,
                      const struct repair_walk *w)
{
    uint64_t tail = r->size - w->audio_start;
    if (tail == 0)
        return 1;
    /* the largest frame the format allows (verbatim samples) plus its header */
    uint64_t max_frame = (uint64_t)(si->max_bs ? si->max_bs : 65535) * si->channels *
                         si->bits / 8 + 64;
    /* what is there must be the start of frame 0: its sync code, as far as it got */
    const uint8_t *b = peek(r, w->audio_start, tail < 2 ? 1 : 2);
    return tail < max_frame && b && b[0] == 0xFF && (tail < 2 || (b[1] & 0xFE) == 0xF8) &&
           !repair_tail_has_frames(r, si, w);
}
