/*
 * source_tone: a demo source that sounds like music and moves the meters: short plucked
 * notes of a pentatonic scale with a few harmonics, a different melody and rhythm per
 * channel, under a slow level swell (6 s cycle) that briefly comes close to full scale.
 * Paced in real time; the capture thread reads it like a device.
 */
#include "audio/source.h"
#include "audio/source_test.h"
#include "audio/source_util.h"
#include "common/log.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TONE_HARMONICS 3

struct tone_chan {
    double phase[TONE_HARMONICS];
    double freq;
    uint64_t note_start;   /* frame */
    uint64_t note_len;     /* frames */
    uint32_t rng;
};

struct tone {
    struct pacer pacer;
    int unpaced;
    uint64_t pos;
    struct tone_chan ch[AUDIO_MAX_CHANNELS];
};

static const double scale[] = {220.00, 246.94, 277.18, 329.63, 369.99,
                               440.00, 493.88, 554.37, 659.25, 739.99};

static void next_note(struct tone_chan *c, unsigned idx, uint64_t at, unsigned rate)
{
    c->rng = c->rng * 1103515245u + 12345u;
    unsigned k = (c->rng >> 16) % (sizeof scale / sizeof scale[0]);
    /* channel 1 an octave's fifth above, others spread further */
    c->freq = scale[k] * (1.0 + 0.5 * (idx % 3));
    c->note_start = at;
    /* rhythm differs per channel: 250 ms, 375 ms, 500 ms ... */
    c->note_len = (uint64_t)rate * (250 + 125 * (idx % 4)) / 1000;
}

static ssize_t tone_read(struct audio_source *s, void *buf, size_t max_frames)
{
    struct tone *t = s->priv;
    const unsigned rate = s->format.rate, nch = s->format.channels;
    size_t n = max_frames < s->period_frames ? max_frames : s->period_frames;
    if (n == 0)
        return -EINVAL;
    unsigned bits = sample_format_bits(s->format.sample);
    double full = ldexp(1.0, (int)bits - 1) - 1.0;
    for (size_t i = 0; i < n; i++) {
        uint64_t p = t->pos + i;
        double sec = (double)p / rate;
        for (unsigned c = 0; c < nch; c++) {
            struct tone_chan *ch = &t->ch[c];
            if (p - ch->note_start >= ch->note_len)
                next_note(ch, c, p, rate);
            double nt = (double)(p - ch->note_start) / rate;
            /* pluck: fast attack, exponential decay */
            double env = (nt < 0.005 ? nt / 0.005 : 1.0) * exp(-4.0 * nt);
            /* the swell: 0..1 over 6 s, squared so it lingers low and peaks briefly;
             * channels are out of phase by a little */
            double lfo = 0.5 - 0.5 * cos(2.0 * M_PI * (sec / 6.0 + 0.15 * c));
            double level = 0.01 + 0.96 * lfo * lfo;
            double v = 0.0, amp = 1.0, norm = 0.0;
            for (int h = 0; h < TONE_HARMONICS; h++) {
                v += amp * sin(ch->phase[h]);
                norm += amp;
                ch->phase[h] += 2.0 * M_PI * ch->freq * (h + 1) / rate;
                if (ch->phase[h] > 2.0 * M_PI)
                    ch->phase[h] -= 2.0 * M_PI;
                amp *= 0.45;
            }
            /* harmonics rarely line up: 0.8 of their sum is about the real peak */
            double x = v / (0.8 * norm) * env * level;
            if (x > 1.0)
                x = 1.0;
            if (x < -1.0)
                x = -1.0;
            sample_put(buf, s->format.sample, i * nch + c, (int32_t)lrint(x * full));
        }
    }
    t->pos += n;
    if (!t->unpaced)
        pacer_wait_until(&t->pacer, t->pos);
    return (ssize_t)n;
}

static void tone_close(struct audio_source *s)
{
    free(s->priv);
    free(s);
}

static const struct audio_source_ops tone_ops = {"tone", tone_read, tone_close, NULL};

int audio_source_open_tone(struct audio_source **out, const struct audio_format *want)
{
    struct audio_format f;
    if (format_complete(&f, want, SF_S16_LE, 48000, 2) < 0) {
        log_err("tone", "unusable tone format (sample %d, %u Hz, %u channels): use S16_LE, "
                "S24_3LE, S24_LE or S32_LE, 1000..768000 Hz, 1..%d channels",
                want ? (int)want->sample : 0, want ? want->rate : 0, want ? want->channels : 0,
                AUDIO_MAX_CHANNELS);
        return -EINVAL;
    }
    struct audio_source *s = calloc(1, sizeof *s);
    struct tone *t = calloc(1, sizeof *t);
    if (!s || !t) {
        free(s);
        free(t);
        return -ENOMEM;
    }
    s->ops = &tone_ops;
    s->format = f;
    s->period_frames = f.rate / 100;   /* 10 ms, like a device period */
    s->priv = t;
    t->pacer.rate = f.rate;
    for (unsigned c = 0; c < f.channels; c++) {
        t->ch[c].rng = 0x9e3779b9u * (c + 1);
        next_note(&t->ch[c], c, 0, f.rate);
    }
    snprintf(s->description, sizeof s->description, "demo tone (%s %u Hz %u ch)",
             sample_format_name(f.sample), f.rate, f.channels);
    *out = s;
    return 0;
}

void audio_source_tone_unpaced(struct audio_source *s)
{
    struct tone *t = s->priv;
    t->unpaced = 1;
}
