/*
 * status: the recorder's status snapshot, and the ticker thread (every 40 ms): `level`
 * events from each meter whose snapshot changed, lease expiry, takes that ended by
 * themselves, captures that ended or vanished, and `status` every 90 s.
 * Locking: recorder_internal.h.
 */
#include "server/recorder_internal.h"

#include "common/timeutil.h"
#include "server/api_events.h"
#include "store/naming.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/timex.h>

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
    }
    if (d->take) {
        struct take_status st;
        take_get_status(d->take, &st);
        o->elapsed = st.seconds;
    }
    o->recording = d->take != NULL || (d->busy && d->take_file[0]);
    if (o->recording)
        rec_set_str(o->file, sizeof(o->file), d->take_file);
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

    if (disk_space(r->cfg->recordings, &fmt, &out->free_bytes, &out->seconds_left) < 0) {
        out->free_bytes = 0;
        out->seconds_left = 0;
    }
    struct timex tx;
    memset(&tx, 0, sizeof(tx));
    out->clock_synchronised = adjtimex(&tx) != TIME_ERROR;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    take_iso_time(out->server_time, sizeof(out->server_time), &ts);
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
    api_event_level(r->hub, d->id, &m);
}

/* One pass over the devices. Returns 1 when it released the lock to do slow work (the
 * caller restarts the pass: the list may have changed meanwhile). */
static int tick_devices(struct recorder *r)
{
    for (struct rec_device *d = r->devs; d; d = d->next) {
        if (!d->connected || d->busy || !d->cap)
            continue;
        publish_level(r, d);
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
            d->busy = 1;
            pthread_mutex_unlock(&r->lock);
            registry_disconnect(r, d, why);
            pthread_mutex_lock(&r->lock);
            return 1;
        }
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
            d->busy = 1;
            pthread_mutex_unlock(&r->lock);
            struct take_status fin;
            (void)takes_finish(r, d, t, 0, NULL, &fin);
            pthread_mutex_lock(&r->lock);
            d->take_file[0] = 0;
            rec_set_idle(r, d);
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
    int rc = pthread_create(&r->ticker, NULL, ticker_main, r);
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
}
