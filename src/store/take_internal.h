/*
 * take_internal: what the take's three files share (not for other modules).
 *
 *   take.c         life cycle: take_start / take_stop* / take_wait / status, on the
 *                  control thread; owns struct take and frees it after the join
 *   take_writer.c  the encoder thread "take-writer": ring -> int32 -> flac_writer, gaps,
 *                  limits, splits, the flush timer
 *   take_file.c    one file of a take: name, create, the crash-safe header refresh (flush),
 *                  loss comments, finalize + rename; the free-space check
 *
 * Threads: every take_file_* / take_writer_* function runs on the writer thread, except
 * take_file_open / take_file_flush / take_file_close during take_start, before that
 * thread exists. Fields marked "under lock" are shared with the control thread.
 */
#ifndef PIREC_STORE_TAKE_INTERNAL_H
#define PIREC_STORE_TAKE_INTERNAL_H

#include "store/take.h"

#include "store/flac_writer.h"
#include "store/take_gap.h"

#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

#define CHUNK_FRAMES 4096u
#define MAX_LOSS_NOTES 128   /* per file; the totals are always complete */
#define DEFAULT_MIN_FREE (256ull << 20)
#define DISK_CHECK_NS 100000000LL
#define TAKE_MAX_EXTRA 8

struct loss_note {
    uint64_t at_frame;   /* frame index in the file where the gap is */
    uint64_t frames;
    int64_t realtime_ns;
};

struct take {
    struct capture *cap;
    struct audio_ring *ring;
    struct audio_format fmt;
    struct take_config cfg;
    char *dir, *device_id, *pattern, *out_path;
    char **extra;             /* cfg.extra_comments, copied */
    unsigned bits;            /* depth of the current file */
    int auto_bits;            /* bits = 0 on S32_LE: 24 until a sample needs more */
    struct timespec t0;       /* wall time of the take's first frame */

    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    pthread_cond_t read_cond; /* the writer read up to read_wake_pos, or ended */
    uint64_t read_wake_pos;   /* a take_wait_read_pos() waits for this (0: none; under lock) */
    _Atomic int stop_requested;
    _Atomic uint64_t stop_pos;
    int ended;                /* writer finished (under lock) */
    struct take_status st;    /* under lock */

    /* writer thread only */
    uint64_t pos;             /* next ring position to read */
    _Atomic uint64_t pub_pos; /* pos, for take_read_pos() */
    struct take_gap gap;      /* losses, and with gap fill the silence they become */
    uint64_t start_pos;       /* ring position of the take's first frame */
    int64_t start_rt_ns;      /* its capture time (0: not known yet) */
    uint64_t file_first_total;/* frames_total when the current file began */
    int64_t file_start_ns;    /* capture time of the file's first frame (0: not known yet) */
    uint64_t frames_total;
    uint64_t bytes_done;      /* bytes of files already closed */
    struct flac_writer *w;
    char part[PATH_MAX + 8];
    char final[PATH_MAX];
    uint64_t file_frames, file_first_pos;
    uint64_t file_lost;
    uint32_t file_events;
    struct loss_note notes[MAX_LOSS_NOTES];
    unsigned n_notes;
    uint8_t *raw;
    int32_t *pcm;
    int64_t last_disk_check;
    uint64_t last_disk_bytes;
};

static inline int64_t take_now_ns(clockid_t clk)
{
    struct timespec ts;
    clock_gettime(clk, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static inline uint64_t take_min_free(const struct take *t)
{
    return t->cfg.min_free_bytes ? t->cfg.min_free_bytes : DEFAULT_MIN_FREE;
}

/* take_file.c */
/* The folder the files go to (for --out: the file's own folder). */
void take_files_dir(const struct take *t, char *out, size_t n);
/* Creates the next file (name from the pattern or --out, made unique) at t->pos. */
int  take_file_open(struct take *t);
/* Queues the crash-safe refresh: STREAMINFO, comments with the losses so far, fdatasync. */
int  take_file_flush(struct take *t);
/* Ends the current file; a file with no frame at all is removed when drop_empty. */
int  take_file_close(struct take *t, int drop_empty);
/* Counts a loss of `frames` at frame at_file_frame of the current file (with gap fill it
 * becomes silence there), logs it and keeps it for the comments. */
void take_note_loss(struct take *t, uint64_t at_file_frame, uint64_t frames, int64_t rt_ns,
                    const char *what);
/* Files the capture's xruns inside what the take has read. */
void take_poll_capture_losses(struct take *t);
/* 1 when the disk holds less than min_free (checked at most every 100 ms / 1 MiB). */
int  take_disk_low(struct take *t);

/* take_writer.c: the writer thread's body (arg: the take). */
void *take_writer_main(void *arg);

#endif
