/*
 * source_spec: the one grammar that names where audio comes from, shared by `pirec serve`
 * (a [device] section's `pcm =`) and `pirec record --source` (docs/audio.md "Sources"):
 *
 *   tone                         the demo tone
 *   file:PATH[?KEY=N[&KEY=N]...] a WAV (or raw) file played as a device; keys:
 *       realtime=0|1   paced at the file's rate (default: serve 1, record 0)
 *       loop=0|1       start again at the end instead of ending
 *       fail_at=N      test hook: the device vanishes after N frames
 *       stall_at=N & stall_ms=MS   test hook: one read stalls MS ms at frame N
 *       pace_percent=P test hook: with realtime=1, frames come at P % of the rate
 *   anything else                an ALSA PCM name (hw:CARD=USB,DEV=0, default, ...)
 *
 * A PATH cannot contain '?'. Any thread; no state.
 */
#ifndef PIREC_AUDIO_SOURCE_SPEC_H
#define PIREC_AUDIO_SOURCE_SPEC_H

#include "audio/source.h"

#include <stddef.h>

enum source_kind { SOURCE_ALSA, SOURCE_TONE, SOURCE_FILE };

struct source_spec {
    enum source_kind kind;
    char name[4096];                  /* ALSA: the PCM name; FILE: the path; TONE: "tone" */
    struct file_source_options fopt;  /* FILE only */
};

/* Parses `text`; default_realtime is the file source's realtime when the spec does not
 * say. 0, or -EINVAL with a sentence in err (what is wrong and what to write instead). */
int source_spec_parse(const char *text, int default_realtime, struct source_spec *out,
                      char *err, size_t err_len);

/* Opens the source the spec names, with the format `want` (see source.h; ALSA: conf as
 * in audio_source_open_alsa, may be NULL). 0 or a negative errno. */
int source_spec_open(const struct source_spec *spec, const char *alsa_conf,
                     const struct audio_format *want, struct audio_source **out);

#endif
