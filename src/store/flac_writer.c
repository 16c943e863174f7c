/* flac_writer: libFLAC stream encoder over our own fd; see flac_writer.h. */
#include "store/flac_writer.h"

#include "common/log.h"

#include <FLAC/metadata.h>
#include <FLAC/stream_encoder.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DEFAULT_PADDING 8192u
#define DEFAULT_QUEUE_BYTES ((size_t)64 << 20)
/* Frames are handed to the disk thread in batches of about this many bytes (a flush, the
 * end or a full queue hand over at once): at 192 kHz a frame comes every 43 ms, and a
 * wake-up per frame cost more CPU than the writes themselves. Frames wait in RAM at most
 * until the next flush, which is what a crash can rely on anyway. */
#define WAKE_BYTES ((size_t)64 << 10)

struct flac_writer {
    FLAC__StreamEncoder *enc;
    FLAC__StreamMetadata *md[2];
    int fd;
    unsigned rate, channels, bits;
    uint64_t pos;         /* where the next callback write goes */
    uint64_t size;        /* bytes in the file */
    uint64_t audio_end;   /* end of the last whole frame (or of the metadata) */
    uint64_t samples;     /* per channel, in whole frames written */
    unsigned min_fs, max_fs;
    int error;            /* first write error, sticky */
    uint64_t fail_after;  /* test hook */
    /* where the comments live, for the in-place rewrite */
    uint64_t vc_off;      /* offset of the VORBIS_COMMENT block header */
    size_t vc_space;      /* VC block + PADDING block, headers included */
    int pad_last;         /* the PADDING block carries the last-metadata flag */
    char *vendor;
    size_t vendor_len;
    char **comments;
    size_t n_comments;

    /* the queue: the encoder side above counts what was encoded, the disk side below
     * what is on disk */
    int thread_running;   /* until then (the header, written by open) writes are direct */
    pthread_t thr;
    pthread_mutex_t ql;
    pthread_cond_t qc;          /* items handed over, room made, quit */
    struct qitem *head, *tail;
    size_t qbytes, qmax, qpeak;
    size_t unsignalled;         /* bytes queued since the disk thread was last woken */
    int disk_idle;              /* the disk thread waits for items */
    int enc_waiting;            /* the encoder waits for room */
    int quit;
    _Atomic int derr;           /* first disk error, sticky */
    unsigned stall_ms;          /* test hook: PIREC_TEST_DISK_STALL_MS */
    uint64_t d_audio_end, d_samples, d_size;
    unsigned d_min_fs, d_max_fs;
};

enum { Q_DATA, Q_FLUSH };

struct qitem {
    struct qitem *next;
    int kind;
    uint64_t off;          /* Q_DATA: file offset */
    size_t len;
    uint32_t samples;      /* Q_DATA: samples of the frame it is (0: metadata) */
    size_t vc_len;         /* Q_FLUSH: 34 bytes STREAMINFO, then vc_len comment bytes */
    uint8_t data[];
};

static int pwrite_all(int fd, const void *buf, size_t n, uint64_t off)
{
    const uint8_t *p = buf;
    while (n) {
        ssize_t r = pwrite(fd, p, n, (off_t)off);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (r == 0)
            return -EIO;
        p += r;
        n -= (size_t)r;
        off += (uint64_t)r;
    }
    return 0;
}

static int pread_all(int fd, void *buf, size_t n, uint64_t off)
{
    uint8_t *p = buf;
    while (n) {
        ssize_t r = pread(fd, p, n, (off_t)off);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (r == 0)
            return -EINVAL;
        p += r;
        n -= (size_t)r;
        off += (uint64_t)r;
    }
    return 0;
}

static int enqueue_data(struct flac_writer *w, const uint8_t *buf, size_t n, uint32_t samples);

static FLAC__StreamEncoderWriteStatus write_cb(const FLAC__StreamEncoder *enc,
                                               const FLAC__byte buffer[], size_t bytes,
                                               uint32_t samples, uint32_t frame, void *arg)
{
    (void)enc;
    (void)frame;
    struct flac_writer *w = arg;
    if (w->error)
        return FLAC__STREAM_ENCODER_WRITE_STATUS_FATAL_ERROR;
    /* the header, while open() runs, is written at once (locate_comments reads it back);
     * everything after it goes through the queue */
    int rc = w->thread_running ? enqueue_data(w, buffer, bytes, samples)
                               : pwrite_all(w->fd, buffer, bytes, w->pos);
    if (rc < 0) {
        w->error = rc;
        return FLAC__STREAM_ENCODER_WRITE_STATUS_FATAL_ERROR;
    }
    w->pos += bytes;
    if (w->pos > w->size)
        w->size = w->pos;
    if (samples > 0) {
        /* libFLAC hands over each frame in one call: bytes is its exact size */
        w->samples += samples;
        w->audio_end = w->pos;
        if (!w->min_fs || bytes < w->min_fs)
            w->min_fs = (unsigned)bytes;
        if (bytes > w->max_fs)
            w->max_fs = (unsigned)bytes;
    }
    return FLAC__STREAM_ENCODER_WRITE_STATUS_OK;
}

/* ---- the queue and its disk thread ---------------------------------------------------- */

/* Appends an item; waits while the queue is over its bound (the ring in front of the
 * encoder absorbs that wait). Encoder thread. */
static int enqueue(struct flac_writer *w, struct qitem *it)
{
    pthread_mutex_lock(&w->ql);
    while (w->qbytes > 0 && w->qbytes + it->len > w->qmax && !atomic_load(&w->derr)) {
        /* what is queued must go out to make room, batch or not */
        w->enc_waiting = 1;
        w->unsignalled = 0;
        pthread_cond_broadcast(&w->qc);
        pthread_cond_wait(&w->qc, &w->ql);
        w->enc_waiting = 0;
    }
    int rc = atomic_load(&w->derr);
    if (rc == 0) {
        if (w->tail)
            w->tail->next = it;
        else
            w->head = it;
        w->tail = it;
        w->qbytes += it->len;
        if (w->qbytes > w->qpeak)
            w->qpeak = w->qbytes;
        w->unsignalled += it->len;
        if (w->disk_idle && (it->kind != Q_DATA || w->unsignalled >= WAKE_BYTES)) {
            w->unsignalled = 0;
            pthread_cond_broadcast(&w->qc);
        }
    }
    pthread_mutex_unlock(&w->ql);
    if (rc)
        free(it);
    return rc;
}

static int enqueue_data(struct flac_writer *w, const uint8_t *buf, size_t n, uint32_t samples)
{
    struct qitem *it = malloc(sizeof *it + n);
    if (!it)
        return -ENOMEM;
    *it = (struct qitem){.kind = Q_DATA, .off = w->pos, .len = n, .samples = samples};
    memcpy(it->data, buf, n);
    return enqueue(w, it);
}

static void disk_item(struct flac_writer *w, struct qitem *it)
{
    int rc = 0;
    if (it->kind == Q_DATA) {
        size_t n = it->len;
        int hook = 0;
        if (w->fail_after && it->off + n > w->fail_after) {
            n = it->off < w->fail_after ? (size_t)(w->fail_after - it->off) : 0;
            hook = 1;
        }
        rc = pwrite_all(w->fd, it->data, n, it->off);
        if (rc == 0 && hook)
            rc = -ENOSPC;
        if (it->off + n > w->d_size)
            w->d_size = it->off + n;
        if (rc == 0 && it->samples) {
            w->d_samples += it->samples;
            w->d_audio_end = it->off + it->len;
            if (!w->d_min_fs || it->len < w->d_min_fs)
                w->d_min_fs = (unsigned)it->len;
            if (it->len > w->d_max_fs)
                w->d_max_fs = (unsigned)it->len;
        }
    } else {
        if (w->stall_ms) {
            /* once per file, so that a test's take also ends in reasonable time */
            struct timespec ts = {w->stall_ms / 1000, (long)(w->stall_ms % 1000) * 1000000L};
            w->stall_ms = 0;
            while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                ;
        }
        rc = pwrite_all(w->fd, it->data, 34, 8);
        if (rc == 0 && it->vc_len)
            rc = pwrite_all(w->fd, it->data + 34, it->vc_len, w->vc_off);
        if (rc == 0 && fdatasync(w->fd) < 0)
            rc = -errno;
    }
    if (rc < 0) {
        int zero = 0;
        atomic_compare_exchange_strong(&w->derr, &zero, rc);
        log_err("take", "disk write failed: %s", strerror(-rc));
    }
}

static void *disk_main(void *arg)
{
    struct flac_writer *w = arg;
    pthread_mutex_lock(&w->ql);
    for (;;) {
        while (!w->head && !w->quit) {
            w->disk_idle = 1;
            w->unsignalled = 0;
            pthread_cond_wait(&w->qc, &w->ql);
            w->disk_idle = 0;
        }
        struct qitem *it = w->head;
        if (!it)
            break;
        w->head = it->next;
        if (!w->head)
            w->tail = NULL;
        pthread_mutex_unlock(&w->ql);
        /* after an error the rest is dropped: the file ends at its last whole frame */
        if (!atomic_load(&w->derr))
            disk_item(w, it);
        pthread_mutex_lock(&w->ql);
        w->qbytes -= it->len;
        free(it);
        if (w->enc_waiting)
            pthread_cond_broadcast(&w->qc);
    }
    pthread_mutex_unlock(&w->ql);
    return NULL;
}

static void stop_disk_thread(struct flac_writer *w)
{
    if (!w->thread_running)
        return;
    pthread_mutex_lock(&w->ql);
    w->quit = 1;
    pthread_cond_broadcast(&w->qc);
    pthread_mutex_unlock(&w->ql);
    pthread_join(w->thr, NULL);
    w->thread_running = 0;
}

size_t flac_writer_queued(struct flac_writer *w, size_t *peak)
{
    pthread_mutex_lock(&w->ql);
    size_t n = w->qbytes;
    if (peak)
        *peak = w->qpeak;
    pthread_mutex_unlock(&w->ql);
    return n;
}

static FLAC__StreamEncoderSeekStatus seek_cb(const FLAC__StreamEncoder *enc,
                                             FLAC__uint64 off, void *arg)
{
    (void)enc;
    struct flac_writer *w = arg;
    if (w->error)
        return FLAC__STREAM_ENCODER_SEEK_STATUS_ERROR;
    w->pos = off;
    return FLAC__STREAM_ENCODER_SEEK_STATUS_OK;
}

static FLAC__StreamEncoderTellStatus tell_cb(const FLAC__StreamEncoder *enc,
                                             FLAC__uint64 *off, void *arg)
{
    (void)enc;
    struct flac_writer *w = arg;
    *off = w->pos;
    return FLAC__STREAM_ENCODER_TELL_STATUS_OK;
}

void flac_streaminfo_pack(uint8_t o[34], unsigned min_bs, unsigned max_bs, unsigned min_fs,
                          unsigned max_fs, unsigned rate, unsigned channels, unsigned bits,
                          uint64_t total, const uint8_t md5[16])
{
    o[0] = (uint8_t)(min_bs >> 8);
    o[1] = (uint8_t)min_bs;
    o[2] = (uint8_t)(max_bs >> 8);
    o[3] = (uint8_t)max_bs;
    o[4] = (uint8_t)(min_fs >> 16);
    o[5] = (uint8_t)(min_fs >> 8);
    o[6] = (uint8_t)min_fs;
    o[7] = (uint8_t)(max_fs >> 16);
    o[8] = (uint8_t)(max_fs >> 8);
    o[9] = (uint8_t)max_fs;
    /* 20 bits rate, 3 bits channels-1, 5 bits bits-1, 36 bits total samples */
    uint64_t v = ((uint64_t)(rate & 0xFFFFF) << 44) | ((uint64_t)((channels - 1) & 7) << 41) |
                 ((uint64_t)((bits - 1) & 31) << 36) | (total & 0xFFFFFFFFFull);
    for (int i = 0; i < 8; i++)
        o[10 + i] = (uint8_t)(v >> (56 - 8 * i));
    if (md5)
        memcpy(o + 18, md5, 16);
    else
        memset(o + 18, 0, 16);
}

/* Finds VORBIS_COMMENT followed by PADDING in the metadata libFLAC wrote, and the vendor
 * string, so that the comments can later be rewritten without moving any frame. */
static int locate_comments(struct flac_writer *w)
{
    uint64_t off = 4;
    for (int guard = 0; guard < 64; guard++) {
        uint8_t h[4];
        int rc = pread_all(w->fd, h, 4, off);
        if (rc < 0)
            return rc;
        unsigned type = h[0] & 0x7F, len = (unsigned)h[1] << 16 | (unsigned)h[2] << 8 | h[3];
        if (type == 4) {
            uint8_t nh[4], vl[4];
            if ((h[0] & 0x80) || (rc = pread_all(w->fd, nh, 4, off + 4 + len)) < 0)
                return rc < 0 ? rc : -EINVAL;
            if ((nh[0] & 0x7F) != 1)
                return -EINVAL;
            unsigned plen = (unsigned)nh[1] << 16 | (unsigned)nh[2] << 8 | nh[3];
            if ((rc = pread_all(w->fd, vl, 4, off + 4)) < 0)
                return rc;
            size_t vlen = (size_t)vl[0] | (size_t)vl[1] << 8 | (size_t)vl[2] << 16 |
                          (size_t)vl[3] << 24;
            if (vlen > len - 4)
                return -EINVAL;
            w->vendor = malloc(vlen + 1);
            if (!w->vendor)
                return -ENOMEM;
            if ((rc = pread_all(w->fd, w->vendor, vlen, off + 8)) < 0)
                return rc;
            w->vendor_len = vlen;
            w->vc_off = off;
            w->vc_space = 4 + (size_t)len + 4 + plen;
            w->pad_last = !!(nh[0] & 0x80);
            return 0;
        }
        if (h[0] & 0x80)
            return -EINVAL;
        off += 4 + len;
    }
    return -EINVAL;
}

static void put_le32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

/* Rewrites VORBIS_COMMENT + PADDING in place. Extra comments that do not fit are left
 * out (the caller puts the important ones first) and a warning says so. */
static int build_comments(struct flac_writer *w, const char *const *extra, size_t n_extra,
                          uint8_t *buf)
{
    memset(buf, 0, w->vc_space);
    size_t used = 4 + 4 + w->vendor_len + 4;
    size_t count = 0;
    size_t need = used;
    for (size_t i = 0; i < w->n_comments; i++)
        need += 4 + strlen(w->comments[i]);
    if (need + 4 > w->vc_space)
        return -ENOSPC;
    size_t p = 4;
    put_le32(buf + p, (uint32_t)w->vendor_len);
    memcpy(buf + p + 4, w->vendor, w->vendor_len);
    p += 4 + w->vendor_len;
    size_t count_at = p;
    p += 4;
    for (size_t i = 0; i < w->n_comments; i++) {
        size_t l = strlen(w->comments[i]);
        put_le32(buf + p, (uint32_t)l);
        memcpy(buf + p + 4, w->comments[i], l);
        p += 4 + l;
        count++;
    }
    size_t dropped = 0;
    for (size_t i = 0; i < n_extra; i++) {
        size_t l = strlen(extra[i]);
        if (p + 4 + l + 4 > w->vc_space) {
            dropped = n_extra - i;
            break;
        }
        put_le32(buf + p, (uint32_t)l);
        memcpy(buf + p + 4, extra[i], l);
        p += 4 + l;
        count++;
    }
    if (dropped)
        log_warn("take", "%zu loss comments did not fit the reserved padding; the totals in "
                 "PIREC_LOSSES are complete", dropped);
    put_le32(buf + count_at, (uint32_t)count);
    size_t body = p - 4;
    buf[0] = 4;
    buf[1] = (uint8_t)(body >> 16);
    buf[2] = (uint8_t)(body >> 8);
    buf[3] = (uint8_t)body;
    size_t plen = w->vc_space - p - 4;
    buf[p] = (uint8_t)(1 | (w->pad_last ? 0x80 : 0));
    buf[p + 1] = (uint8_t)(plen >> 16);
    buf[p + 2] = (uint8_t)(plen >> 8);
    buf[p + 3] = (uint8_t)plen;
    return 0;
}

static int rewrite_comments(struct flac_writer *w, const char *const *extra, size_t n_extra)
{
    uint8_t *buf = malloc(w->vc_space);
    if (!buf)
        return -ENOMEM;
    int rc = build_comments(w, extra, n_extra, buf);
    if (rc == 0)
        rc = pwrite_all(w->fd, buf, w->vc_space, w->vc_off);
    free(buf);
    return rc;
}

static void writer_free(struct flac_writer *w)
{
    stop_disk_thread(w);
    while (w->head) {
        struct qitem *it = w->head;
        w->head = it->next;
        free(it);
    }
    pthread_mutex_destroy(&w->ql);
    pthread_cond_destroy(&w->qc);
    if (w->enc)
        FLAC__stream_encoder_delete(w->enc);
    for (int i = 0; i < 2; i++)
        if (w->md[i])
            FLAC__metadata_object_delete(w->md[i]);
    for (size_t i = 0; i < w->n_comments; i++)
        free(w->comments[i]);
    free(w->comments);
    free(w->vendor);
    if (w->fd >= 0)
        close(w->fd);
    free(w);
}

int flac_writer_open(struct flac_writer **out, const char *path,
                     const struct flac_writer_config *cfg)
{
    *out = NULL;
    if (!cfg->rate || cfg->rate > 655350 || !cfg->channels || cfg->channels > 8 ||
        (cfg->bits != 16 && cfg->bits != 24 && cfg->bits != 32) || cfg->compression > 8 ||
        cfg->max_lpc_order > 32)
        return -EINVAL;
    struct flac_writer *w = calloc(1, sizeof *w);
    if (!w)
        return -ENOMEM;
    w->fd = -1;
    pthread_mutex_init(&w->ql, NULL);
    pthread_cond_init(&w->qc, NULL);
    w->rate = cfg->rate;
    w->channels = cfg->channels;
    w->bits = cfg->bits;
    int rc = -ENOMEM;
    w->comments = calloc(cfg->n_comments + 1, sizeof *w->comments);
    if (!w->comments)
        goto fail;
    for (size_t i = 0; i < cfg->n_comments; i++) {
        if (!(w->comments[i] = strdup(cfg->comments[i])))
            goto fail;
        w->n_comments++;
    }
    w->enc = FLAC__stream_encoder_new();
    w->md[0] = FLAC__metadata_object_new(FLAC__METADATA_TYPE_VORBIS_COMMENT);
    w->md[1] = FLAC__metadata_object_new(FLAC__METADATA_TYPE_PADDING);
    if (!w->enc || !w->md[0] || !w->md[1])
        goto fail;
    for (size_t i = 0; i < cfg->n_comments; i++) {
        FLAC__StreamMetadata_VorbisComment_Entry e = {
            .length = (FLAC__uint32)strlen(cfg->comments[i]),
            .entry = (FLAC__byte *)(uintptr_t)cfg->comments[i],
        };
        if (!FLAC__metadata_object_vorbiscomment_append_comment(w->md[0], e, true))
            goto fail;
    }
    w->md[1]->length = cfg->padding ? cfg->padding : DEFAULT_PADDING;

    unsigned bs = cfg->blocksize;
    FLAC__bool ok = FLAC__stream_encoder_set_channels(w->enc, cfg->channels) &&
                    FLAC__stream_encoder_set_bits_per_sample(w->enc, cfg->bits) &&
                    FLAC__stream_encoder_set_sample_rate(w->enc, cfg->rate) &&
                    FLAC__stream_encoder_set_compression_level(w->enc, cfg->compression) &&
                    FLAC__stream_encoder_set_verify(w->enc, false) &&
                    FLAC__stream_encoder_set_metadata(w->enc, w->md, 2);
    if (ok && bs)
        ok = FLAC__stream_encoder_set_blocksize(w->enc, bs);
    /* after the level, which sets its own order */
    if (ok && cfg->max_lpc_order)
        ok = FLAC__stream_encoder_set_max_lpc_order(w->enc, cfg->max_lpc_order);
    if (!bs)
        bs = 4096;
    /* the subset allows at most 24 bits and 4608 samples per block up to 48 kHz */
    if (ok)
        ok = FLAC__stream_encoder_set_streamable_subset(
            w->enc, cfg->bits <= 24 && bs <= (cfg->rate <= 48000 ? 4608u : 16384u));
    rc = -EINVAL;
    if (!ok)
        goto fail;

    w->fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (w->fd < 0) {
        rc = -errno;
        goto fail;
    }
    FLAC__StreamEncoderInitStatus st =
        FLAC__stream_encoder_init_stream(w->enc, write_cb, seek_cb, tell_cb, NULL, w);
    if (st != FLAC__STREAM_ENCODER_INIT_STATUS_OK) {
        rc = w->error ? w->error : -EINVAL;
        if (!w->error)
            log_err("take", "libFLAC refused the format (%u Hz, %u ch, %u bit): %s", cfg->rate,
                    cfg->channels, cfg->bits, FLAC__StreamEncoderInitStatusString[st]);
        unlink(path);
        goto fail;
    }
    w->audio_end = w->pos;
    if ((rc = locate_comments(w)) < 0) {
        unlink(path);
        goto fail;
    }
    /* from here on the disk thread writes, in order */
    const char *e = getenv("PIREC_TEST_DISK_STALL_MS");
    w->stall_ms = e ? (unsigned)strtoul(e, NULL, 10) : 0;
    w->qmax = cfg->queue_bytes ? cfg->queue_bytes : DEFAULT_QUEUE_BYTES;
    /* test hook (tests only, with the stall above): a queue this small makes a stalled
     * disk hold up the encoder, so the writer falls behind the ring for real */
    if ((e = getenv("PIREC_TEST_QUEUE_BYTES")) && strtoul(e, NULL, 10) > 0)
        w->qmax = (size_t)strtoul(e, NULL, 10);
    w->d_audio_end = w->audio_end;
    w->d_size = w->size;
    if ((rc = pthread_create(&w->thr, NULL, disk_main, w)) != 0) {
        rc = -rc;
        unlink(path);
        goto fail;
    }
    w->thread_running = 1;
    pthread_setname_np(w->thr, "take-disk");
    *out = w;
    return 0;
fail:
    writer_free(w);
    return rc;
}

int flac_writer_process(struct flac_writer *w, const int32_t *samples, size_t frames)
{
    if (!w->error)
        w->error = atomic_load(&w->derr);
    if (w->error)
        return w->error;
    while (frames) {
        /* libFLAC takes a 32-bit count */
        uint32_t n = frames > (1u << 20) ? (1u << 20) : (uint32_t)frames;
        if (!FLAC__stream_encoder_process_interleaved(w->enc, samples, n)) {
            if (!w->error)
                w->error = -EIO;
            return w->error;
        }
        samples += (size_t)n * w->channels;
        frames -= n;
    }
    return 0;
}

static int write_streaminfo(struct flac_writer *w)
{
    uint8_t si[34];
    unsigned bs = FLAC__stream_encoder_get_blocksize(w->enc);
    flac_streaminfo_pack(si, bs, bs, w->min_fs, w->max_fs, w->rate, w->channels, w->bits,
                         w->samples, NULL);
    return pwrite_all(w->fd, si, sizeof si, 8);
}

int flac_writer_flush(struct flac_writer *w, const char *const *extra, size_t n_extra)
{
    if (!w->error)
        w->error = atomic_load(&w->derr);
    if (w->error)
        return w->error;
    /* a snapshot of what was encoded so far: the disk thread writes it after the frames it
     * describes, so the file on disk is always consistent */
    size_t vc = extra ? w->vc_space : 0;
    struct qitem *it = malloc(sizeof *it + 34 + vc);
    if (!it)
        return -ENOMEM;
    *it = (struct qitem){.kind = Q_FLUSH, .len = 34 + vc, .vc_len = vc};
    unsigned bs = FLAC__stream_encoder_get_blocksize(w->enc);
    flac_streaminfo_pack(it->data, bs, bs, w->min_fs, w->max_fs, w->rate, w->channels,
                         w->bits, w->samples, NULL);
    int rc = vc ? build_comments(w, extra, n_extra, it->data + 34) : 0;
    if (rc < 0) {
        free(it);
        return rc;
    }
    return enqueue(w, it);
}

int flac_writer_finish(struct flac_writer *w, const char *const *extra, size_t n_extra)
{
    return flac_writer_finish_ex(w, extra, n_extra, NULL);
}

int flac_writer_finish_ex(struct flac_writer *w, const char *const *extra, size_t n_extra,
                          uint64_t *whole)
{
    /* get_state() before finish(): finish() resets it */
    FLAC__StreamEncoderState st = FLAC__stream_encoder_get_state(w->enc);
    if (st == FLAC__STREAM_ENCODER_OK && !w->error) {
        if (!FLAC__stream_encoder_finish(w->enc) && !w->error)
            w->error = -EIO;
    } else {
        FLAC__stream_encoder_finish(w->enc);
    }
    /* everything queued goes to disk first; then the file is described by what is really
     * there */
    stop_disk_thread(w);
    if (!w->error)
        w->error = atomic_load(&w->derr);
    if (w->error) {
        w->audio_end = w->d_audio_end;
        w->samples = w->d_samples;
        w->min_fs = w->d_min_fs;
        w->max_fs = w->d_max_fs;
        w->size = w->d_size;
    }
    if (whole)
        *whole = w->samples;
    int rc = 0;
    if (w->error) {
        /* libFLAC could not end the file: cut a torn frame and describe what is there */
        if (ftruncate(w->fd, (off_t)w->audio_end) < 0)
            log_err("take", "cannot cut the torn frame: %s", strerror(errno));
        else
            w->size = w->audio_end;
        rc = write_streaminfo(w);
    }
    if (rc == 0)
        rc = rewrite_comments(w, extra, n_extra);
    if (rc == 0 && fsync(w->fd) < 0)
        rc = -errno;
    if (!w->error)
        w->error = rc;
    rc = w->error;
    writer_free(w);
    return rc;
}

uint64_t flac_writer_bytes(const struct flac_writer *w)
{
    return w->size;
}

uint64_t flac_writer_samples(const struct flac_writer *w)
{
    return w->samples;
}

void flac_writer_test_fail_after(struct flac_writer *w, uint64_t bytes)
{
    w->fail_after = bytes;
}
