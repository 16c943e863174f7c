/*
 * take: the writer thread between a capture's ring and FLAC files; see take.h.
 *
 * The encoder ("take-writer") reads the ring in blocks from the take's start position,
 * converts to right-aligned int32 at the stored depth and feeds libFLAC (flac_writer),
 * whose output goes to a bounded in-memory queue; the file's disk thread ("take-disk")
 * writes it, and every flush_ms a STREAMINFO + comments snapshot queued behind the frames
 * it describes, then fdatasync()s. A disk stall thus grows the queue, not the ring. Files are written as
 * "<name>.flac.part" and renamed at the end, so a crash leaves only .part files, which
 * flac_repair finalizes. File creation, renames and the final fsync happen on the encoder
 * thread (at start, splits and stop); the control thread only sets the stop position and
 * joins.
 */
#include "store/take.h"

#include "common/log.h"
#include "common/timeutil.h"
#include "store/flac_writer.h"
#include "store/naming.h"
#include "store/take_gap.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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

static int64_t now_ns(clockid_t clk)
{
    struct timespec ts;
    clock_gettime(clk, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static uint64_t min_free(const struct take *t)
{
    return t->cfg.min_free_bytes ? t->cfg.min_free_bytes : DEFAULT_MIN_FREE;
}

static const char *target_dir(const struct take *t)
{
    return t->dir ? t->dir : ".";
}

/* The folder the files go to (for --out: the file's own folder). */
static void files_dir(const struct take *t, char *out, size_t n)
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

static int open_file(struct take *t)
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

/* The loss comments: totals first (they must always fit), then one per event. */
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

static void note_loss(struct take *t, uint64_t at_file_frame, uint64_t frames, int64_t rt_ns,
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
static void poll_capture_losses(struct take *t)
{
    struct capture_loss l;
    while (take_gap_next_loss(&t->gap, t->pos, &l)) {
        uint64_t at = t->cfg.no_gap_fill
                          ? (l.at_frame > t->file_first_pos ? l.at_frame - t->file_first_pos : 0)
                          : t->file_frames;
        note_loss(t, at, l.frames, l.realtime_ns, "capture overrun");
    }
}

static int flush_file(struct take *t)
{
    char buf[MAX_LOSS_NOTES + 2][96];
    const char *ptrs[MAX_LOSS_NOTES + 2];
    size_t n = loss_comments(t, buf, ptrs);
    return flac_writer_flush(t->w, ptrs, n);
}

/* Ends the current file; a file with no frame at all is removed when drop_empty. */
static int close_file(struct take *t, int drop_empty)
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

static int disk_low(struct take *t)
{
    /* by time for live sources, by bytes for sources read faster than real time */
    int64_t now = now_ns(CLOCK_MONOTONIC);
    uint64_t written = t->bytes_done + (t->w ? flac_writer_bytes(t->w) : 0);
    uint64_t step = min_free(t) / 4 < (1u << 20) ? min_free(t) / 4 : (1u << 20);
    if (now - t->last_disk_check < DISK_CHECK_NS && written - t->last_disk_bytes < step)
        return 0;
    t->last_disk_check = now;
    t->last_disk_bytes = written;
    char d[PATH_MAX];
    files_dir(t, d, sizeof d);
    uint64_t free_b;
    if (disk_space(d, &t->fmt, &free_b, NULL) < 0)
        return 0;
    return free_b < min_free(t);
}

/* S32_LE words to right-aligned int32 shifted by `shift`; returns the OR of all words
 * (the caller checks the bits shifted out). memcpy: the ring buffer has no alignment
 * promise; the compiler makes it a plain load. */
static __attribute__((unused)) uint32_t s32_shift_check(const uint8_t *raw, size_t ns, unsigned shift, int32_t *out)
{
    uint32_t any = 0;
    for (size_t i = 0; i < ns; i++) {
        uint32_t u;
        memcpy(&u, raw + 4 * i, 4);
        any |= u;
        out[i] = (int32_t)u >> shift;
    }
    return any;
}

static void *writer_main(void *arg)
{
    struct take *t = arg;
    size_t ch = t->fmt.channels;
    int64_t last_flush = now_ns(CLOCK_MONOTONIC);
    enum take_state end = TAKE_DONE;
    int err = 0;
    uint32_t s32_mask = 0;
    for (;;) {
        if (t->fmt.sample == SF_S32_LE && t->bits < 32)
            s32_mask = (1u << (32 - t->bits)) - 1;
        else
            s32_mask = 0;
        int stopping = atomic_load(&t->stop_requested);
        uint64_t stop_pos = atomic_load(&t->stop_pos);
        if (!t->cfg.no_gap_fill)
            poll_capture_losses(t);   /* a gap right here: its silence first */
        int filling = take_gap_pending(&t->gap);
        if (stopping && t->pos >= stop_pos && !filling)
            break;
        size_t want = CHUNK_FRAMES;
        if (stopping && !filling && stop_pos - t->pos < want)
            want = (size_t)(stop_pos - t->pos);
        if (t->cfg.max_frames && t->cfg.max_frames - t->frames_total < want)
            want = (size_t)(t->cfg.max_frames - t->frames_total);
        if (t->cfg.split_frames && t->cfg.split_frames - t->file_frames < want)
            want = (size_t)(t->cfg.split_frames - t->file_frames);
        ssize_t n;
        const uint8_t *raw = t->raw;
        size_t gn = 0, goff = 0;
        enum take_gap_next next = take_gap_next(&t->gap, want, &gn, &goff);
        int silence = next == TAKE_GAP_SILENCE;
        if (next != TAKE_GAP_READ) {
            n = (ssize_t)gn;
            if (next == TAKE_GAP_HELD)
                raw = t->raw + goff * audio_frame_bytes(&t->fmt);
        } else {
            want = take_gap_limit(&t->gap, t->pos, want);
            uint64_t lost = 0;
            n = audio_ring_read(t->ring, &t->pos, t->raw, want, &lost);
            atomic_store_explicit(&t->pub_pos, t->pos, memory_order_release);
            if (lost) {
                note_loss(t, t->file_frames, lost, now_ns(CLOCK_REALTIME),
                          "the writer fell behind the ring");
                if (!t->cfg.no_gap_fill && n > 0) {
                    /* the frames read come after the gap: keep them for after its silence */
                    take_gap_hold(&t->gap, (size_t)n);
                    continue;
                }
            }
        }
        if (n > 0 && silence) {
            memset(t->pcm, 0, (size_t)n * ch * sizeof *t->pcm);
        } else if (n > 0) {
            size_t ns = (size_t)n * ch;
            int converted = 0;
            if (s32_mask) {
                /* a 32-bit word stored at fewer bits must really have zero low bits;
                 * otherwise go on at 32 bits in a new file rather than drop them.
                 * Check and convert in one pass (this loop runs on every sample) */
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
                uint32_t any = s32_shift_check(raw, ns, 32 - t->bits, t->pcm);
                converted = 1;
#else
                uint32_t any = 0;
                for (size_t i = 0; i < ns; i++)
                    any |= (uint32_t)audio_sample_get(raw, SF_S32_LE, i);
#endif
                if (any & s32_mask) {
                    converted = 0;
                    if (t->auto_bits && t->file_frames == 0 && t->st.files == 1)
                        log_info("take", "the low bits of the 32-bit words are in use: "
                                 "storing 32 bits");
                    else
                        log_warn("take", "the device delivers more than %u bits: going on at "
                                 "32 bits in a new file", t->bits);
                    uint64_t keep = t->pos;
                    t->pos = keep - (uint64_t)n;
                    int rc = close_file(t, 1);
                    t->bits = 32;
                    if (rc == 0)
                        rc = open_file(t);
                    t->pos = keep;
                    t->file_first_pos = keep - (uint64_t)n;
                    if (rc < 0) {
                        end = rc == -ENOSPC ? TAKE_DISK_FULL : TAKE_FAILED;
                        err = rc;
                        goto out;
                    }
                }
            }
            if (!converted)
                audio_samples_to_int32(raw, t->fmt.sample, ns, t->bits, t->pcm);
        }
        if (n > 0) {
            int rc = flac_writer_process(t->w, t->pcm, (size_t)n);
            if (rc < 0) {
                end = rc == -ENOSPC || rc == -EDQUOT ? TAKE_DISK_FULL : TAKE_FAILED;
                err = rc;
                log_err("take", "writing %s failed: %s; the file keeps what was written",
                        t->part, strerror(-rc));
                break;
            }
            t->file_frames += (uint64_t)n;
            t->frames_total += (uint64_t)n;
            pthread_mutex_lock(&t->lock);
            t->st.frames = t->frames_total;
            t->st.seconds = (double)t->frames_total / t->fmt.rate;
            t->st.bytes = t->bytes_done + flac_writer_bytes(t->w);
            pthread_mutex_unlock(&t->lock);
            if (t->cfg.max_frames && t->frames_total >= t->cfg.max_frames) {
                end = TAKE_LIMIT;
                break;
            }
            int split = (t->cfg.split_frames && t->file_frames >= t->cfg.split_frames) ||
                        (t->cfg.split_bytes && flac_writer_bytes(t->w) >= t->cfg.split_bytes);
            if (split && !(stopping && t->pos >= stop_pos)) {
                poll_capture_losses(t);
                int rc2 = close_file(t, 0);
                if (rc2 == 0)
                    rc2 = open_file(t);
                if (rc2 < 0) {
                    end = rc2 == -ENOSPC ? TAKE_DISK_FULL : TAKE_FAILED;
                    err = rc2;
                    goto out;
                }
                last_flush = now_ns(CLOCK_MONOTONIC);
            }
            if (disk_low(t)) {
                log_warn("take", "less than %" PRIu64 " bytes free: stopping the take",
                         min_free(t));
                end = TAKE_DISK_FULL;
                err = -ENOSPC;
                break;
            }
        } else {
            int rc = audio_ring_wait(t->ring, t->pos, 100);
            if (rc == -EPIPE) {
                enum capture_state cs = capture_get_state(t->cap);
                if (cs == CAPTURE_GONE) {
                    end = TAKE_DEVICE_GONE;
                    err = -ENODEV;
                } else if (cs == CAPTURE_FAILED) {
                    end = TAKE_FAILED;
                    err = capture_error(t->cap) ? capture_error(t->cap) : -EIO;
                }
                break;
            }
        }
        poll_capture_losses(t);
        int64_t now = now_ns(CLOCK_MONOTONIC);
        if (now - last_flush >= (int64_t)t->cfg.flush_ms * 1000000LL) {
            last_flush = now;
            int rc = flush_file(t);
            if (rc < 0) {
                end = rc == -ENOSPC ? TAKE_DISK_FULL : TAKE_FAILED;
                err = rc;
                break;
            }
        }
    }
out:
    poll_capture_losses(t);
    {
        int rc = close_file(t, 0);
        if (rc < 0 && !err) {
            err = rc;
            end = rc == -ENOSPC ? TAKE_DISK_FULL : TAKE_FAILED;
        }
    }
    pthread_mutex_lock(&t->lock);
    t->st.state = end;
    if (err && !t->st.error)
        t->st.error = err;
    t->st.frames = t->frames_total;
    t->st.seconds = (double)t->frames_total / t->fmt.rate;
    t->ended = 1;
    pthread_cond_broadcast(&t->cond);
    pthread_mutex_unlock(&t->lock);
    return NULL;
}

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
        int64_t ns = now_ns(CLOCK_REALTIME);
        if (wpos > start_pos)
            ns -= (int64_t)((double)(wpos - start_pos) * 1e9 / fmt->rate);
        t->t0.tv_sec = (time_t)(ns / 1000000000LL);
        t->t0.tv_nsec = (long)(ns % 1000000000LL);
    }

    char d[PATH_MAX];
    files_dir(t, d, sizeof d);
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
    if (free_b < min_free(t)) {
        log_err("take", "only %" PRIu64 " MiB free in %s, below the %" PRIu64
                " MiB kept free: free some space or lower min_free",
                free_b >> 20, d, min_free(t) >> 20);
        rc = -ENOSPC;
        goto fail;
    }
    t->st.state = TAKE_RUNNING;
    if ((rc = open_file(t)) < 0) {
        log_err("take", "cannot create the take file in %s: %s", d, strerror(-rc));
        goto fail;
    }
    /* make the empty file durable too: a crash now leaves a header, not nothing */
    flush_file(t);
    if ((rc = pthread_create(&t->thread, NULL, writer_main, t)) != 0) {
        rc = -rc;
        close_file(t, 1);
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

uint64_t take_read_pos(const struct take *t)
{
    return atomic_load_explicit(&((struct take *)t)->pub_pos, memory_order_acquire);
}
