/*
 * take_gap: keeps a take on the capture's timeline. The capture's losses (xruns) and a
 * writer that fell behind the ring both leave gaps; with gap fill (the default) each gap
 * becomes silence at its place, so frame k of a take is always k / rate after its first
 * frame. This module decides, for the take's writer, where the gaps are and what to write
 * next (silence owed, frames held back until the silence before them is written, or the
 * ring); take.c does the writing and the counting. Also the capture time of a frame as
 * the "PIREC_START_TIME" comment.
 *
 * Threads: the take's writer thread only (a struct take_gap is part of its take).
 */
#ifndef PIREC_STORE_TAKE_GAP_H
#define PIREC_STORE_TAKE_GAP_H

#include "audio/capture.h"

#include <stddef.h>
#include <stdint.h>

struct take_gap {
    struct capture *cap;
    int fill;                 /* 1: gaps become silence */
    uint64_t since;           /* capture losses at or after this were not looked at yet */
    uint64_t silence;         /* frames of silence owed before more audio */
    size_t held, held_off;    /* frames read after a gap, written after its silence (in the
                                 writer's buffer, from frame held_off) */
};

enum take_gap_next { TAKE_GAP_READ, TAKE_GAP_SILENCE, TAKE_GAP_HELD };

/* The take starts at ring position start_pos (a loss exactly there is before it). */
void take_gap_init(struct take_gap *g, struct capture *cap, int fill, uint64_t start_pos);
/* Silence or held frames still to write before the ring is read again. */
int  take_gap_pending(const struct take_gap *g);
/* The next capture loss to note now, reading at ring position pos: without fill those
 * before pos; with fill those at or before pos, and only once nothing is pending (its
 * silence goes exactly there). 1 and *out, or 0. The caller notes it, then (with fill)
 * take_gap_owe()s its frames. */
int  take_gap_next_loss(struct take_gap *g, uint64_t pos, struct capture_loss *out);
/* With fill: how many of `want` frames may be read from pos without passing a capture
 * gap (the capture records a gap before it writes the frames after it, and the write
 * position is read first, so no gap below it can be missed). Without: want. */
size_t take_gap_limit(const struct take_gap *g, uint64_t pos, size_t want);
/* With fill: `frames` of silence are owed (a loss noted at the current place). */
void take_gap_owe(struct take_gap *g, uint64_t frames);
/* With fill: the n frames just read follow a gap: keep them for after its silence. */
void take_gap_hold(struct take_gap *g, size_t n);
/* What to write next, at most `want` frames: *n frames of silence, of held frames
 * starting at frame *off of the writer's buffer, or TAKE_GAP_READ (read the ring). */
enum take_gap_next take_gap_next(struct take_gap *g, size_t want, size_t *n, size_t *off);

/* "PIREC_START_TIME=2026-12-01T11:45:12.345Z": a capture time (CLOCK_REALTIME ns), UTC
 * to the millisecond, for aligning the take with video. */
void take_gap_time_comment(char *out, size_t n, int64_t realtime_ns);

#endif
