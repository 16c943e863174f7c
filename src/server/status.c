/*
 * status: the recorder's status snapshot, and the ticker thread (every 40 ms): `level`
 * events from each meter whose snapshot changed, lease expiry, takes that ended by
 * themselves, captures that ended or vanished, and `status` every 90 s.
 * Locking: recorder_internal.h.
 */
#include "server/recorder_internal.h"

#include "common/log.h"
#include "common/timeutil.h"
#include "server/api_events.h"
#include "store/naming.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TICK_MS 40
#define STATUS_EVERY_S 90

/* ---- the snapshot ---------------------------------------------------------------------------- */

static void device_status(struct recorder *r, struct rec_device *d, time_t now,
                          struct recorder_device_status *o)
{
    memset(o, 0, sizeof(*o));
    rec_set_str(o->id, sizeof(o->id), d->id);
    rec_set_str(o->name, sizeof(o->name), d->name);
    o->connected = d->connected;
    if (d->connected && d->cap) {
        o->has_format = 1;
        o->format = *capture_format(d->cap);
        o->bits = d->bits ? d->bits : sample_format_bits(o->format.sample);
    }
    struct lease_info li;
    lease_get(r->leases, d->id, now, &li);
    o->taken = li.held;
    if (li.held) {
        rec_set_str(o->holder, sizeof(o->holder), li.client);
        o->expires = li.expires;
        rec_set_str(o->lease, sizeof(o->lease), li.id);
        o->kept_by_take = li.kept;
        o->holder_seen = li.holder_seen;
        o->takeover_at = li.takeover_at;
    }
    if (d->take) {
        o->elapsed = rec_take_pos(d);
        rec_set_str(o->started, sizeof(o->started), d->take_started);
        o->preroll = d->take_preroll;
    }
    o->recording = d->take != NULL || (d->busy && d->take_file[0]);
    if (o->recording)
        rec_set_str(o->file, sizeof(o->file), d->take_file);
    o->stalled = d->connected && d->stalled;
    o->stalled_since = o->stalled ? d->stalled_since : 0;
    if (d->connected && d->cap) {
        struct capture_stats cs;
        capture_get_stats(d->cap, &cs);
        o->timing_losses = cs.timing_losses;
        o->measured_rate = cs.measured_rate;
    }
}

/* Format for the disk-time estimate: the connected device with the highest data rate. */
static int widest_format(struct recorder *r, struct audio_format *out)
{
    size_t best = 0;
    for (struct rec_device *d = r->devs; d; d = d->next) {
        if (!d->connected || !d->cap)
            continue;
        const struct audio_format *f = capture_format(d->cap);
        size_t rate = audio_frame_bytes(f) * f->rate;
        if (rate > best) {
            best = rate;
            *out = *f;
        }
    }
    return best ? 0 : -ENOENT;
}

/* Free space from the disk watch (never statvfs here: this runs on the HTTP event thread
 * and the ticker), and the recording time it leaves at fmt. */
static void disk_figures(struct recorder *r, const struct audio_format *fmt,
                         struct recorder_status *out)
{
    struct disk_reading dr;
    disk_watch_get(r->disk, &dr);
    out->disk_known = dr.known;
    out->disk_stale = dr.stale;
    out->disk_age = dr.age_s;
    out->free_bytes = dr.free_bytes;
    double raw = (double)audio_frame_bytes(fmt) * fmt->rate;
    /* FLAC of real recordings: about 60 % of the raw PCM (the estimate of disk_space) */
    out->seconds_left = dr.known && raw > 0 ? (double)dr.free_bytes / (raw * 0.6) : 0;
}

int recorder_get_status(struct recorder *r, struct recorder_status *out)
{
    memset(out, 0, sizeof(*out));
    time_t now = time(NULL);
    struct audio_format fmt = {SF_S16_LE, 48000, 2};
    pthread_mutex_lock(&r->lock);
    size_t n = 0;
    for (struct rec_device *d = r->devs; d; d = d->next)
        n++;
    out->devices = calloc(n ? n : 1, sizeof(*out->devices));
    if (!out->devices) {
        pthread_mutex_unlock(&r->lock);
        return -ENOMEM;
    }
    for (struct rec_device *d = r->devs; d; d = d->next) {
        if (!d->configured && !d->connected)
            continue;   /* a hotplugged card that went away */
        device_status(r, d, now, &out->devices[out->n_devices++]);
    }
    (void)widest_format(r, &fmt);
    pthread_mutex_unlock(&r->lock);

    disk_figures(r, &fmt, out);
    out->clock_synchronised = rec_clock_synchronised();
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    pthread_mutex_lock(&r->lock);
    if (out->clock_synchronised && r->clock_source[0]) {
        /* NTP is back: the client's offset is dropped, and every page told */
        r->clock_offset = 0;
        r->clock_source[0] = 0;
        api_event_clock(r->hub, 0, "system");
    }
    ts = rec_clock_shift(r, ts);
    out->clock_offset = r->clock_offset;
    rec_set_str(out->clock_source, sizeof(out->clock_source),
                r->clock_source[0] ? r->clock_source : "system");
    pthread_mutex_unlock(&r->lock);
    take_iso_time(out->server_time, sizeof(out->server_time), &ts);
    out->lease_seconds = r->cfg->lease_seconds;
    out->takeover_after_seconds = r->cfg->takeover_after_seconds;
    rec_set_str(out->instance, sizeof(out->instance), r->instance);
    if (forwarder_list(r->fwd, &out->forward, &out->n_forward) < 0) {
        recorder_status_free(out);
        return -ENOMEM;
    }
    return 0;
}

void recorder_status_free(struct recorder_status *st)
{
    if (!st)
        return;
    free(st->devices);
    st->devices = NULL;
    st->n_devices = 0;
    free(st->forward);
    st->forward = NULL;
    st->n_forward = 0;
}

/* ---- the ticker -------------------------------------------------------------------------------- */

static void publish_level(struct recorder *r, struct rec_device *d)
{
    struct meter_snapshot m;
    capture_meter(d->cap, &m);
    if (m.seq == 0 || m.seq == d->meter_seq)
        return;
    d->meter_seq = m.seq;
    api_event_level(r->hub, d->id, &m, rec_take_pos(d));
}

static void publish_status(struct recorder *r);

/* Slow work the ticker hands to r->slow: the device is busy until it is done. */
struct slow_job {
    struct recorder *r;
    struct rec_device *d;
    struct take *take;         /* a take that ended by itself, or NULL: disconnect */
    char why[160];
    const char *reason;        /* the take's `stop` reason; NULL: from its state */
    char error[256];           /* if set: an `error` event after the `stop`, then `status` */
};

static void do_slow_job(struct slow_job *j)
{
    struct recorder *r = j->r;
    struct rec_device *d = j->d;
    if (!j->take) {
        registry_disconnect(r, d, j->why);
    } else {
        struct take_status fin;
        (void)takes_finish(r, d, j->take, 0, j->reason, &fin);
        if (j->error[0])
            api_event_error(r->hub, d->id, j->error);
        pthread_mutex_lock(&r->lock);
        d->take_file[0] = 0;
        rec_set_idle(r, d);
        pthread_mutex_unlock(&r->lock);
        if (j->error[0])
            publish_status(r);
    }
}

static void run_slow_job(void *arg)
{
    do_slow_job(arg);
    free(arg);
}

/* job->d is marked busy (r->lock held). Returns 1 when the job ran here, with the lock
 * released meanwhile (the caller restarts its pass: the list may have changed). */
static int hand_off_job(struct recorder *r, struct slow_job *job)
{
    job->d->busy = 1;
    struct slow_job *j = malloc(sizeof(*j));
    if (j) {
        *j = *job;
        if (workers_submit(r->slow, run_slow_job, j) == 0)
            return 0;
        free(j);
    }
    /* No worker (out of memory, or shutting down): do it here. */
    pthread_mutex_unlock(&r->lock);
    do_slow_job(job);
    pthread_mutex_lock(&r->lock);
    return 1;
}

static int hand_off(struct recorder *r, struct rec_device *d, struct take *t, const char *why)
{
    struct slow_job job = {.r = r, .d = d, .take = t};
    snprintf(job.why, sizeof(job.why), "%s", why ? why : "");
    return hand_off_job(r, &job);
}

/* ---- the capture watchdog (capture.h): what on_capture_event (registry.c) noted ---------- */

#define NEWS(kind) (1u << (kind))

static void report_timing(struct recorder *r, struct rec_device *d)
{
    uint64_t shortfall = atomic_exchange(&d->timing_short, 0);
    double window_s = (double)atomic_load(&d->timing_window_ns) / 1e9;
    struct capture_stats cs;
    capture_get_stats(d->cap, &cs);
    char msg[256];
    snprintf(msg, sizeof(msg), "loss of timing: the device delivered %" PRIu64 " frames fewer "
             "than the wall clock allows over %.0f s (%.1f Hz measured, %u nominal)%s",
             shortfall, window_s, cs.measured_rate, capture_format(d->cap)->rate,
             d->take ? "; the take goes on and its comments have the shortfall" : "");
    log_warn("recorder", "%s: %s", d->id, msg);
    api_event_error(r->hub, d->id, msg);
}

/* A stall: the running take is finalized with everything captured (reason device_stalled)
 * on r->slow; the lease stays. Returns what hand_off_job does, or 0. */
static int report_stall(struct recorder *r, struct rec_device *d)
{
    double silent = (double)atomic_load(&d->stall_silent_ns) / 1e9;
    d->stalled = 1;
    d->stalled_since = (time_t)(atomic_load(&d->stall_start_ns) / 1000000000LL);
    struct slow_job job = {.r = r, .d = d, .take = d->take, .reason = "device_stalled"};
    snprintf(job.error, sizeof(job.error), "the device stopped delivering audio (nothing for "
             "%.1f s)%s; reopening the device", silent,
             d->take ? ": the take was finalized with everything captured" : "");
    log_warn("recorder", "%s: %s", d->id, job.error);
    if (!d->take) {
        api_event_error(r->hub, d->id, job.error);
        r->last_status = 0;      /* a `status` on the next tick (ticker_main) */
        return 0;
    }
    d->take = NULL;
    return hand_off_job(r, &job);
}

/* The watchdog's news for a connected device that is not busy (r->lock held). A loss of
 * timing is reported (the take goes on); a new stall ends the take; frames again after a
 * stall are reported as `back`: no take starts by itself. Returns 1 when the lock was
 * released (the caller restarts its pass), -1 when the device is now busy, else 0. */
static int tick_watchdog(struct recorder *r, struct rec_device *d)
{
    uint32_t news = atomic_exchange(&d->capture_news, 0);
    if (news & NEWS(CAPTURE_EV_TIMING))
        report_timing(r, d);
    /* A take cannot start while stalled (recorder_start): d->take here means a stall the
     * device came back from while it was busy; it still ends the take. */
    if ((news & NEWS(CAPTURE_EV_STALLED)) && (!d->stalled || d->take)) {
        if (report_stall(r, d))
            return 1;
        return d->busy ? -1 : 0;
    }
    /* polled, not from the news: the BACK event may not have been raised yet */
    if (d->stalled && !capture_is_stalled(d->cap)) {
        struct capture_stats cs;
        capture_get_stats(d->cap, &cs);
        d->stalled = 0;
        d->stalled_since = 0;
        log_info("recorder", "%s: audio again after %.1f s of silence", d->id,
                 (double)cs.last_stall_ns / 1e9);
        api_event_back(r->hub, d->id, (double)cs.last_stall_ns / 1e9);
        r->last_status = 0;      /* a `status` on the next tick */
    }
    return 0;
}

/* One pass over the devices. Returns 1 when it released the lock to do slow work (the
 * caller restarts the pass: the list may have changed meanwhile). Finalizing a take and
 * stopping a capture go to r->slow, so a stalled disk never delays another device's
 * levels. */
static int tick_devices(struct recorder *r)
{
    for (struct rec_device *d = r->devs; d; d = d->next) {
        if (!d->connected || !d->cap)
            continue;
        /* Levels flow while the device's own take starts or stops (d->cap is cleared
         * under the lock before a capture is stopped). */
        publish_level(r, d);
        if (d->busy)
            continue;
        if (d->peaks && d->take)
            peaks_feed(d->peaks, capture_ring(d->cap), UINT64_MAX);   /* the take's overview */
        enum capture_state cs = capture_get_state(d->cap);
        if (cs != CAPTURE_RUNNING) {
            char why[160];
            if (cs == CAPTURE_FAILED) {
                int e = capture_error(d->cap);
                snprintf(why, sizeof(why), "capture failed: %s", strerror(e < 0 ? -e : EIO));
                api_event_error(r->hub, d->id, why);
            } else {
                snprintf(why, sizeof(why), "%s", cs == CAPTURE_ENDED ? "the source ended" :
                         "the device is gone");
            }
            if (hand_off(r, d, NULL, why))
                return 1;
            continue;
        }
        int w = tick_watchdog(r, d);
        if (w > 0)
            return 1;
        if (w < 0)
            continue;
        if (d->take) {
            struct take_status st;
            take_get_status(d->take, &st);
            if (st.state == TAKE_RUNNING) {
                rec_set_str(d->take_file, sizeof(d->take_file), rec_base_name(st.path));
                continue;
            }
            /* Ended by itself: limit, disk nearly full, write error, source end. */
            struct take *t = d->take;
            d->take = NULL;
            if (hand_off(r, d, t, NULL))
                return 1;
        }
    }
    return 0;
}

static void publish_status(struct recorder *r)
{
    struct recorder_status st;
    if (recorder_get_status(r, &st) == 0) {
        api_event_status(r->hub, &st);
        recorder_status_free(&st);
    }
}

static void *ticker_main(void *arg)
{
    struct recorder *r = arg;
    pthread_mutex_lock(&r->lock);
    while (!r->stopping) {
        pthread_mutex_unlock(&r->lock);
        rec_expire_leases(r);
        time_t now = time(NULL);
        if (now - r->last_status >= STATUS_EVERY_S) {
            r->last_status = now;
            publish_status(r);
        }
        pthread_mutex_lock(&r->lock);
        for (int guard = 0; guard < 64 && !r->stopping && tick_devices(r); guard++)
            ;
        struct timespec ts;
        deadline_after_ms(&ts, TICK_MS);
        if (!r->stopping)
            pthread_cond_timedwait(&r->tick_cond, &r->lock, &ts);
    }
    pthread_mutex_unlock(&r->lock);
    return NULL;
}

int status_start_ticker(struct recorder *r)
{
    int rc = workers_create(&r->slow, 2, "rec-slow");
    if (rc < 0)
        return rc;
    rc = pthread_create(&r->ticker, NULL, ticker_main, r);
    if (rc)
        return -rc;
    pthread_setname_np(r->ticker, "rec-ticker");
    r->ticker_started = 1;
    return 0;
}

void status_stop_ticker(struct recorder *r)
{
    pthread_mutex_lock(&r->lock);
    r->stopping = 1;
    pthread_cond_broadcast(&r->tick_cond);
    pthread_mutex_unlock(&r->lock);
    if (r->ticker_started)
        pthread_join(r->ticker, NULL);
    r->ticker_started = 0;
    workers_destroy(r->slow);   /* runs what the ticker handed over */
    r->slow = NULL;
}
