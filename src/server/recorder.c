/*
 * recorder: creation and shutdown of the core, the leases (take, renew, release) and the
 * helpers the other core files share. Devices: registry.c; takes: takes.c; status and
 * the ticker: status.c; the recordings directory: library.c. See recorder_internal.h for
 * the locking rules.
 */
#include "server/recorder_internal.h"

#include "common/log.h"
#include "common/timeutil.h"
#include "common/utf8.h"
#include "server/api_events.h"
#include "server/jwt.h"
#include "store/flac_repair.h"
#include "store/naming.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/timex.h>

/* ---- shared helpers ---------------------------------------------------------------------- */

void rec_set_str(char *dst, size_t n, const char *src)
{
    size_t l = strnlen(src, n - 1);
    memcpy(dst, src, l);
    dst[l] = 0;
}

const char *rec_base_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

struct rec_device *rec_find(struct recorder *r, const char *id)
{
    if (!id)
        return NULL;
    for (struct rec_device *d = r->devs; d; d = d->next)
        if (strcmp(d->id, id) == 0)
            return d;
    return NULL;
}

struct rec_device *rec_connected(struct recorder *r, const char *id, int *rc)
{
    struct rec_device *d = rec_find(r, id);
    if (!d || !d->connected) {
        *rc = d ? -ENODEV : -ENOENT;
        return NULL;
    }
    return d;
}

struct rec_device *rec_controlled(struct recorder *r, const char *id, const char *token, int *rc)
{
    struct rec_device *d = rec_connected(r, id, rc);
    if (!d)
        return NULL;
    *rc = lease_check(r->leases, d->id, token, time(NULL));
    return *rc < 0 ? NULL : d;
}

double rec_take_pos(const struct rec_device *d)
{
    if (!d->take || !d->cap)
        return -1;
    const struct audio_format *f = capture_format(d->cap);
    uint64_t w = audio_ring_write_pos(capture_ring(d->cap));
    return f->rate && w > d->take_start ? (double)(w - d->take_start) / f->rate : 0;
}

int rec_clock_synchronised(void)
{
    const char *t = getenv("PIREC_TEST_CLOCK");
    if (t && strcmp(t, "synced") == 0)
        return 1;
    if (t && strcmp(t, "unsynced") == 0)
        return 0;
    struct timex tx;
    memset(&tx, 0, sizeof(tx));
    return adjtimex(&tx) != TIME_ERROR;
}

struct timespec rec_clock_shift(const struct recorder *r, struct timespec t)
{
    if (r->clock_offset == 0)
        return t;
    int64_t ns = (int64_t)t.tv_sec * 1000000000LL + t.tv_nsec +
                 (int64_t)(r->clock_offset * 1e9);
    t.tv_sec = (time_t)(ns / 1000000000LL);
    t.tv_nsec = (long)(ns % 1000000000LL);
    if (t.tv_nsec < 0)
        t.tv_sec--, t.tv_nsec += 1000000000L;
    return t;
}

int recorder_set_clock(struct recorder *r, const char *token, double now_ms,
                       struct recorder_clock *out)
{
    if (!(now_ms > 0 && now_ms < 1e15))
        return -EINVAL;
    pthread_mutex_lock(&r->lock);
    char holder[64];
    int rc = rec_any_lease(r, token, time(NULL), holder, sizeof(holder));
    if (rc == 0 && rec_clock_synchronised())
        rc = -EALREADY;
    if (rc == 0) {
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        r->clock_offset = now_ms / 1000.0 - ((double)now.tv_sec + now.tv_nsec / 1e9);
        r->clock_offset = (double)(int64_t)(r->clock_offset * 1000.0) / 1000.0;   /* ms */
        rec_set_str(r->clock_source, sizeof(r->clock_source), holder);
        if (out) {
            out->offset = r->clock_offset;
            rec_set_str(out->source, sizeof(out->source), holder);
            struct timespec shifted = rec_clock_shift(r, now);
            take_iso_time(out->server_time, sizeof(out->server_time), &shifted);
        }
        log_info("recorder", "the clock is not synchronised: %s's time names takes from now "
                 "on (%+.3f s)", holder, r->clock_offset);
        api_event_clock(r->hub, r->clock_offset, holder);
    }
    pthread_mutex_unlock(&r->lock);
    return rc;
}

void rec_wait_idle(struct recorder *r, struct rec_device *d)
{
    while (d->busy)
        pthread_cond_wait(&r->idle, &r->lock);
}

void rec_set_idle(struct recorder *r, struct rec_device *d)
{
    d->busy = 0;
    pthread_cond_broadcast(&r->idle);
}

static void on_lease_expired(const char *device, const char *client, const char *lease,
                             void *arg)
{
    struct recorder *r = arg;
    log_info("recorder", "%s: the lease of %s ran out", device, client);
    api_event_expire(r->hub, device, client, lease);
    api_event_release_lease(r->hub, device, client, lease);
}

void rec_expire_leases(struct recorder *r)
{
    (void)lease_expire(r->leases, time(NULL), on_lease_expired, r);
}

/* ---- leases -------------------------------------------------------------------------------- */

static void fill_lease(struct recorder *r, struct recorder_lease *out, const char *token,
                       const struct lease_info *li)
{
    if (!out)
        return;
    rec_set_str(out->token, sizeof(out->token), token);
    rec_set_str(out->holder, sizeof(out->holder), li->client);
    out->expires = li->expires;
    out->lease_seconds = r->cfg->lease_seconds;
    rec_set_str(out->lease, sizeof(out->lease), li->id);
    out->kept_by_take = li->kept;
    out->present = li->present;
    out->takeover_at = li->takeover_at;
    out->previous[0] = 0;
}

/* What take and take-over begin with: the client's label (it ends up in events, JSON and
 * the page: printable UTF-8, whole characters), leases that just ran out expired (so that
 * they say so before a new grant), and the connected device `id` with r->lock held; or
 * NULL with *rc and the lock released. */
static struct rec_device *lock_for_grant(struct recorder *r, const char *id,
                                         const char *client, char label[RECORDER_LABEL_MAX],
                                         int *rc)
{
    if (utf8_copy_printable(label, RECORDER_LABEL_MAX, client) == 0)
        snprintf(label, RECORDER_LABEL_MAX, "anonymous");
    rec_expire_leases(r);
    pthread_mutex_lock(&r->lock);
    struct rec_device *d = rec_connected(r, id, rc);
    if (!d)
        pthread_mutex_unlock(&r->lock);
    return d;
}

int recorder_take(struct recorder *r, const char *id, const char *client,
                  struct recorder_lease *out)
{
    char label[RECORDER_LABEL_MAX];
    int rc;
    struct rec_device *d = lock_for_grant(r, id, client, label, &rc);
    if (!d)
        return rc;
    char token[JWT_MAX];
    struct lease_info li;
    rc = lease_take(r->leases, d->id, label, time(NULL), token, &li);
    if (rc == 0) {
        api_event_take(r->hub, d->id, li.client, li.id, li.expires, li.kept);
        fill_lease(r, out, token, &li);
    } else if (rc == -EBUSY) {
        fill_lease(r, out, "", &li);
    }
    pthread_mutex_unlock(&r->lock);
    return rc;
}

int recorder_renew(struct recorder *r, const char *id, const char *token,
                   struct recorder_lease *out)
{
    pthread_mutex_lock(&r->lock);
    int rc;
    struct rec_device *d = rec_connected(r, id, &rc);
    if (d) {
        char fresh[JWT_MAX];
        struct lease_info li;
        rc = lease_renew(r->leases, d->id, token, time(NULL), fresh, &li);
        if (rc == 0)
            fill_lease(r, out, fresh, &li);
    }
    pthread_mutex_unlock(&r->lock);
    return rc;
}

int recorder_takeover(struct recorder *r, const char *id, const char *client,
                      struct recorder_lease *out)
{
    char label[RECORDER_LABEL_MAX];
    int rc;
    struct rec_device *d = lock_for_grant(r, id, client, label, &rc);
    if (!d)
        return rc;
    char token[JWT_MAX], previous[64];
    struct lease_info li;
    rc = lease_takeover(r->leases, d->id, label, time(NULL), token, &li, previous);
    if (rc == 0) {
        if (previous[0]) {
            log_info("recorder", "%s: %s took over control from %s", d->id, li.client, previous);
            api_event_takeover(r->hub, d->id, li.client, li.id, previous, li.expires);
        } else {
            api_event_take(r->hub, d->id, li.client, li.id, li.expires, li.kept);
        }
        fill_lease(r, out, token, &li);
        if (out)
            rec_set_str(out->previous, sizeof(out->previous), previous);
    } else if (rc == -EBUSY) {
        fill_lease(r, out, "", &li);
    }
    pthread_mutex_unlock(&r->lock);
    return rc;
}

void recorder_taken_over_by(struct recorder *r, const char *id, char *out, size_t n)
{
    char by[64];
    lease_taken_over_by(r->leases, id, by);
    rec_set_str(out, n, by);
}

/* ---- presence: event streams bound to leases ------------------------------------------ */

struct recorder_presence {
    size_t n;
    struct { char device[64]; unsigned long serial; } bound[];
};

struct recorder_presence *recorder_presence_open(struct recorder *r, const char *const *tokens,
                                                 size_t n)
{
    size_t ndev = 0;
    pthread_mutex_lock(&r->lock);
    for (struct rec_device *d = r->devs; d; d = d->next)
        ndev++;
    struct recorder_presence *p = calloc(1, sizeof(*p) + ndev * sizeof(p->bound[0]));
    time_t now = time(NULL);
    for (struct rec_device *d = r->devs; p && d; d = d->next) {
        for (size_t i = 0; i < n; i++) {
            unsigned long serial;
            struct lease_info li;
            int rc = lease_bind(r->leases, d->id, tokens[i], now, &serial, &li);
            if (rc < 0)
                continue;
            rec_set_str(p->bound[p->n].device, sizeof(p->bound[0].device), d->id);
            p->bound[p->n++].serial = serial;
            if (rc == 1)
                api_event_presence(r->hub, d->id, li.client, li.id, 1, li.holder_seen,
                                   li.takeover_at);
            break;   /* one binding per device */
        }
    }
    pthread_mutex_unlock(&r->lock);
    if (p && p->n == 0) {
        free(p);
        p = NULL;
    }
    return p;
}

void recorder_presence_close(struct recorder *r, struct recorder_presence *p)
{
    if (!p || !r) {
        free(p);
        return;
    }
    pthread_mutex_lock(&r->lock);
    time_t now = time(NULL);
    for (size_t i = 0; i < p->n; i++) {
        struct lease_info li;
        if (lease_unbind(r->leases, p->bound[i].device, p->bound[i].serial, now, &li) == 1)
            api_event_presence(r->hub, p->bound[i].device, li.client, li.id, 0, li.holder_seen,
                               li.takeover_at);
    }
    pthread_mutex_unlock(&r->lock);
    free(p);
}

int recorder_release(struct recorder *r, const char *id, const char *token)
{
    pthread_mutex_lock(&r->lock);
    int rc;
    struct rec_device *d = rec_connected(r, id, &rc);
    if (d) {
        struct lease_info li;
        time_t now = time(NULL);
        lease_get(r->leases, d->id, now, &li);
        rc = lease_release(r->leases, d->id, token, now);
        if (rc == 0)
            api_event_release_lease(r->hub, d->id, li.client, li.id);
    }
    pthread_mutex_unlock(&r->lock);
    return rc;
}

/* ---- create / destroy -------------------------------------------------------------------------- */

int recorder_create(struct recorder **out, const struct server_config *cfg, struct event_hub *hub)
{
    if (!out || !cfg || !hub)
        return -EINVAL;
    struct recorder *r = calloc(1, sizeof(*r));
    if (!r)
        return -ENOMEM;
    r->cfg = cfg;
    r->hub = hub;
    pthread_mutex_init(&r->lock, NULL);
    pthread_cond_init(&r->idle, NULL);
    cond_init_monotonic(&r->tick_cond);
    r->last_status = time(NULL);

    uint8_t key[32];
    int rc = jwt_secret_load_or_create(cfg->state_dir, key);
    if (rc < 0)
        goto fail;
    rc = lease_mgr_create(&r->leases, key, cfg->lease_seconds);
    memset(key, 0, sizeof(key));
    if (rc < 0)
        goto fail;
    if (cfg->takeover_after_seconds)
        lease_set_takeover_after(r->leases, cfg->takeover_after_seconds);
    uint8_t rnd[8] = {0};
    if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
        log_warn("recorder", "no random bytes for the instance id: restarts look alike");
    for (int i = 0; i < 8; i++)
        snprintf(r->instance + 2 * i, 3, "%02x", rnd[i]);

    int forwards = cfg->forward_url[0] != 0;
    for (unsigned i = 0; i < cfg->n_devices; i++)
        forwards |= config_forward_url(cfg, cfg->devices[i].id)[0] != 0;
    struct forward_config fc = {.recorder = cfg->forward_recorder, .state_dir = cfg->state_dir,
                                .ca_file = cfg->forward_ca_file, .pin = cfg->forward_pin};
    if (forwards && (rc = forwarder_create(&r->fwd, &fc, hub)) < 0)
        goto fail;

    rc = take_mkdir_p(cfg->recordings);
    if (rc < 0) {
        log_err("recorder", "cannot create the recordings directory %s: %s", cfg->recordings,
                strerror(-rc));
        goto fail;
    }
    struct disk_watch_config dw = {.dir = cfg->recordings};
    rc = disk_watch_start(&r->disk, &dw);
    if (rc < 0)
        goto fail;
    if (!disk_watch_wait_first(r->disk, 2000))
        log_warn("recorder", "the free space of %s is not known yet: the disk does not answer",
                 cfg->recordings);
    /* Takes a crash or power cut left as .part become normal files again. */
    int repaired = flac_repair_dir(cfg->recordings);
    if (repaired > 0)
        log_info("recorder", "finalized %d unfinished take(s) in %s", repaired, cfg->recordings);
    forwarder_resume(r->fwd, cfg->recordings);   /* copies a crash or stop left unfinished */

    for (unsigned i = 0; i < cfg->n_devices; i++) {
        rc = registry_add_configured(r, &cfg->devices[i]);
        if (rc < 0)
            goto fail;
    }
    if (cfg->demo && !rec_find(r, "tone")) {
        struct device_config tone = {.id = "tone", .pcm = "tone"};
        rc = registry_add_configured(r, &tone);
        if (rc < 0)
            goto fail;
    }
    registry_start(r);
    rc = status_start_ticker(r);
    if (rc < 0)
        goto fail;
    *out = r;
    return 0;
fail:
    recorder_destroy(r);
    return rc;
}

void recorder_destroy(struct recorder *r)
{
    if (!r)
        return;
    registry_stop_hotplug(r);
    status_stop_ticker(r);

    for (struct rec_device *d = r->devs; d; d = d->next) {
        pthread_mutex_lock(&r->lock);
        rec_wait_idle(r, d);
        struct take *t = d->take;
        struct capture *cap = d->cap;
        d->take = NULL;
        d->cap = NULL;
        d->connected = 0;
        pthread_mutex_unlock(&r->lock);
        if (t) {
            struct take_status st;
            (void)takes_finish(r, d, t, 0, "shutdown", &st);
        }
        if (cap)
            capture_stop(cap);
    }
    struct rec_device *d = r->devs;
    while (d) {
        struct rec_device *n = d->next;
        free(d);
        d = n;
    }
    forwarder_destroy(r->fwd);
    disk_watch_stop(r->disk);
    lease_mgr_destroy(r->leases);
    pthread_cond_destroy(&r->tick_cond);
    pthread_cond_destroy(&r->idle);
    pthread_mutex_destroy(&r->lock);
    free(r);
}
