/*
 * peaks: the waveform overview of a take, computed while it is recorded (docs/api.md
 * "Waveform peaks"). PEAKS_PER_SECOND slices a second; for each slice and channel the
 * largest |sample|, linear, 0..255 (255 = full scale), one byte per slice per channel,
 * interleaved, appended to NAME.flac.peaks beside the take as the slices complete.
 *
 * The recorder's ticker feeds it from the capture ring (the frames of the take, from its
 * start position), so the writer's path is not touched; the take's end flushes the last
 * partial slice. Threads: one owner at a time (the recorder, under its rules); no
 * internal lock. Ownership: peaks_close frees.
 */
#ifndef PIREC_SERVER_PEAKS_H
#define PIREC_SERVER_PEAKS_H

#include "audio/audio_ring.h"
#include "audio/format.h"

#include <stddef.h>
#include <stdint.h>

#define PEAKS_PER_SECOND 10

struct take_peaks;

/* Creates DIR/NAME.peaks (NAME: the take's final file name) for frames from ring position
 * start. 0, -errno. */
int  peaks_open(struct take_peaks **out, const char *dir, const char *name,
                const struct audio_format *fmt, uint64_t start);
/* Reads the ring's frames up to `until` (UINT64_MAX: what it holds now) into slices. */
void peaks_feed(struct take_peaks *p, struct audio_ring *ring, uint64_t until);
/* Writes the last partial slice, closes and frees (p may be NULL). */
void peaks_close(struct take_peaks *p);

/* Reads DIR/NAME.peaks: *data (malloc'd, caller frees) and *len. 0, -ENOENT, -errno. */
int  peaks_read(const char *dir, const char *name, uint8_t **data, size_t *len);

#endif
