/*
 * take: one recording, from an audio ring to a crash-safe FLAC file, on its own writer
 * thread.
 *
 * The writer reads the ring from an absolute start position (pre-roll = a start before
 * the current write position), encodes with libFLAC into "<name>.flac.part", and every
 * flush interval rewrites STREAMINFO (total samples, frame sizes) and fdatasync()s; at stop
 * it writes the MD5, fsyncs the file and its directory and renames to "<name>.flac".
 * Losses (ring overruns of this reader, the capture's xruns) are counted and written into
 * the Vorbis comments. A size/time limit splits into consecutive gapless files; a nearly
 * full disk stops the take cleanly.
 *
 * Threads: take_start/take_stop/take_get_status from any one control thread at a time;
 * the writer thread is private. Ownership: the take borrows the capture, which must
 * outlive take_stop(); take_stop frees the take.
 */
#ifndef PIREC_STORE_TAKE_H
#define PIREC_STORE_TAKE_H

#include "audio/capture.h"

#include <stdint.h>
#include <time.h>

struct take_config {
    const char *dir;              /* created if missing */
    const char *device_id;        /* used in the name and the comments */
    const char *name_pattern;     /* strftime pattern plus %D for the device id;
                                     default "%D_%Y-%m-%dT%H-%M-%S%z" -> scarlett_2026-11-21T19-30-00+0100.flac */
    const char *out_path;         /* exact output file instead of dir+pattern (pirec record --out) */
    unsigned bits;                /* stored bit depth; 0 = auto: the container's depth
                                     (S16_LE 16, S24_* 24), and for S32_LE its real depth:
                                     24 while the low 8 bits are zero, 32 as soon as a block
                                     uses them (from the first block: one file at 32; later:
                                     a new gapless file at 32 with a warning). 24 (or 16)
                                     on S32_LE asks for that depth with the same safety;
                                     32 forces 32. Nothing is ever cut */
    unsigned compression;         /* libFLAC level 1..8; 0 = pirec's profile: level 5 up
                                     to 48 kHz; above, level 4 (loose mid-side) with LPC
                                     order 12 (see docs/takes.md). Above 48 kHz blocks are
                                     8192 samples at every level */
    unsigned flush_ms;            /* STREAMINFO refresh + fdatasync interval (default 2000) */
    uint64_t max_frames;          /* stop after this many frames (0 = no limit) */
    uint64_t split_bytes;         /* start a new file past this size (0 = none) */
    uint64_t split_frames;        /* ... or this length (0 = none) */
    uint64_t min_free_bytes;      /* refuse to start / stop cleanly below this (default 256 MiB) */
    size_t queue_bytes;           /* encoded audio kept in RAM while the disk stalls; past
                                     it the encoder waits and the ring absorbs (default
                                     64 MiB: ~70 s at 192 kHz stereo 24-bit) */
    struct timespec start_time;   /* wall time of the take's first frame (for the name);
                                     0 = now minus the pre-roll */
    int no_gap_fill;              /* 0 (default): every lost frame (a reader that fell
                                     behind the ring, a capture xrun) becomes silence at
                                     its place, so the take is as long as the time that
                                     passed; 1: losses only counted (the take gets shorter).
                                     Either way they are counted, logged and commented */
    const char *const *extra_comments;  /* more "KEY=value" Vorbis comments for every file
                                     (copied at take_start) */
    size_t n_extra_comments;
    /* Called right after a file was created and its header written (nothing rewritten
     * yet), with its ".part" path and its final path (may be NULL; arg is on_file_arg):
     * for the first file on the thread of take_start, for later ones (splits, a depth
     * switch) on the writer thread. From then on the .part file only grows by whole FLAC frames,
     * except for its metadata blocks, which the writer rewrites in place (same size). */
    void (*on_open)(const char *part_path, const char *final_path, void *arg);
    /* Called on the writer thread after each file is finalized (may be NULL). */
    void (*on_file)(const char *path, uint64_t frames, int error, void *arg);
    void *on_file_arg;
};

enum take_state {
    TAKE_RUNNING = 0,
    TAKE_DONE,         /* stopped by take_stop, or the source ended */
    TAKE_LIMIT,        /* max length reached */
    TAKE_DISK_FULL,    /* stopped before the disk filled up */
    TAKE_DEVICE_GONE,  /* the device vanished; finalized with what was captured */
    TAKE_FAILED,       /* write error etc.; see error */
};

struct take_status {
    enum take_state state;
    int error;                  /* negative errno, 0 if none */
    char path[4096];            /* current (or last) file, final name without .part */
    unsigned files;             /* how many files (splits) so far */
    uint64_t frames;            /* frames written in all files */
    uint64_t bytes;             /* bytes of FLAC written */
    uint64_t lost_frames;       /* frames lost by overruns/xruns during the take */
    uint32_t loss_events;
    uint64_t filled_frames;     /* of lost_frames, how many were replaced by silence */
    double   seconds;
    int64_t  start_realtime_ns; /* capture time of the take's first frame (0 unknown) */
};

struct take;

/* Starts the writer at absolute ring position start_pos. Errors: -ENOSPC (disk nearly
 * full), -EACCES/-ENOTDIR/... for the directory, -EEXIST never (names are made unique). */
int  take_start(struct take **out, struct capture *cap, const struct take_config *cfg,
                uint64_t start_pos);
/* Any state: stops at the current write position, finalizes, fills *final (may be NULL),
 * frees. Returns 0 or the take's error. */
int  take_stop(struct take *t, struct take_status *final);
/* The same, ending at absolute ring position stop_pos instead of the current write
 * position (several takes stopped at one capture instant); a position not captured yet
 * is waited for (until the capture ends). */
int  take_stop_at(struct take *t, uint64_t stop_pos, struct take_status *final);
/* Tells the writer where to end without waiting (several takes asked at once, then each
 * take_stop_at()'ed with the same position). */
void take_request_stop(struct take *t, uint64_t stop_pos);
void take_get_status(struct take *t, struct take_status *st);
/* Waits until the take ended by itself (limit, disk, device gone, source end), at most
 * timeout_ms (< 0: no limit) on CLOCK_MONOTONIC, so a wall-clock step (NTP on a Pi
 * without an RTC) neither shortens nor stretches it. 0 once ended, -ETIMEDOUT. */
int  take_wait(struct take *t, int timeout_ms);
/* Ring position the writer has read up to (any thread, lock-free): lets a source that
 * is read faster than real time hold back instead of overrunning the take. */
uint64_t take_read_pos(const struct take *t);
/* Waits until the writer has read up to ring position pos, at most timeout_ms: a source
 * read faster than real time sleeps until there is room instead of polling. 0 once
 * reached, -ETIMEDOUT, -EPIPE when the writer ended first. One waiting thread at a time,
 * and it must be out before take_stop*() frees the take (take_wait() first, then stop). */
int take_wait_read_pos(struct take *t, uint64_t pos, int timeout_ms);

/* Recording time left on the filesystem of dir at this format (compressed estimate:
 * about 60% of raw), and free bytes. */
int disk_space(const char *dir, const struct audio_format *fmt, uint64_t *free_bytes,
               double *seconds_left);

#endif
