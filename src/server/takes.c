/*
 * takes: starting and stopping a device's take, and finalizing one that ended by itself.
 * The file I/O (take_start's header, take_stop's drain + MD5 + fsync + rename) runs
 * without r->lock while the device is busy. Locking: recorder_internal.h.
 */
#include "server/recorder_internal.h"

#include "common/log.h"
#include "server/api_events.h"
#include "store/naming.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static const char *reason_of(enum take_state s, int by_user)
{
    switch (s) {
    case TAKE_RUNNING:
    case TAKE_DONE: return by_user ? "stopped" : "ended";
    case TAKE_LIMIT: return "limit";
    case TAKE_DISK_FULL: return "disk_full";
    case TAKE_DEVICE_GONE: return "device_gone";
    case TAKE_FAILED: return "error";
    }
    return "error";
}

int takes_finish(struct recorder *r, struct rec_device *d, struct take *t, int by_user,
                 const char *reason, struct take_status *st)
{
    return takes_finish_at(r, d, t, by_user, reason, UINT64_MAX, st);
}

int takes_finish_at(struct recorder *r, struct rec_device *d, struct take *t, int by_user,
                    const char *reason, uint64_t stop_pos, struct take_status *st)
{
    memset(st, 0, sizeof(*st));
    pthread_mutex_lock(&r->lock);
    struct take_peaks *peaks = d->peaks;   /* the ticker feeds it up to its last tick */
    d->peaks = NULL;
    pthread_mutex_unlock(&r->lock);
    peaks_close(peaks);
    int rc = stop_pos == UINT64_MAX ? take_stop(t, st) : take_stop_at(t, stop_pos, st);
    d->session[0] = 0;
    forward_session_free(d->fwd);   /* its jobs go on until their copies are complete */
    d->fwd = NULL;
    if (!reason)
        reason = reason_of(st->state, by_user);
    if (st->path[0] == 0)
        snprintf(st->path, sizeof(st->path), "%s", d->take_file);
    log_info("recorder", "%s: take %s ended (%s): %.1f s, %" PRIu64 " bytes, %" PRIu64
             " frames lost%s%s", d->id, rec_base_name(st->path), reason, st->seconds,
             st->bytes, st->lost_frames, rc ? ", error: " : "", rc ? strerror(-rc) : "");
    api_event_stop(r->hub, d->id, st, reason);
    disk_watch_refresh(r->disk);   /* the status shows the space the take used */
    struct recording_info added;
    if (st->frames > 0 && library_describe(r, rec_base_name(st->path), &added) == 0 &&
        added.complete)
        api_event_take_added(r->hub, &added);   /* every page lists it */
    /* The lease the take kept alive runs again from now (docs/api.md). */
    struct lease_info li;
    if (lease_keep(r->leases, d->id, 0, time(NULL), &li) > 0)
        api_event_take(r->hub, d->id, li.client, li.id, li.expires, 0);
    return rc;
}

/* Where a take with `preroll_seconds` of pre-roll starts in the ring, and the wall time
 * of that frame. */
static uint64_t preroll_start(const struct recorder *r, struct capture *cap, struct timespec *t0,
                              uint64_t *frames_back)
{
    const struct audio_format *f = capture_format(cap);
    struct audio_ring *ring = capture_ring(cap);
    uint64_t wpos = audio_ring_write_pos(ring);
    uint64_t want = (uint64_t)r->cfg->preroll_seconds * f->rate;
    uint64_t cap_frames = audio_ring_capacity(ring);
    uint64_t margin = f->rate / 2;
    uint64_t safe = cap_frames > margin ? cap_frames - margin : cap_frames / 2;
    if (want > safe)
        want = safe;
    if (want > wpos)
        want = wpos;
    clock_gettime(CLOCK_REALTIME, t0);
    int64_t back_ns = (int64_t)(want * 1000000000ull / f->rate);
    int64_t ns = (int64_t)t0->tv_sec * 1000000000LL + t0->tv_nsec - back_ns;
    t0->tv_sec = (time_t)(ns / 1000000000LL);
    t0->tv_nsec = (long)(ns % 1000000000LL);
    *frames_back = want;
    return wpos - want;
}

/* The device delivers no audio (r->lock held): the ticker reported the stall, or the
 * watchdog fired and the ticker has not reported it yet. *silent_s: for how long. */
static int device_stalled(const struct rec_device *d, double *silent_s)
{
    if (!d->stalled && !(d->cap && capture_is_stalled(d->cap)))
        return 0;
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    int64_t since = atomic_load(&d->stall_start_ns);
    int64_t now_ns = (int64_t)now.tv_sec * 1000000000LL + now.tv_nsec;
    *silent_s = since > 0 && now_ns > since ? (double)(now_ns - since) / 1e9 : 0;
    return 1;
}

/* The connected device `id` that `token` controls, with r->lock held; NULL (and the lock
 * released) with *rc as rec_controlled says. */
static struct rec_device *lock_controlled(struct recorder *r, const char *id,
                                          const char *token, int *rc)
{
    pthread_mutex_lock(&r->lock);
    struct rec_device *d = rec_controlled(r, id, token, rc);
    if (!d)
        pthread_mutex_unlock(&r->lock);
    return d;
}

int recorder_start(struct recorder *r, const char *id, const char *token,
                   struct recorder_take_info *out)
{
    int rc;
    struct rec_device *d = lock_controlled(r, id, token, &rc);
    if (!d)
        return rc;
    if (d->take || d->busy) {
        rc = d->take ? -EALREADY : -EBUSY;
        if (out && d->take)
            rec_set_str(out->file, sizeof(out->file), d->take_file);
        pthread_mutex_unlock(&r->lock);
        return rc;
    }
    double silent;
    if (device_stalled(d, &silent)) {
        if (out)
            out->silent_seconds = silent;
        pthread_mutex_unlock(&r->lock);
        return -ENOLINK;
    }
    d->busy = 1;
    struct capture *cap = d->cap;
    pthread_mutex_unlock(&r->lock);

    struct timespec t0;
    uint64_t back;
    uint64_t start = preroll_start(r, cap, &t0, &back);
    return takes_begin(r, d, cap, start, t0, NULL, 0, out);
}

int takes_begin(struct recorder *r, struct rec_device *d, struct capture *cap, uint64_t start,
                struct timespec t0, const char *const *extra, size_t n_extra,
                struct recorder_take_info *out)
{
    int rc;
    pthread_mutex_lock(&r->lock);
    t0 = rec_clock_shift(r, t0);   /* the tablet's time when the clock is not synchronised */
    pthread_mutex_unlock(&r->lock);
    const struct audio_format *f = capture_format(cap);
    uint64_t wpos = audio_ring_write_pos(capture_ring(cap));
    uint64_t back = wpos > start ? wpos - start : 0;
    struct take_config tc = {
        .dir = r->cfg->recordings,
        .device_id = d->id,
        .name_pattern = r->cfg->name_pattern,
        .bits = d->bits,
        .flush_ms = r->cfg->flush_ms,
        .max_frames = (uint64_t)r->cfg->max_take_seconds * f->rate,
        .min_free_bytes = r->cfg->min_free_bytes,
        .start_time = t0,
        .no_gap_fill = !r->cfg->gap_fill,
        .extra_comments = extra,
        .n_extra_comments = n_extra,
    };
    const char *fwd_url = config_forward_url(r->cfg, d->id);
    if (r->fwd && fwd_url[0]) {
        if (!(d->fwd = forward_session_new(r->fwd, fwd_url, d->id)))
            log_err("recorder", "%s: out of memory: this take is not forwarded", d->id);
        tc.on_open = forward_on_open;
        tc.on_file = forward_on_file;
        tc.on_file_arg = d->fwd;
        if (!d->fwd)
            tc.on_open = NULL, tc.on_file = NULL;
    }
    struct take *t = NULL;
    rc = take_start(&t, cap, &tc, start);
    if (rc < 0) {
        forward_session_free(d->fwd);
        d->fwd = NULL;
    }
    struct take_status st;
    if (rc == 0)
        take_get_status(t, &st);

    pthread_mutex_lock(&r->lock);
    if (rc == 0) {
        d->take = t;
        rec_set_str(d->take_file, sizeof(d->take_file), rec_base_name(st.path));
        take_iso_time(d->take_started, sizeof(d->take_started), &t0);
        d->take_start = start;
        d->take_preroll = (double)back / f->rate;
        int prc = peaks_open(&d->peaks, r->cfg->recordings, d->take_file, f, start);
        if (prc < 0)
            log_warn("recorder", "%s: no waveform overview for %s: %s", d->id, d->take_file,
                     strerror(-prc));
        (void)lease_keep(r->leases, d->id, 1, time(NULL), NULL);   /* control follows the take */
        double pos = rec_take_pos(d);
        api_event_record(r->hub, d->id, d->take_file, d->take_started, d->take_preroll, pos);
        if (out) {
            rec_set_str(out->file, sizeof(out->file), d->take_file);
            rec_set_str(out->started, sizeof(out->started), d->take_started);
            out->preroll = d->take_preroll;
            out->pos = pos;
        }
        log_info("recorder", "%s: recording %s (%.1f s pre-roll)", d->id, d->take_file,
                 (double)back / f->rate);
    } else if (rc != -ENOSPC) {
        log_err("recorder", "%s: cannot start a take in %s: %s", d->id, r->cfg->recordings,
                strerror(-rc));
    }
    rec_set_idle(r, d);
    pthread_mutex_unlock(&r->lock);
    return rc;
}

int recorder_stop(struct recorder *r, const char *id, const char *token, struct take_status *out)
{
    int rc;
    struct rec_device *d = lock_controlled(r, id, token, &rc);
    if (!d)
        return rc;
    if (!d->take || d->busy) {
        rc = d->busy ? -EBUSY : -EALREADY;
        pthread_mutex_unlock(&r->lock);
        return rc;
    }
    struct take *t = d->take;
    d->take = NULL;
    d->busy = 1;
    pthread_mutex_unlock(&r->lock);

    struct take_status st;
    rc = takes_finish(r, d, t, 1, NULL, &st);

    pthread_mutex_lock(&r->lock);
    d->take_file[0] = 0;
    rec_set_idle(r, d);
    pthread_mutex_unlock(&r->lock);
    if (out)
        *out = st;
    if (rc < 0 && st.frames == 0)
        return rc;
    if (out && rc < 0 && !out->error)
        out->error = rc;
    return 0;
}
