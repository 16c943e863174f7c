/*
 * source_file: plays a WAV or raw PCM file as if it were a device, for tests, demos and
 * benchmarks. WAV: PCM 16/24/32-bit, plain or WAVE_FORMAT_EXTENSIBLE; float and compressed
 * WAVs are refused with a message. Raw: the format comes from `want`.
 *
 * The fault hooks make it behave like a failing device: fail_at_frame -> -ENODEV as an
 * unplugged card would; a stall sleeps inside read() and then, like a device that kept
 * running while nobody read it, skips the stalled frames and reports -EPIPE with
 * last_xrun = {frames delivered so far, frames skipped}.
 */
#include "audio/source.h"
#include "audio/source_util.h"
#include "common/log.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct file_src {
    int fd;
    uint64_t data_off;
    uint64_t data_frames;   /* whole frames in the file's audio data */
    uint64_t file_pos;      /* next frame of the file to deliver */
    uint64_t delivered;     /* frames returned by read() */
    uint64_t clock_frames;  /* frames of real time elapsed (delivered + skipped) */
    size_t frame_bytes;
    struct file_source_options opt;
    int stalled;
    struct pacer pacer;
};

static uint32_t le32(const uint8_t *p) { return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24; }
static uint16_t le16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }

static int read_full(int fd, void *buf, size_t n, uint64_t off)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = pread(fd, (uint8_t *)buf + got, n - got, (off_t)(off + got));
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (r == 0)
            break;
        got += (size_t)r;
    }
    return (int)got;
}

/* Parses a RIFF/WAVE header: fills fmt, data offset and length. */
static int parse_wav(int fd, const char *path, uint64_t file_size, struct audio_format *fmt,
                     uint64_t *data_off, uint64_t *data_len)
{
    uint8_t h[12];
    if (read_full(fd, h, 12, 0) != 12 || memcmp(h, "RIFF", 4) || memcmp(h + 8, "WAVE", 4)) {
        log_err("file", "%s: not a WAV file (no RIFF/WAVE header)", path);
        return -EINVAL;
    }
    uint64_t off = 12;
    int have_fmt = 0;
    unsigned container = 0;
    for (;;) {
        uint8_t ch[8];
        if (read_full(fd, ch, 8, off) != 8) {
            log_err("file", "%s: WAV file has no %s chunk (truncated or damaged)", path,
                    have_fmt ? "'data'" : "'fmt '");
            return -EINVAL;
        }
        uint32_t len = le32(ch + 4);
        off += 8;
        if (!memcmp(ch, "fmt ", 4)) {
            uint8_t f[40] = {0};
            if (len < 16 || read_full(fd, f, len < 40 ? len : 40, off) < 16) {
                log_err("file", "%s: WAV 'fmt ' chunk is too short (%u bytes)", path, len);
                return -EINVAL;
            }
            unsigned tag = le16(f), channels = le16(f + 2);
            unsigned rate = le32(f + 4), align = le16(f + 12), bits = le16(f + 14);
            if (tag == 0xFFFE) {
                if (len < 40) {
                    log_err("file", "%s: WAVE_FORMAT_EXTENSIBLE header too short", path);
                    return -EINVAL;
                }
                tag = le16(f + 24);   /* the sub-format GUID starts with the format tag */
            }
            if (tag == 3) {
                log_err("file", "%s: floating-point WAV is not supported; convert it to 16, 24 "
                        "or 32-bit integer PCM (e.g. sox in.wav -b 24 -e signed out.wav)", path);
                return -ENOTSUP;
            }
            if (tag != 1) {
                log_err("file", "%s: compressed WAV (format tag 0x%04x) is not supported; "
                        "convert it to 16, 24 or 32-bit integer PCM", path, tag);
                return -ENOTSUP;
            }
            if (channels < 1 || channels > AUDIO_MAX_CHANNELS) {
                log_err("file", "%s: WAV has %u channels; pirec takes 1 to %d", path, channels,
                        AUDIO_MAX_CHANNELS);
                return -ENOTSUP;
            }
            container = channels ? align / channels : 0;
            if (container * channels != align || (container != 2 && container != 3 &&
                                                  container != 4) || bits > container * 8 ||
                bits <= (container - 1) * 8) {
                log_err("file", "%s: %u-bit WAV samples (block align %u) are not supported; "
                        "use 16, 24 or 32-bit PCM", path, bits, align);
                return -ENOTSUP;
            }
            if (rate < 1000 || rate > 768000) {
                log_err("file", "%s: WAV sample rate %u Hz is out of range", path, rate);
                return -EINVAL;
            }
            fmt->sample = container == 2 ? SF_S16_LE : container == 3 ? SF_S24_3LE : SF_S32_LE;
            fmt->rate = rate;
            fmt->channels = channels;
            have_fmt = 1;
        } else if (!memcmp(ch, "data", 4)) {
            if (!have_fmt) {
                log_err("file", "%s: WAV 'data' chunk comes before 'fmt '", path);
                return -EINVAL;
            }
            *data_off = off;
            /* a header written by a recorder that crashed (or a stream) can claim more
             * than the file holds: trust the file */
            uint64_t rest = file_size > off ? file_size - off : 0;
            *data_len = len < rest ? len : rest;
            return 0;
        }
        off += len + (len & 1);   /* chunks are padded to even sizes */
    }
}

static ssize_t file_read(struct audio_source *s, void *buf, size_t max_frames)
{
    struct file_src *f = s->priv;
    if (f->opt.fail_at_frame && f->delivered >= f->opt.fail_at_frame)
        return -ENODEV;
    if (f->opt.stall_ms && !f->stalled && f->delivered >= f->opt.stall_at_frame) {
        f->stalled = 1;
        struct timespec ts = {f->opt.stall_ms / 1000, (long)(f->opt.stall_ms % 1000) * 1000000L};
        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
            ;
        uint64_t skip = (uint64_t)f->opt.stall_ms * s->format.rate / 1000;
        f->file_pos += skip;
        if (f->opt.loop && f->data_frames)
            f->file_pos %= f->data_frames;
        /* the lost time is behind us: pace from now on, don't make up for it */
        f->pacer.started = 0;
        f->clock_frames = 0;
        s->last_xrun.at_frame = f->delivered;
        s->last_xrun.frames = skip;
        return -EPIPE;
    }
    uint64_t n = max_frames;
    if (f->opt.realtime && n > s->period_frames)
        n = s->period_frames;
    if (f->opt.fail_at_frame && n > f->opt.fail_at_frame - f->delivered)
        n = f->opt.fail_at_frame - f->delivered;
    if (f->opt.stall_ms && !f->stalled && n > f->opt.stall_at_frame - f->delivered)
        n = f->opt.stall_at_frame - f->delivered;
    if (f->file_pos >= f->data_frames) {
        if (!f->opt.loop || f->data_frames == 0)
            return 0;
        f->file_pos = 0;
    }
    if (n > f->data_frames - f->file_pos)
        n = f->data_frames - f->file_pos;
    if (n == 0)
        return -EINVAL;
    size_t bytes = (size_t)n * f->frame_bytes;
    int r = read_full(f->fd, buf, bytes, f->data_off + f->file_pos * f->frame_bytes);
    if (r < 0)
        return r;
    if ((size_t)r < bytes) {   /* the file shrank under us */
        n = (size_t)r / f->frame_bytes;
        f->data_frames = f->file_pos + n;
        if (n == 0)
            return f->opt.loop ? -EIO : 0;
    }
    f->file_pos += n;
    f->delivered += n;
    f->clock_frames += n;
    if (f->opt.realtime)
        pacer_wait_until(&f->pacer, f->clock_frames);
    return (ssize_t)n;
}

static void file_close(struct audio_source *s)
{
    struct file_src *f = s->priv;
    if (f->fd >= 0)
        close(f->fd);
    free(f);
    free(s);
}

static const struct audio_source_ops file_ops = {"file", file_read, file_close, NULL};

int audio_source_open_file(struct audio_source **out, const char *path,
                           const struct audio_format *want,
                           const struct file_source_options *opt)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        log_err("file", "%s: cannot open: %s", path, strerror(e));
        return -e;
    }
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        log_err("file", "%s: not a regular file", path);
        close(fd);
        return -EINVAL;
    }
    struct audio_format fmt = {0};
    uint64_t off = 0, len = (uint64_t)st.st_size;
    uint8_t magic[4] = {0};
    int wav = read_full(fd, magic, 4, 0) == 4 && !memcmp(magic, "RIFF", 4);
    int r;
    if (wav) {
        r = parse_wav(fd, path, (uint64_t)st.st_size, &fmt, &off, &len);
    } else if (!want || want->sample == SF_UNKNOWN || !want->rate || !want->channels) {
        log_err("file", "%s: not a WAV file; to play raw PCM give its sample format, rate "
                "and channels", path);
        r = -EINVAL;
    } else {
        r = format_complete(&fmt, want, SF_UNKNOWN, 0, 0);
        if (r < 0)
            log_err("file", "%s: unusable raw format (%s %u Hz %u ch)", path,
                    sample_format_name(want->sample), want->rate, want->channels);
    }
    if (r < 0) {
        close(fd);
        return r;
    }
    struct audio_source *s = calloc(1, sizeof *s);
    struct file_src *f = calloc(1, sizeof *f);
    if (!s || !f) {
        free(s);
        free(f);
        close(fd);
        return -ENOMEM;
    }
    f->fd = fd;
    f->data_off = off;
    f->frame_bytes = audio_frame_bytes(&fmt);
    f->data_frames = len / f->frame_bytes;
    if (opt)
        f->opt = *opt;
    f->pacer.rate = fmt.rate;
    s->ops = &file_ops;
    s->format = fmt;
    s->period_frames = fmt.rate / 100 ? fmt.rate / 100 : 1;
    s->priv = f;
    const char *base = strrchr(path, '/');
    snprintf(s->description, sizeof s->description, "file %.80s (%s %u Hz %u ch)",
             base ? base + 1 : path, sample_format_name(fmt.sample), fmt.rate, fmt.channels);
    if (f->data_frames == 0)
        log_warn("file", "%s: holds no audio frames", path);
    *out = s;
    return 0;
}
