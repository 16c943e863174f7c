/*
 * take_file: one file of a take, on the writer thread (see take_internal.h): its name,
 * creation with the header, the periodic crash-safe refresh (STREAMINFO + loss comments +
 * fdatasync, queued behind the frames it describes), the loss bookkeeping that goes into
 * its comments, and its end (finish, rename .part -> final name).
 */
#include "store/take_internal.h"

#include "common/log.h"
#include "store/naming.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *target_dir(const struct take *t)
{
    return t->dir ? t->dir : ".";
}

void take_files_dir(const struct take *t, char *out, size_t n)
{
    if (t->out_path) {
        const char *slash = strrchr(t->out_path, '/');
        if (!slash)
            snprintf(out, n, ".");
        else
            snprintf(out, n, "%.*s", (int)(slash == t->out_path ? 1 : slash - t->out_path),
                     t->out_path);
    } else {
        snprintf(out, n, "%s", target_dir(t));
    }
}

/* Base name (with .flac) of file number `index` (1-based) starting at ring pos `first`. */
static int base_name(struct take *t, unsigned index, uint64_t first, char *out, size_t n)
{
    if (t->out_path) {
        if (index == 1)
            return snprintf(out, n, "%s", t->out_path) < (int)n ? 0 : -ENAMETOOLONG;
        const char *slash = strrchr(t->out_path, '/');
        const char *dot = strrchr(slash ? slash + 1 : t->out_path, '.');
        size_t stem = dot ? (size_t)(dot - t->out_path) : strlen(t->out_path);
        int r = snprintf(out, n, "%.*s_%03u%s", (int)stem, t->out_path, index, dot ? dot : "");
        return r < (int)n ? 0 : -ENAMETOOLONG;
    }
    struct timespec ts = t->t0;
    (void)first;
    /* the file's own start time, so split files sort and say when they begin */
    uint64_t secs = t->frames_total / t->fmt.rate;
    ts.tv_sec += (time_t)secs;
    char name[PATH_MAX];
    int rc = take_name_expand(name, sizeof name, t->pattern, t->device_id, &ts);
    if (rc < 0)
        return rc;
    if (snprintf(out, n, "%s/%s.flac", target_dir(t), name) >= (int)n)
        return -ENAMETOOLONG;
    return 0;
}

int take_file_open(struct take *t)
{
    char base[PATH_MAX], cand[PATH_MAX];
    int rc = base_name(t, t->st.files + 1, t->pos, base, sizeof base);
    if (rc < 0)
        return rc;
    /* the pattern may name sub-folders */
    char parent[PATH_MAX];
    snprintf(parent, sizeof parent, "%s", base);
    char *slash = strrchr(parent, '/');
    if (slash && slash != parent) {
        *slash = 0;
        if ((rc = take_mkdir_p(parent)) < 0)
            return rc;
    }
    struct timespec ts = t->t0;
    ts.tv_sec += (time_t)(t->frames_total / t->fmt.rate);
    char date[64], device[160], encoder[64], source[160];
    take_iso_time(date, sizeof date, &ts);
    snprintf(device, sizeof device, "DEVICE=%s", t->device_id ? t->device_id : "");
    char date_c[80];
    snprintf(date_c, sizeof date_c, "DATE=%s", date);
    snprintf(encoder, sizeof encoder, "ENCODER=pirec %s", PIREC_VERSION);
    snprintf(source, sizeof source, "SOURCE_FORMAT=%s %u Hz %u ch",
             sample_format_name(t->fmt.sample), t->fmt.rate, t->fmt.channels);
    const char *comments[4 + TAKE_MAX_EXTRA] = {device, date_c, encoder, source};
    size_t n_comments = 4;
    for (size_t i = 0; i < t->cfg.n_extra_comments; i++)
        comments[n_comments++] = t->extra[i];
    /* Above 48 kHz (where the subset allows blocks up to 16384 and LPC order up to 32):
     * 8192-sample blocks compress better at no CPU cost, and the default profile is
     * level 4 (loose mid-side: libFLAC estimates the stereo mode instead of encoding all
     * four) with LPC order 12 instead of 8 (oversampled audio is very predictable; up to
     * 12 libFLAC stays on its fast path). Measured at 192 kHz against level 5 with 4608
     * blocks: -30 % CPU and -5 % size; see docs/takes.md and bench/encode. */
    int hirate = t->fmt.rate > 48000;
    int profile = t->cfg.compression == 0;
    struct flac_writer_config fc = {
        .rate = t->fmt.rate,
        .channels = t->fmt.channels,
        .bits = t->bits,
        .compression = profile ? (hirate ? 4 : 5) : t->cfg.compression,
        .blocksize = hirate ? 8192 : 0,
        .max_lpc_order = profile && hirate ? 12 : 0,
        .comments = comments,
        .n_comments = n_comments,
        /* the encoder never waits for the disk: memory follows a stall (up to the bound),
         * instead of a ring sized for the worst stall being reserved up front */
        .queue_bytes = t->cfg.queue_bytes, /* 0: the writer's 64 MiB */
    };
    for (unsigned k = 0; k < 10000; k++) {
        if ((rc = take_name_suffix(cand, sizeof cand, base, k)) < 0)
            return rc;
        if (access(cand, F_OK) == 0)
            continue;
        snprintf(t->part, sizeof t->part, "%s.part", cand);
        rc = flac_writer_open(&t->w, t->part, &fc);
        if (rc == -EEXIST)
            continue;
        if (rc < 0)
            return rc;
        snprintf(t->final, sizeof t->final, "%s", cand);
        t->file_frames = 0;
        t->file_first_pos = t->pos;
        t->file_first_total = t->frames_total;
        t->file_start_ns = 0;
        t->file_lost = 0;
        t->file_events = 0;
        t->n_notes = 0;
        pthread_mutex_lock(&t->lock);
        snprintf(t->st.path, sizeof t->st.path, "%s", t->final);
        t->st.files++;
        pthread_mutex_unlock(&t->lock);
        log_info("take", "recording to %s (%u bit)", t->final, t->bits);
        if (t->cfg.on_open)
            t->cfg.on_open(t->part, t->final, t->cfg.on_file_arg);
        return 0;
    }
    return -EEXIST;
}

/* Capture time of the current file's first frame, once the capture has a timestamp
 * (at take_start it may not have read anything yet): with gap fill every frame is 1/rate
 * after the take's first; without, the capture's clock at the file's ring position. */
static int64_t file_start_time(struct take *t)
{
    if (!t->start_rt_ns && capture_frame_time(t->cap, t->start_pos, &t->start_rt_ns) == 0) {
        pthread_mutex_lock(&t->lock);
        t->st.start_realtime_ns = t->start_rt_ns;
        pthread_mutex_unlock(&t->lock);
    }
    if (!t->file_start_ns && t->start_rt_ns) {
        if (t->cfg.no_gap_fill) {
            if (capture_frame_time(t->cap, t->file_first_pos, &t->file_start_ns) < 0)
                t->file_start_ns = 0;
        } else {
            t->file_start_ns = t->start_rt_ns +
                               (int64_t)((double)t->file_first_total * 1e9 / t->fmt.rate);
        }
    }
    return t->file_start_ns;
}

/* The loss comments: totals first (they must always fit), then one per event. */
static size_t loss_comments(struct take *t, char (*buf)[96], const char **ptrs)
{
    size_t n = 0;
    if (file_start_time(t)) {
        take_gap_time_comment(buf[n], 96, t->file_start_ns);
        ptrs[n] = buf[n];
        n++;
    }
    snprintf(buf[n], 96, "PIREC_LOSSES=%" PRIu32 ":%" PRIu64, t->file_events, t->file_lost);
    ptrs[n] = buf[n];
    n++;
    for (unsigned i = 0; i < t->n_notes; i++) {
        struct timespec ts = {.tv_sec = (time_t)(t->notes[i].realtime_ns / 1000000000LL)};
        char iso[64];
        take_iso_time(iso, sizeof iso, &ts);
        snprintf(buf[n], 96, "PIREC_LOSS=%" PRIu64 "+%" PRIu64 "@%s", t->notes[i].at_frame,
                 t->notes[i].frames, iso);
        ptrs[n] = buf[n];
        n++;
    }
    return n;
}

void take_note_loss(struct take *t, uint64_t at_file_frame, uint64_t frames, int64_t rt_ns,
                      const char *what)
{
    take_gap_owe(&t->gap, frames);   /* with gap fill: silence here, before more audio */
    t->file_events++;
    t->file_lost += frames;
    if (t->n_notes < MAX_LOSS_NOTES)
        t->notes[t->n_notes++] = (struct loss_note){at_file_frame, frames, rt_ns};
    pthread_mutex_lock(&t->lock);
    t->st.loss_events++;
    t->st.lost_frames += frames;
    if (!t->cfg.no_gap_fill)
        t->st.filled_frames += frames;
    pthread_mutex_unlock(&t->lock);
    log_warn("take", "%s: %" PRIu64 " frames lost at frame %" PRIu64 " of %s%s", what, frames,
             at_file_frame, t->final, t->cfg.no_gap_fill ? "" : " (filled with silence)");
}

/* Capture xruns whose gap lies inside what this take has read (with gap fill: at the
 * current place, see take_gap.h). */
void take_poll_capture_losses(struct take *t)
{
    struct capture_loss l;
    while (take_gap_next_loss(&t->gap, t->pos, &l)) {
        uint64_t at = t->cfg.no_gap_fill
                          ? (l.at_frame > t->file_first_pos ? l.at_frame - t->file_first_pos : 0)
                          : t->file_frames;
        take_note_loss(t, at, l.frames, l.realtime_ns, "capture overrun");
    }
}

int take_file_flush(struct take *t)
{
    char buf[MAX_LOSS_NOTES + 2][96];
    const char *ptrs[MAX_LOSS_NOTES + 2];
    size_t n = loss_comments(t, buf, ptrs);
    return flac_writer_flush(t->w, ptrs, n);
}

int take_file_close(struct take *t, int drop_empty)
{
    if (!t->w)
        return 0;
    char buf[MAX_LOSS_NOTES + 2][96];
    const char *ptrs[MAX_LOSS_NOTES + 2];
    size_t n = loss_comments(t, buf, ptrs);
    uint64_t bytes = flac_writer_bytes(t->w);
    uint64_t whole = 0;
    int rc = flac_writer_finish_ex(t->w, ptrs, n, &whole);
    t->w = NULL;
    if (rc < 0 && whole < t->file_frames) {
        /* after a write error the file ends at its last whole frame: say so */
        t->frames_total -= t->file_frames - whole;
        t->file_frames = whole;
    }
    if (drop_empty && t->file_frames == 0 && rc == 0) {
        unlink(t->part);
        pthread_mutex_lock(&t->lock);
        t->st.files--;
        pthread_mutex_unlock(&t->lock);
        return 0;
    }
    /* even after a write error the file holds whole frames only: keep it */
    int rrc = take_rename_noreplace(t->part, t->final, sizeof t->final);
    if (rrc < 0)
        log_err("take", "cannot rename %s: %s (the .part file is complete)", t->part,
                strerror(-rrc));
    struct stat sb;
    t->bytes_done += stat(t->final, &sb) == 0 ? (uint64_t)sb.st_size : bytes;
    pthread_mutex_lock(&t->lock);
    snprintf(t->st.path, sizeof t->st.path, "%s", t->final);
    t->st.bytes = t->bytes_done;
    pthread_mutex_unlock(&t->lock);
    if (t->cfg.on_file)
        t->cfg.on_file(t->final, t->file_frames, rc ? rc : rrc, t->cfg.on_file_arg);
    log_info("take", "finished %s: %" PRIu64 " frames (%.3f s), %" PRIu32 " losses", t->final,
             t->file_frames, (double)t->file_frames / t->fmt.rate, t->file_events);
    return rc ? rc : rrc;
}

int take_disk_low(struct take *t)
{
    /* by time for live sources, by bytes for sources read faster than real time */
    int64_t now = take_now_ns(CLOCK_MONOTONIC);
    uint64_t written = t->bytes_done + (t->w ? flac_writer_bytes(t->w) : 0);
    uint64_t step = take_min_free(t) / 4 < (1u << 20) ? take_min_free(t) / 4 : (1u << 20);
    if (now - t->last_disk_check < DISK_CHECK_NS && written - t->last_disk_bytes < step)
        return 0;
    t->last_disk_check = now;
    t->last_disk_bytes = written;
    char d[PATH_MAX];
    take_files_dir(t, d, sizeof d);
    uint64_t free_b;
    if (disk_space(d, &t->fmt, &free_b, NULL) < 0)
        return 0;
    return free_b < take_min_free(t);
}
