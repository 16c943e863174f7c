/*
 * takes_all: "record all": one take on every connected device, all starting at the same
 * capture instant, and stopping at one instant too.
 *
 * The instant is a wall-clock time T; each device's start is the ring position whose
 * capture time (capture_frame_time: the capture thread's own timestamp of its latest
 * read, counted back at the device's rate) is T. The rings hold the recent past, so the
 * takes, started one after the other, still begin at the same instant: T is chosen at
 * or before the newest frame of every device (minus the pre-roll). The comments of each
 * file carry the session id, T, and the measured offset of the file's first frame from T.
 * Locking: recorder_internal.h (devices marked busy while their takes start or stop).
 */
#include "server/recorder_internal.h"

#include "common/log.h"
#include "server/api_events.h"
#include "store/naming.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

#define STOP_AHEAD_NS 50000000LL   /* 50 ms: more than a writer's lag behind its capture */

int rec_any_lease(struct recorder *r, const char *token, time_t now, char *holder, size_t n)
{
    if (!token || !*token)
        return -EACCES;
    int rc = -EACCES;
    for (struct rec_device *d = r->devs; d; d = d->next) {
        int c = lease_check(r->leases, d->id, token, now);
        if (c == 0) {
            struct lease_info li;
            lease_get(r->leases, d->id, now, &li);
            snprintf(holder, n, "%s", li.client);
            return 0;
        }
        if (c == -ETIME)
            rc = -ETIME;
    }
    return rc;
}

struct starter {
    struct rec_device *d;
    struct capture *cap;
    uint64_t wpos;
    int64_t wtime;         /* capture time of frame wpos */
    int timed;             /* wtime is known */
};

int recorder_start_all(struct recorder *r, const char *token, struct recorder_all_info *out)
{
    memset(out, 0, sizeof(*out));
    struct starter s[RECORDER_ALL_MAX];
    size_t n = 0;
    time_t now = time(NULL);
    char holder[64] = "";
    pthread_mutex_lock(&r->lock);
    int rc = rec_any_lease(r, token, now, holder, sizeof holder);
    if (rc < 0) {
        pthread_mutex_unlock(&r->lock);
        return rc;
    }
    for (struct rec_device *d = r->devs; d; d = d->next)
        if (d->session[0] && d->take) {
            snprintf(out->session, sizeof(out->session), "%s", d->session);
            pthread_mutex_unlock(&r->lock);
            return -EALREADY;
        }
    for (struct rec_device *d = r->devs; d && n < RECORDER_ALL_MAX; d = d->next) {
        if (!d->connected || !d->cap || d->take || d->busy)
            continue;
        struct lease_info li;
        lease_get(r->leases, d->id, now, &li);
        if (li.held && strcmp(li.client, holder) != 0)
            continue;   /* someone else controls it */
        d->busy = 1;
        s[n++] = (struct starter){.d = d, .cap = d->cap};
    }
    pthread_mutex_unlock(&r->lock);
    if (n == 0)
        return -ENODEV;

    /* the session's instant: at or before every device's newest frame, minus the pre-roll
     * that every ring can still give */
    int64_t t = INT64_MAX;
    double back = r->cfg->preroll_seconds;
    for (size_t i = 0; i < n; i++) {
        struct audio_ring *ring = capture_ring(s[i].cap);
        const struct audio_format *f = capture_format(s[i].cap);
        s[i].wpos = audio_ring_write_pos(ring);
        s[i].timed = capture_frame_time(s[i].cap, s[i].wpos, &s[i].wtime) == 0;
        if (s[i].timed && s[i].wtime < t)
            t = s[i].wtime;
        uint64_t cap_frames = audio_ring_capacity(ring);
        uint64_t margin = f->rate / 2;
        double safe = (double)(cap_frames > margin ? cap_frames - margin : cap_frames / 2) / f->rate;
        double have = (double)s[i].wpos / f->rate;
        if (safe < back)
            back = safe;
        if (have < back)
            back = have;
    }
    if (t == INT64_MAX) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        t = (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
    }
    t -= (int64_t)(back * 1e9);

    uint8_t rnd[8];
    if (getrandom(rnd, sizeof rnd, 0) != sizeof rnd)
        memset(rnd, 0, sizeof rnd);
    for (int i = 0; i < 8; i++)
        snprintf(out->session + 2 * i, 3, "%02x", rnd[i]);
    take_utc_time_ms(out->started, sizeof(out->started), t);
    struct timespec t0 = {.tv_sec = (time_t)(t / 1000000000LL), .tv_nsec = (long)(t % 1000000000LL)};

    int started = 0;
    for (size_t i = 0; i < n; i++) {
        struct recorder_all_device *o = &out->dev[out->n++];
        snprintf(o->id, sizeof(o->id), "%s", s[i].d->id);
        const struct audio_format *f = capture_format(s[i].cap);
        uint64_t start = s[i].wpos;
        if (s[i].timed) {
            int64_t ahead = (int64_t)((double)(s[i].wtime - t) * f->rate / 1e9 + 0.5);
            start = ahead > 0 && (uint64_t)ahead <= s[i].wpos ? s[i].wpos - (uint64_t)ahead : 0;
        }
        int64_t first;
        o->offset_us = capture_frame_time(s[i].cap, start, &first) == 0 ? (first - t) / 1000 : 0;
        char c_session[64], c_start[96], c_offset[64];
        snprintf(c_session, sizeof c_session, "PIREC_SESSION=%s", out->session);
        snprintf(c_start, sizeof c_start, "PIREC_SESSION_START=%s", out->started);
        snprintf(c_offset, sizeof c_offset, "PIREC_SESSION_OFFSET_US=%" PRId64, o->offset_us);
        const char *extra[] = {c_session, c_start, c_offset};
        struct recorder_take_info ti;
        memset(&ti, 0, sizeof ti);
        pthread_mutex_lock(&r->lock);
        snprintf(s[i].d->session, sizeof(s[i].d->session), "%s", out->session);
        pthread_mutex_unlock(&r->lock);
        o->error = takes_begin(r, s[i].d, s[i].cap, start, t0, extra, 3, &ti);
        if (o->error == 0) {
            snprintf(o->file, sizeof(o->file), "%s", ti.file);
            started++;
        } else {
            pthread_mutex_lock(&r->lock);
            s[i].d->session[0] = 0;
            pthread_mutex_unlock(&r->lock);
        }
    }
    log_info("recorder", "record all: session %s, %d of %zu devices, first frame at %s",
             out->session, started, n, out->started);
    api_event_session(r->hub, out, "recording");
    return started ? 0 : out->dev[0].error;
}

int recorder_stop_all(struct recorder *r, const char *token, struct recorder_all_info *out)
{
    memset(out, 0, sizeof(*out));
    struct {
        struct rec_device *d;
        struct take *t;
        struct capture *cap;
    } s[RECORDER_ALL_MAX];
    size_t n = 0;
    char holder[64];
    pthread_mutex_lock(&r->lock);
    int rc = rec_any_lease(r, token, time(NULL), holder, sizeof holder);
    if (rc < 0) {
        pthread_mutex_unlock(&r->lock);
        return rc;
    }
    for (struct rec_device *d = r->devs; d && n < RECORDER_ALL_MAX; d = d->next) {
        if (!d->session[0] || !d->take || d->busy)
            continue;
        if (!out->session[0])
            snprintf(out->session, sizeof(out->session), "%s", d->session);
        if (strcmp(d->session, out->session) != 0)
            continue;
        s[n].d = d;
        s[n].t = d->take;
        s[n].cap = d->cap;
        n++;
        d->take = NULL;
        d->busy = 1;
    }
    pthread_mutex_unlock(&r->lock);
    if (n == 0)
        return -EALREADY;

    /* one instant for all: a little after the newest frame any of them has, so that no
     * writer has read past its stop position when told; all told first, then the (slow)
     * finishing one after the other */
    int64_t t = INT64_MIN;
    uint64_t wpos[RECORDER_ALL_MAX], stop[RECORDER_ALL_MAX];
    int64_t w[RECORDER_ALL_MAX];
    int timed[RECORDER_ALL_MAX];
    for (size_t i = 0; i < n; i++) {
        wpos[i] = audio_ring_write_pos(capture_ring(s[i].cap));
        timed[i] = capture_frame_time(s[i].cap, wpos[i], &w[i]) == 0;
        if (timed[i] && w[i] > t)
            t = w[i];
    }
    t += STOP_AHEAD_NS;
    for (size_t i = 0; i < n; i++) {
        stop[i] = UINT64_MAX;
        if (timed[i]) {
            unsigned rate = capture_format(s[i].cap)->rate;
            stop[i] = wpos[i] + (uint64_t)((double)(t - w[i]) * rate / 1e9 + 0.5);
            log_debug("recorder", "record all: %s stops at %" PRIu64 " (now %" PRIu64
                      ", %.2f ms ahead)", s[i].d->id, stop[i], wpos[i], (double)(t - w[i]) / 1e6);
            take_request_stop(s[i].t, stop[i]);
        }
    }
    for (size_t i = 0; i < n; i++) {
        struct take_status st;
        struct recorder_all_device *o = &out->dev[out->n++];
        snprintf(o->id, sizeof(o->id), "%s", s[i].d->id);
        o->error = takes_finish_at(r, s[i].d, s[i].t, 1, NULL, stop[i], &st);
        const char *base = strrchr(st.path, '/');
        rec_set_str(o->file, sizeof(o->file), base ? base + 1 : st.path);
        o->seconds = st.seconds;
        pthread_mutex_lock(&r->lock);
        s[i].d->take_file[0] = 0;
        rec_set_idle(r, s[i].d);
        pthread_mutex_unlock(&r->lock);
    }
    log_info("recorder", "record all: session %s stopped (%zu takes)", out->session, n);
    api_event_session(r->hub, out, "stopped");
    return 0;
}
