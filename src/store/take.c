/*
 * take: the life cycle of a take (see take.h), on the control thread: take_start checks
 * the format, the folder and the free space, creates the first file and starts the
 * writer thread; take_stop* tells it where to end, joins it and frees the take. The
 * writer thread is in take_writer.c, the files (crash-safe header, losses, rename) in
 * take_file.c; what they share is take_internal.h.
 *
 * Files are written as "<name>.flac.part" and renamed at the end, so a crash leaves only
 * .part files, which flac_repair finalizes. File creation, renames and the final fsync
 * happen on the encoder thread (at start, splits and stop); the control thread only sets
 * the stop position and joins.
 */
#include "store/take_internal.h"

#include "common/log.h"
#include "common/timeutil.h"
#include "store/naming.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void take_free(struct take *t)
{
    free(t->dir);
    free(t->device_id);
    free(t->pattern);
    free(t->out_path);
    for (size_t i = 0; t->extra && i < t->cfg.n_extra_comments; i++)
        free(t->extra[i]);
    free(t->extra);
    free(t->raw);
    free(t->pcm);
    pthread_mutex_destroy(&t->lock);
    pthread_cond_destroy(&t->cond);
    pthread_cond_destroy(&t->read_cond);
    free(t);
}

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

int take_start(struct take **out, struct capture *cap, const struct take_config *cfg,
               uint64_t start_pos)
{
    *out = NULL;
    const struct audio_format *fmt = capture_format(cap);
    unsigned cbits = sample_format_bits(fmt->sample);
    /* auto on S32_LE: most "32-bit" USB interfaces are 24-bit converters that leave the
     * low byte zero; storing 24 saves ~20 % of size and CPU. The writer checks every
     * block, so real 32-bit content goes on at 32 (at once if the first block has it) */
    int auto_bits = !cfg->bits && fmt->sample == SF_S32_LE;
    unsigned bits = cfg->bits ? cfg->bits : auto_bits ? 24 : cbits;
    if (!cbits || !fmt->rate || !fmt->channels || fmt->channels > 8) {
        log_err("take", "FLAC cannot store %s %u Hz %u channels (at most 8 channels)",
                sample_format_name(fmt->sample), fmt->rate, fmt->channels);
        return -EINVAL;
    }
    if ((bits != 16 && bits != 24 && bits != 32) || bits > cbits ||
        (bits != cbits && fmt->sample != SF_S32_LE)) {
        log_err("take", "cannot store %s at %u bits: use 0 (its real depth %u)%s",
                sample_format_name(fmt->sample), bits, cbits,
                fmt->sample == SF_S32_LE ? ", 24 or 16" : "");
        return -EINVAL;
    }
    if (cfg->compression > 8) {
        log_err("take", "compression level %u: FLAC levels are 0..8", cfg->compression);
        return -EINVAL;
    }
    struct take *t = calloc(1, sizeof *t);
    if (!t)
        return -ENOMEM;
    pthread_mutex_init(&t->lock, NULL);
    /* take_wait's deadlines are on CLOCK_MONOTONIC: a Pi without an RTC steps the wall
     * clock at NTP sync */
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&t->cond, &ca);
    pthread_cond_init(&t->read_cond, &ca);
    pthread_condattr_destroy(&ca);
    t->cap = cap;
    t->ring = capture_ring(cap);
    t->fmt = *fmt;
    t->cfg = *cfg;
    t->bits = bits;
    t->auto_bits = auto_bits;
    if (!t->cfg.flush_ms)
        t->cfg.flush_ms = 2000;
    t->dir = dup_or_null(cfg->dir);
    t->device_id = dup_or_null(cfg->device_id);
    t->pattern = dup_or_null(cfg->name_pattern);
    t->out_path = dup_or_null(cfg->out_path);
    t->raw = malloc(CHUNK_FRAMES * audio_frame_bytes(fmt));
    t->pcm = malloc(CHUNK_FRAMES * fmt->channels * sizeof *t->pcm);
    int rc = -ENOMEM;
    if (cfg->n_extra_comments > TAKE_MAX_EXTRA) {
        log_err("take", "%zu extra comments: at most %d", cfg->n_extra_comments, TAKE_MAX_EXTRA);
        rc = -EINVAL;
        t->cfg.n_extra_comments = 0;
        goto fail;
    }
    if (cfg->n_extra_comments) {
        t->extra = calloc(cfg->n_extra_comments, sizeof *t->extra);
        for (size_t i = 0; t->extra && i < cfg->n_extra_comments; i++)
            if (!(t->extra[i] = strdup(cfg->extra_comments[i])))
                goto fail;
        if (!t->extra)
            goto fail;
    }
    t->cfg.extra_comments = NULL;
    if ((cfg->dir && !t->dir) || (cfg->device_id && !t->device_id) ||
        (cfg->name_pattern && !t->pattern) || (cfg->out_path && !t->out_path) || !t->raw ||
        !t->pcm)
        goto fail;

    /* pre-roll can only reach back as far as the ring holds (minus a margin for the
     * capture that keeps writing while we start) */
    uint64_t wpos = audio_ring_write_pos(t->ring);
    uint64_t cap_frames = audio_ring_capacity(t->ring);
    uint64_t margin = fmt->rate / 2 < cap_frames / 4 ? fmt->rate / 2 : cap_frames / 4;
    if (wpos > start_pos && wpos - start_pos > cap_frames - margin) {
        uint64_t s = wpos - (cap_frames - margin);
        log_warn("take", "pre-roll of %.1f s shortened to the %.1f s the ring holds",
                 (double)(wpos - start_pos) / fmt->rate, (double)(wpos - s) / fmt->rate);
        start_pos = s;
    }
    t->pos = start_pos;
    atomic_store(&t->pub_pos, start_pos);
    t->start_pos = start_pos;
    take_gap_init(&t->gap, cap, !cfg->no_gap_fill, start_pos);
    if (cfg->start_time.tv_sec) {
        t->t0 = cfg->start_time;
    } else {
        int64_t ns = take_now_ns(CLOCK_REALTIME);
        if (wpos > start_pos)
            ns -= (int64_t)((double)(wpos - start_pos) * 1e9 / fmt->rate);
        t->t0.tv_sec = (time_t)(ns / 1000000000LL);
        t->t0.tv_nsec = (long)(ns % 1000000000LL);
    }

    char d[PATH_MAX];
    take_files_dir(t, d, sizeof d);
    if ((rc = take_mkdir_p(d)) < 0) {
        log_err("take", "cannot create the folder %s: %s", d, strerror(-rc));
        goto fail;
    }
    if (access(d, W_OK | X_OK) < 0) {
        rc = -errno;
        log_err("take", "cannot write into %s: %s", d, strerror(errno));
        goto fail;
    }
    uint64_t free_b = 0;
    double secs = 0;
    if ((rc = disk_space(d, fmt, &free_b, &secs)) < 0)
        goto fail;
    if (free_b < take_min_free(t)) {
        log_err("take", "only %" PRIu64 " MiB free in %s, below the %" PRIu64
                " MiB kept free: free some space or lower min_free",
                free_b >> 20, d, take_min_free(t) >> 20);
        rc = -ENOSPC;
        goto fail;
    }
    t->st.state = TAKE_RUNNING;
    if ((rc = take_file_open(t)) < 0) {
        log_err("take", "cannot create the take file in %s: %s", d, strerror(-rc));
        goto fail;
    }
    /* make the empty file durable too: a crash now leaves a header, not nothing */
    take_file_flush(t);
    if ((rc = pthread_create(&t->thread, NULL, take_writer_main, t)) != 0) {
        rc = -rc;
        take_file_close(t, 1);
        goto fail;
    }
    pthread_setname_np(t->thread, "take-writer");
    log_info("take", "started at ring position %" PRIu64 " (%.1f h left on disk)", start_pos,
             secs / 3600);
    *out = t;
    return 0;
fail:
    take_free(t);
    return rc;
}

int take_stop(struct take *t, struct take_status *final)
{
    return take_stop_at(t, audio_ring_write_pos(t->ring), final);
}

void take_request_stop(struct take *t, uint64_t stop_pos)
{
    atomic_store(&t->stop_pos, stop_pos);
    atomic_store(&t->stop_requested, 1);
}

int take_stop_at(struct take *t, uint64_t stop_pos, struct take_status *final)
{
    take_request_stop(t, stop_pos);
    pthread_join(t->thread, NULL);
    int rc = t->st.error;
    if (final)
        *final = t->st;
    take_free(t);
    return rc;
}

void take_get_status(struct take *t, struct take_status *st)
{
    pthread_mutex_lock(&t->lock);
    *st = t->st;
    pthread_mutex_unlock(&t->lock);
}

int take_wait(struct take *t, int timeout_ms)
{
    struct timespec dl;
    if (timeout_ms >= 0)
        deadline_after_ms(&dl, timeout_ms);
    pthread_mutex_lock(&t->lock);
    int rc = 0;
    while (!t->ended && rc == 0)
        rc = timeout_ms < 0 ? pthread_cond_wait(&t->cond, &t->lock)
                            : pthread_cond_timedwait(&t->cond, &t->lock, &dl);
    int ended = t->ended;
    pthread_mutex_unlock(&t->lock);
    return ended ? 0 : -ETIMEDOUT;
}

int take_wait_read_pos(struct take *t, uint64_t pos, int timeout_ms)
{
    struct timespec dl;
    deadline_after_ms(&dl, timeout_ms);
    pthread_mutex_lock(&t->lock);
    int rc = 0;
    /* the writer checks read_wake_pos under the lock after it moved t->pos */
    while (!t->ended && take_read_pos(t) < pos && rc == 0) {
        t->read_wake_pos = pos;
        rc = pthread_cond_timedwait(&t->read_cond, &t->lock, &dl);
    }
    int ended = t->ended, reached = take_read_pos(t) >= pos;
    t->read_wake_pos = 0;
    pthread_mutex_unlock(&t->lock);
    return reached ? 0 : ended ? -EPIPE : -ETIMEDOUT;
}

uint64_t take_read_pos(const struct take *t)
{
    return atomic_load_explicit(&((struct take *)t)->pub_pos, memory_order_acquire);
}
