/*
 * source: where audio comes from. Three backends side by side behind one table of
 * functions: ALSA (source_alsa.c), a demo tone (source_tone.c), a WAV/raw file
 * (source_file.c).
 *
 * Threads: a source is opened and closed by one control thread and read by exactly one
 * capture thread. read() may block for about one period and must not allocate.
 * Ownership: audio_source_close() frees the source.
 */
#ifndef PIREC_AUDIO_SOURCE_H
#define PIREC_AUDIO_SOURCE_H

#include "audio/format.h"

#include <stdint.h>
#include <sys/types.h>

struct audio_source;

struct audio_source_ops {
    const char *kind;  /* "alsa", "tone", "file" */
    /* Reads up to max_frames interleaved frames in the source's format, blocking until at
     * least one period is there. Returns frames read (> 0), 0 at the end of a finite
     * source, -EPIPE after an overrun that was recovered (src->last_xrun says where and
     * how long; call again to go on), -ENODEV when the device is gone (unplugged,
     * disconnected, POLLHUP), -EAGAIN when nothing arrived for about half a second (call
     * again; it lets a capture thread notice a stop request), another negative errno on a
     * hard error. */
    ssize_t (*read)(struct audio_source *src, void *buf, size_t max_frames);
    void (*close)(struct audio_source *src);
    /* Optional (NULL: the source cannot be reopened). Closes the device and opens it again
     * with the same name and exactly the same format; frames then continue from there.
     * Called by the capture thread of a stalled device, so it may allocate and block for
     * a moment (not for seconds). 0, or a negative errno (the device is still away, or
     * came back with another format: -EINVAL); after a failure read() must not be called
     * until a later reopen succeeded. */
    int (*reopen)(struct audio_source *src);
};

struct audio_xrun {
    uint64_t at_frame;   /* frames delivered before the gap */
    uint64_t frames;     /* estimated frames lost (0 if unknown) */
};

struct audio_source {
    const struct audio_source_ops *ops;
    struct audio_format format;   /* what read() delivers */
    unsigned period_frames;       /* typical frames per read */
    unsigned buffer_frames;       /* frames the device holds before an overrun (0: unknown,
                                     about one period); sets the capture watchdog's bound */
    char description[128];        /* e.g. "hw:CARD=USB (S32_LE 192000 Hz 2 ch)" */
    struct audio_xrun last_xrun;
    void *priv;
};

/* ALSA: `pcm` is any PCM name ("hw:CARD=USB,DEV=0", "default", or a name defined in
 * `conf`, an ALSA configuration text loaded with snd_pcm_open_lconf() when not NULL: the
 * tests use it for the `file` plugin). Fields of `want` left 0/SF_UNKNOWN are chosen:
 * the widest sample format offered, 48 kHz if possible, all channels. */
int audio_source_open_alsa(struct audio_source **out, const char *pcm, const char *conf,
                           const struct audio_format *want);

/* Demo tone, paced in real time: moving levels, channels differ. `want` fields 0 =
 * S16_LE / 48000 / 2. */
int audio_source_open_tone(struct audio_source **out, const struct audio_format *want);

/* WAV (format from its header) or raw PCM (format from `want`, all fields required).
 * realtime: paced with clock_nanosleep(TIMER_ABSTIME), else as fast as read.
 * Test hooks (for the unplug and stall tests), 0 = off: fail_at_frame makes read()
 * return -ENODEV once that many frames were delivered; stall_at_frame/stall_ms make one
 * read sleep stall_ms at that frame (the capture must then count an overrun). */
struct file_source_options {
    int realtime;
    int loop;              /* start again at the end instead of ending */
    uint64_t fail_at_frame;
    uint64_t stall_at_frame;
    unsigned stall_ms;
};
int audio_source_open_file(struct audio_source **out, const char *path,
                           const struct audio_format *want,
                           const struct file_source_options *opt);

static inline ssize_t audio_source_read(struct audio_source *s, void *buf, size_t n)
{
    return s->ops->read(s, buf, n);
}
void audio_source_close(struct audio_source *s);

#endif
