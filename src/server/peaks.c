/* peaks: see peaks.h. */
#include "server/peaks.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CHUNK_FRAMES 512

struct take_peaks {
    int fd;
    struct audio_format fmt;
    unsigned bits;              /* container width of a sample (audio_sample_get) */
    uint64_t pos;               /* next ring position to read */
    uint64_t slice_frames;      /* frames per slice */
    uint64_t in_slice;          /* frames of the current slice so far */
    uint32_t max[AUDIO_MAX_CHANNELS];
    unsigned char buf[CHUNK_FRAMES * AUDIO_MAX_CHANNELS * 4];
};

int peaks_open(struct take_peaks **out, const char *dir, const char *name,
               const struct audio_format *fmt, uint64_t start)
{
    if (!out || !dir || !name || !fmt || !fmt->rate || !fmt->channels ||
        fmt->channels > AUDIO_MAX_CHANNELS)
        return -EINVAL;
    char path[4096 + 300];
    if (snprintf(path, sizeof(path), "%s/%s.peaks", dir, name) >= (int)sizeof(path))
        return -ENAMETOOLONG;
    struct take_peaks *p = calloc(1, sizeof(*p));
    if (!p)
        return -ENOMEM;
    p->fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (p->fd < 0) {
        int e = -errno;
        free(p);
        return e;
    }
    p->fmt = *fmt;
    p->bits = sample_format_bits(fmt->sample);   /* audio_sample_get's width */
    if (p->bits < 8 || p->bits > 32)
        p->bits = 16;
    p->pos = start;
    p->slice_frames = fmt->rate / PEAKS_PER_SECOND ? fmt->rate / PEAKS_PER_SECOND : 1;
    *out = p;
    return 0;
}

/* One slice done: its bytes go to the file (a failed write only costs the overview). */
static void emit(struct take_peaks *p)
{
    uint8_t out[AUDIO_MAX_CHANNELS];
    double full = (double)(1u << (p->bits - 1));
    for (unsigned c = 0; c < p->fmt.channels; c++) {
        double v = (double)p->max[c] * 255.0 / full;
        out[c] = v >= 255.0 ? 255 : (uint8_t)(v + 0.999);   /* any sound shows */
        p->max[c] = 0;
    }
    ssize_t w = write(p->fd, out, p->fmt.channels);
    (void)w;
    p->in_slice = 0;
}

void peaks_feed(struct take_peaks *p, struct audio_ring *ring, uint64_t until)
{
    if (!p || !ring)
        return;
    unsigned ch = p->fmt.channels;
    for (;;) {
        uint64_t want = CHUNK_FRAMES;
        if (until != UINT64_MAX) {
            if (p->pos >= until)
                return;
            if (until - p->pos < want)
                want = until - p->pos;
        }
        uint64_t lost = 0;
        ssize_t n = audio_ring_read(ring, &p->pos, p->buf, (size_t)want, &lost);
        if (n <= 0)
            return;
        for (ssize_t f = 0; f < n; f++) {
            for (unsigned c = 0; c < ch; c++) {
                int64_t s = audio_sample_get(p->buf, p->fmt.sample, (size_t)f * ch + c);
                uint32_t a = (uint32_t)(s < 0 ? -s : s);
                if (a > p->max[c])
                    p->max[c] = a;
            }
            if (++p->in_slice == p->slice_frames)
                emit(p);
        }
    }
}

void peaks_close(struct take_peaks *p)
{
    if (!p)
        return;
    if (p->in_slice)
        emit(p);
    close(p->fd);
    free(p);
}

int peaks_read(const char *dir, const char *name, uint8_t **data, size_t *len)
{
    char path[4096 + 300];
    if (snprintf(path, sizeof(path), "%s/%s.peaks", dir, name) >= (int)sizeof(path))
        return -ENAMETOOLONG;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return -errno;
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > (64 << 20)) {
        close(fd);
        return -ENOENT;
    }
    uint8_t *buf = malloc((size_t)st.st_size + 1);
    ssize_t n = buf ? read(fd, buf, (size_t)st.st_size) : -1;
    close(fd);
    if (n < 0) {
        free(buf);
        return buf ? -EIO : -ENOMEM;
    }
    *data = buf;
    *len = (size_t)n;
    return 0;
}
