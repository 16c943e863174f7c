/*
 * source_alsa: capture from an ALSA PCM. Negotiates the requested format or the device's
 * best (widest sample format, 48 kHz or the nearest rate, all channels), ~10 ms periods and
 * a 1 s buffer so that a slow reader has room before an overrun.
 *
 * read() waits with snd_pcm_wait (a timeout, so that capture_stop is never stuck behind a
 * silent device) and then reads what is there. Overruns are recovered with snd_pcm_prepare
 * and reported as -EPIPE with last_xrun filled; an unplugged device (-ENODEV, the
 * DISCONNECTED state, or a -ESTRPIPE that cannot be recovered) is reported as -ENODEV.
 *
 * reopen() closes the PCM and opens the same name again (from the same configuration
 * tree) with the format negotiated the first time: the capture watchdog uses it when a
 * device stops delivering without any error (a hung USB interface, a dead sound server).
 */
#include "audio/source.h"
#include "common/log.h"

#include <alsa/asoundlib.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ALSA_WAIT_MS 500

struct alsa_src {
    snd_pcm_t *pcm;           /* NULL after a failed reopen */
    char *name;               /* the PCM name, for reopen */
    snd_config_t *conf;       /* kept until close: the PCM was built from it */
    snd_pcm_uframes_t buffer_frames;
    uint64_t delivered;
    int started;
};

static snd_pcm_format_t to_alsa(enum sample_format f)
{
    switch (f) {
    case SF_S16_LE: return SND_PCM_FORMAT_S16_LE;
    case SF_S24_3LE: return SND_PCM_FORMAT_S24_3LE;
    case SF_S24_LE: return SND_PCM_FORMAT_S24_LE;
    case SF_S32_LE: return SND_PCM_FORMAT_S32_LE;
    default: return SND_PCM_FORMAT_UNKNOWN;
    }
}

static int gone(int err)
{
    return err == -ENODEV || err == -ENXIO || err == -EBADFD || err == -ESHUTDOWN;
}

/* Overrun: estimate what was lost (the full buffer that prepare throws away, plus the time
 * since the overrun happened), recover, report -EPIPE. */
static ssize_t recover_xrun(struct audio_source *s, struct alsa_src *a, int err)
{
    uint64_t lost = 0;
    snd_pcm_status_t *st;
    snd_pcm_status_alloca(&st);
    if (snd_pcm_status(a->pcm, st) == 0 && snd_pcm_status_get_state(st) == SND_PCM_STATE_XRUN) {
        snd_timestamp_t now, trig;
        snd_pcm_status_get_tstamp(st, &now);
        snd_pcm_status_get_trigger_tstamp(st, &trig);
        double gap = (double)(now.tv_sec - trig.tv_sec) + (now.tv_usec - trig.tv_usec) / 1e6;
        if (gap < 0 || gap > 3600)
            gap = 0;
        lost = a->buffer_frames + (uint64_t)(gap * s->format.rate);
    }
    if (snd_pcm_state(a->pcm) == SND_PCM_STATE_DISCONNECTED)
        return -ENODEV;
    int r;
    if (err == -ESTRPIPE) {
        while ((r = snd_pcm_resume(a->pcm)) == -EAGAIN)
            usleep(10000);
        if (r < 0)
            r = snd_pcm_prepare(a->pcm);
    } else {
        r = snd_pcm_prepare(a->pcm);
    }
    if (r < 0)
        return -ENODEV;   /* recovery failed: the device is as good as gone */
    a->started = 0;
    s->last_xrun.at_frame = a->delivered;
    s->last_xrun.frames = lost;
    return -EPIPE;
}

static ssize_t alsa_read(struct audio_source *s, void *buf, size_t max_frames)
{
    struct alsa_src *a = s->priv;
    if (!a->pcm)
        return -ENODEV;   /* a reopen failed: only another reopen brings it back */
    if (snd_pcm_state(a->pcm) == SND_PCM_STATE_DISCONNECTED)
        return -ENODEV;
    if (!a->started) {
        int r = snd_pcm_start(a->pcm);
        if (r < 0 && r != -EBADFD)   /* -EBADFD: already running */
            return gone(r) ? -ENODEV : r;
        a->started = 1;
    }
    int w = snd_pcm_wait(a->pcm, ALSA_WAIT_MS);
    if (w == 0)
        return -EAGAIN;
    if (w < 0) {
        if (w == -EPIPE || w == -ESTRPIPE)
            return recover_xrun(s, a, w);
        return gone(w) ? -ENODEV : w;
    }
    snd_pcm_sframes_t avail = snd_pcm_avail_update(a->pcm);
    if (avail < 0) {
        if (avail == -EPIPE || avail == -ESTRPIPE)
            return recover_xrun(s, a, (int)avail);
        return gone((int)avail) ? -ENODEV : (ssize_t)avail;
    }
    size_t n = (size_t)avail;
    if (n == 0)
        n = s->period_frames;
    if (n > max_frames)
        n = max_frames;
    snd_pcm_sframes_t got = snd_pcm_readi(a->pcm, buf, n);
    if (got == -EAGAIN)
        return -EAGAIN;
    if (got == -EPIPE || got == -ESTRPIPE)
        return recover_xrun(s, a, (int)got);
    if (got < 0)
        return gone((int)got) ? -ENODEV : (ssize_t)got;
    a->delivered += (uint64_t)got;
    return (ssize_t)got;
}

static void alsa_close(struct audio_source *s)
{
    struct alsa_src *a = s->priv;
    if (a->pcm)
        snd_pcm_close(a->pcm);
    if (a->conf)
        snd_config_delete(a->conf);
    free(a->name);
    free(a);
    free(s);
}

static int alsa_reopen(struct audio_source *s);
static const struct audio_source_ops alsa_ops = {"alsa", alsa_read, alsa_close, alsa_reopen};

static int set_params(struct audio_source *s, struct alsa_src *a, const char *pcm,
                      const struct audio_format *want)
{
    snd_pcm_hw_params_t *hw;
    snd_pcm_hw_params_alloca(&hw);
    int r = snd_pcm_hw_params_any(a->pcm, hw);
    if (r < 0)
        return r;
    if ((r = snd_pcm_hw_params_set_access(a->pcm, hw, SND_PCM_ACCESS_RW_INTERLEAVED)) < 0) {
        log_err("alsa", "%s: interleaved access not supported", pcm);
        return r;
    }
    enum sample_format sf = want ? want->sample : SF_UNKNOWN;
    if (sf == SF_UNKNOWN) {
        static const enum sample_format pref[] = {SF_S32_LE, SF_S24_LE, SF_S24_3LE, SF_S16_LE};
        for (size_t i = 0; i < 4 && sf == SF_UNKNOWN; i++)
            if (snd_pcm_hw_params_test_format(a->pcm, hw, to_alsa(pref[i])) == 0)
                sf = pref[i];
        if (sf == SF_UNKNOWN) {
            log_err("alsa", "%s offers none of S32_LE, S24_LE, S24_3LE, S16_LE", pcm);
            return -ENOTSUP;
        }
    }
    if ((r = snd_pcm_hw_params_set_format(a->pcm, hw, to_alsa(sf))) < 0) {
        log_err("alsa", "%s does not take sample format %s", pcm, sample_format_name(sf));
        return r;
    }
    unsigned ch = want ? want->channels : 0;
    if (ch == 0) {
        r = snd_pcm_hw_params_get_channels_max(hw, &ch);
        if (r < 0 || ch > AUDIO_MAX_CHANNELS)
            ch = AUDIO_MAX_CHANNELS;
        if ((r = snd_pcm_hw_params_set_channels_near(a->pcm, hw, &ch)) < 0)
            return r;
    } else if ((r = snd_pcm_hw_params_set_channels(a->pcm, hw, ch)) < 0) {
        unsigned lo = 0, hi = 0;
        snd_pcm_hw_params_get_channels_min(hw, &lo);
        snd_pcm_hw_params_get_channels_max(hw, &hi);
        log_err("alsa", "%s does not take %u channels (it takes %u to %u)", pcm, ch, lo, hi);
        return r;
    }
    unsigned rate = want ? want->rate : 0;
    if (rate == 0) {
        rate = 48000;
        if ((r = snd_pcm_hw_params_set_rate_near(a->pcm, hw, &rate, NULL)) < 0)
            return r;
    } else if ((r = snd_pcm_hw_params_set_rate(a->pcm, hw, rate, 0)) < 0) {
        log_err("alsa", "%s does not take %u Hz", pcm, rate);
        return r;
    }
    unsigned period_us = 10000;
    snd_pcm_hw_params_set_period_time_near(a->pcm, hw, &period_us, NULL);
    snd_pcm_uframes_t buf = rate;   /* 1 s */
    snd_pcm_hw_params_set_buffer_size_near(a->pcm, hw, &buf);
    if ((r = snd_pcm_hw_params(a->pcm, hw)) < 0) {
        log_err("alsa", "%s: hardware parameters refused: %s", pcm, snd_strerror(r));
        return r;
    }
    snd_pcm_uframes_t period = 0;
    snd_pcm_hw_params_get_period_size(hw, &period, NULL);
    snd_pcm_hw_params_get_buffer_size(hw, &a->buffer_frames);
    s->format.sample = sf;
    s->format.rate = rate;
    s->format.channels = ch;
    s->period_frames = period ? (unsigned)period : rate / 100;
    s->buffer_frames = (unsigned)a->buffer_frames;
    if ((r = snd_pcm_prepare(a->pcm)) < 0)
        return r;
    return 0;
}

static int open_pcm(struct alsa_src *a)
{
    if (a->conf)
        return snd_pcm_open_lconf(&a->pcm, a->name, SND_PCM_STREAM_CAPTURE, 0, a->conf);
    return snd_pcm_open(&a->pcm, a->name, SND_PCM_STREAM_CAPTURE, 0);
}

static int alsa_reopen(struct audio_source *s)
{
    struct alsa_src *a = s->priv;
    if (a->pcm)
        snd_pcm_close(a->pcm);
    a->pcm = NULL;
    a->started = 0;
    int r = open_pcm(a);
    if (r < 0) {
        a->pcm = NULL;
        return r;
    }
    struct audio_source probe = *s;   /* set_params writes the format it got */
    r = set_params(&probe, a, a->name, &s->format);
    if (r == 0 && (probe.format.sample != s->format.sample || probe.format.rate != s->format.rate ||
                   probe.format.channels != s->format.channels))
        r = -EINVAL;
    if (r < 0) {
        snd_pcm_close(a->pcm);
        a->pcm = NULL;
        return r;
    }
    s->period_frames = probe.period_frames;
    s->buffer_frames = probe.buffer_frames;
    return 0;
}

int audio_source_open_alsa(struct audio_source **out, const char *pcm, const char *conf,
                           const struct audio_format *want)
{
    if (!out || !pcm)
        return -EINVAL;
    if (want && ((want->sample != SF_UNKNOWN && to_alsa(want->sample) == SND_PCM_FORMAT_UNKNOWN) ||
                 want->channels > AUDIO_MAX_CHANNELS)) {
        log_err("alsa", "%s: unusable format request", pcm);
        return -EINVAL;
    }
    struct audio_source *s = calloc(1, sizeof *s);
    struct alsa_src *a = calloc(1, sizeof *a);
    if (!s || !a) {
        free(s);
        free(a);
        return -ENOMEM;
    }
    s->ops = &alsa_ops;
    s->priv = a;
    int r = -ENOMEM;
    if (!(a->name = strdup(pcm)))
        goto fail;
    if (conf) {
        snd_input_t *in = NULL;
        if ((r = snd_config_top(&a->conf)) < 0 ||
            (r = snd_input_buffer_open(&in, conf, (ssize_t)strlen(conf))) < 0)
            goto fail;
        r = snd_config_load(a->conf, in);
        snd_input_close(in);
        if (r < 0) {
            log_err("alsa", "the ALSA configuration text does not parse: %s", snd_strerror(r));
            goto fail;
        }
    }
    r = open_pcm(a);
    if (r < 0) {
        log_err("alsa", "cannot open capture PCM %s: %s", pcm, snd_strerror(r));
        goto fail;
    }
    if ((r = set_params(s, a, pcm, want)) < 0)
        goto fail;
    snprintf(s->description, sizeof s->description, "%.80s (%s %u Hz %u ch)", pcm,
             sample_format_name(s->format.sample), s->format.rate, s->format.channels);
    *out = s;
    return 0;
fail:
    alsa_close(s);
    return r;
}
