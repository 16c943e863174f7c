/*
 * recorder: the device registry, captures, takes, leases and the events about them.
 *
 * Locking: r->lock guards the device list and every field of a device; it is held only
 * for short things (lookups, lease calls, take_get_status, publishing to the hub). Slow
 * steps (take_start/take_stop with their file I/O, capture_start/stop, opening ALSA) run
 * without it while the device is marked `busy`: the ticker skips busy devices, other
 * requests get -EBUSY/-EALREADY or wait on r->idle (hotplug removal). Devices are never
 * freed before recorder_destroy (a removed one is kept as disconnected), so a pointer
 * found under the lock stays valid.
 *
 * Threads: HTTP threads call the public functions; the hotplug thread adds/removes cards;
 * the ticker thread (~40 ms) sends levels, expires leases and reaps ended takes and
 * vanished devices.
 */
#include "server/recorder.h"

#include "audio/capture.h"
#include "audio/devices.h"
#include "common/log.h"
#include "server/jwt.h"
#include "server/lease.h"
#include "store/flac_repair.h"
#include "store/naming.h"
#include "store/take.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <FLAC/metadata.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/timex.h>
#include <time.h>
#include <unistd.h>

#define TICK_MS 40
#define STATUS_EVERY_S 90

enum dev_kind { DEV_ALSA, DEV_TONE, DEV_FILE };

struct rec_device {
    struct rec_device *next;
    char id[64];
    char name[128];
    char pcm[96];             /* configured or reported PCM name */
    char card_id[64];         /* card a configured hw PCM names ("USB"), "" if none */
    int card_index;           /* card a configured "hw:N" names, -1 if none */
    int configured;
    enum dev_kind kind;
    struct audio_format want;
    unsigned bits;
    struct file_source_options fopt;
    char file_path[4096];

    int connected;
    int busy;                 /* a slow step runs without r->lock */
    struct capture *cap;
    struct take *take;
    char take_file[256];      /* final name of the current take file */
    char take_started[64];    /* ISO time */
    uint64_t meter_seq;
};

struct recorder {
    const struct server_config *cfg;
    struct event_hub *hub;
    struct lease_mgr *leases;
    pthread_mutex_t lock;
    pthread_cond_t idle;      /* a device stopped being busy */
    struct rec_device *devs;
    struct hotplug *hotplug;
    pthread_t ticker;
    int ticker_started;
    int stopping;             /* under lock */
    pthread_cond_t tick_cond;
    time_t last_status;
};

/* ---- small helpers -------------------------------------------------------------------- */

static void publish(struct recorder *r, const char *type, json_t *data, int is_volatile)
{
    char *txt = json_dumps(data, JSON_COMPACT);
    json_decref(data);
    if (!txt)
        return;
    int64_t id = event_hub_publish(r->hub, type, txt, is_volatile);
    if (id < 0 && id != -EPIPE)
        log_warn("recorder", "could not publish %s: %s", type, strerror((int)-id));
    free(txt);
}

static json_t *fail_answer(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static json_t *fail_answer(const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return json_pack("{s:b,s:s,s:s}", "state", 0, "token", "", "error", msg);
}

static void set_answer(json_t **answer, json_t *value)
{
    if (answer)
        *answer = value;
    else
        json_decref(value);
}

/* Copies with truncation (snprintf would make GCC warn about the long paths). */
static void set_str(char *dst, size_t n, const char *src)
{
    size_t l = strnlen(src, n - 1);
    memcpy(dst, src, l);
    dst[l] = 0;
}

static const char *base_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

static void iso_now(char *out, size_t n)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    take_iso_time(out, n, &ts);
}

static struct rec_device *find_dev(struct recorder *r, const char *id)
{
    if (!id)
        return NULL;
    for (struct rec_device *d = r->devs; d; d = d->next)
        if (strcmp(d->id, id) == 0)
            return d;
    return NULL;
}

static void wait_idle(struct recorder *r, struct rec_device *d)
{
    while (d->busy)
        pthread_cond_wait(&r->idle, &r->lock);
}

static void set_idle(struct recorder *r, struct rec_device *d)
{
    d->busy = 0;
    pthread_cond_broadcast(&r->idle);
}

/* Lease errors to an answer the page can show. */
static json_t *token_error(int rc, const char *id)
{
    if (rc == -ETIME)
        return fail_answer("the lease token for %s has expired: take the device again", id);
    return fail_answer("the token is not the current lease token for %s (released, renewed "
                       "or forged): take the device again", id);
}

/* ---- sources ---------------------------------------------------------------------------- */

/* "file:PATH" with optional "?realtime=1&loop=1&fail_at=N&stall_at=N&stall_ms=N" (tests and
 * demos: a WAV or raw file played as a device). */
static int parse_file_pcm(struct rec_device *d)
{
    const char *p = d->pcm + 5;
    const char *q = strchr(p, '?');
    size_t n = q ? (size_t)(q - p) : strlen(p);
    if (n == 0 || n >= sizeof(d->file_path))
        return -EINVAL;
    memcpy(d->file_path, p, n);
    d->file_path[n] = 0;
    memset(&d->fopt, 0, sizeof(d->fopt));
    d->fopt.realtime = 1;
    while (q && *q) {
        q++;
        char key[32];
        unsigned long long v;
        int used = 0;
        if (sscanf(q, "%31[a-z_]=%llu%n", key, &v, &used) != 2)
            return -EINVAL;
        if (strcmp(key, "realtime") == 0)
            d->fopt.realtime = v != 0;
        else if (strcmp(key, "loop") == 0)
            d->fopt.loop = v != 0;
        else if (strcmp(key, "fail_at") == 0)
            d->fopt.fail_at_frame = v;
        else if (strcmp(key, "stall_at") == 0)
            d->fopt.stall_at_frame = v;
        else if (strcmp(key, "stall_ms") == 0)
            d->fopt.stall_ms = (unsigned)v;
        else
            return -EINVAL;
        q += used;
        if (*q && *q != '&')
            return -EINVAL;
    }
    return 0;
}

/* Which card a configured PCM names: "hw:CARD=USB,DEV=0" -> "USB"; "hw:1" -> index 1. */
static void parse_card(struct rec_device *d)
{
    d->card_id[0] = 0;
    d->card_index = -1;
    const char *c = strstr(d->pcm, "CARD=");
    if (c) {
        c += 5;
        size_t n = strcspn(c, ",");
        if (n < sizeof(d->card_id)) {
            memcpy(d->card_id, c, n);
            d->card_id[n] = 0;
        }
        return;
    }
    const char *colon = strchr(d->pcm, ':');
    if (colon && isdigit((unsigned char)colon[1]))
        d->card_index = atoi(colon + 1);
}

static int open_source(struct rec_device *d, const char *pcm, struct audio_source **src)
{
    switch (d->kind) {
    case DEV_TONE: return audio_source_open_tone(src, &d->want);
    case DEV_FILE: return audio_source_open_file(src, d->file_path, &d->want, &d->fopt);
    case DEV_ALSA: return audio_source_open_alsa(src, pcm, NULL, &d->want);
    }
    return -EINVAL;
}

/* Opens the device's source and starts its capture (slow: no r->lock; d is busy). */
static int connect_device(struct recorder *r, struct rec_device *d, const char *pcm)
{
    struct audio_source *src = NULL;
    int rc = open_source(d, pcm, &src);
    if (rc < 0) {
        log_warn("recorder", "%s: cannot open %s: %s", d->id, pcm, strerror(-rc));
        return rc;
    }
    /* pre-roll + the encoder's scheduling: disk stalls go to the take's queue of encoded
     * blocks (store/take.h queue_bytes), which grows only while the disk stalls */
    struct capture_config cc = {.ring_seconds = r->cfg->preroll_seconds + 3, .meter_rate = 25};
    struct capture *cap = NULL;
    rc = capture_start(&cap, src, &cc);
    if (rc < 0) {
        log_warn("recorder", "%s: cannot start capturing: %s", d->id, strerror(-rc));
        return rc;
    }
    pthread_mutex_lock(&r->lock);
    d->cap = cap;
    d->connected = 1;
    d->meter_seq = 0;
    pthread_mutex_unlock(&r->lock);
    log_info("recorder", "%s: capturing %s", d->id, capture_description(cap));
    return 0;
}

/* ---- status ------------------------------------------------------------------------------ */

static json_t *device_json(struct recorder *r, struct rec_device *d, time_t now)
{
    struct lease_info li;
    lease_get(r->leases, d->id, now, &li);
    json_t *fmt = json_null();
    if (d->connected && d->cap) {
        const struct audio_format *f = capture_format(d->cap);
        fmt = json_pack("{s:s,s:i,s:i,s:i}", "sample", sample_format_name(f->sample), "rate",
                        (int)f->rate, "channels", (int)f->channels, "bits",
                        (int)(d->bits ? d->bits : sample_format_bits(f->sample)));
    }
    double elapsed = 0;
    if (d->take) {
        struct take_status st;
        take_get_status(d->take, &st);
        elapsed = st.seconds;
    }
    int recording = d->take != NULL || (d->busy && d->take_file[0]);
    return json_pack("{s:s,s:s,s:b,s:o,s:b,s:s,s:I,s:b,s:s,s:f}", "id", d->id, "name", d->name,
                     "connected", d->connected, "format", fmt, "taken", li.held, "holder",
                     li.held ? li.client : "", "expires", (json_int_t)(li.held ? li.expires : 0),
                     "recording", recording, "file", recording ? d->take_file : "",
                     "elapsed", elapsed);
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

json_t *recorder_status(struct recorder *r)
{
    time_t now = time(NULL);
    json_t *devs = json_array();
    json_t *st = json_object();
    struct audio_format fmt = {SF_S16_LE, 48000, 2};
    pthread_mutex_lock(&r->lock);
    for (struct rec_device *d = r->devs; d; d = d->next) {
        if (!d->configured && !d->connected)
            continue;   /* a hotplugged card that went away */
        json_t *dj = device_json(r, d, now);
        json_array_append_new(devs, dj);
    }
    (void)widest_format(r, &fmt);
    pthread_mutex_unlock(&r->lock);

    /* The original's clients read status as {"<id>":{"connected","taken","name"}}. */
    size_t i;
    json_t *dj;
    json_array_foreach(devs, i, dj) {
        const char *id = json_string_value(json_object_get(dj, "id"));
        if (strcmp(id, "devices") == 0 || strcmp(id, "disk") == 0 ||
            strcmp(id, "clock_synchronised") == 0 || strcmp(id, "server_time") == 0)
            continue;
        json_object_set_new(st, id, json_pack("{s:O,s:O,s:O}", "connected",
                                              json_object_get(dj, "connected"), "taken",
                                              json_object_get(dj, "taken"), "name",
                                              json_object_get(dj, "name")));
    }
    json_object_set_new(st, "devices", devs);

    uint64_t free_bytes = 0;
    double seconds_left = 0;
    if (disk_space(r->cfg->recordings, &fmt, &free_bytes, &seconds_left) < 0) {
        free_bytes = 0;
        seconds_left = 0;
    }
    json_object_set_new(st, "disk", json_pack("{s:I,s:f}", "free_bytes", (json_int_t)free_bytes,
                                              "seconds_left", seconds_left));
    struct timex tx;
    memset(&tx, 0, sizeof(tx));
    json_object_set_new(st, "clock_synchronised", json_boolean(adjtimex(&tx) != TIME_ERROR));
    char iso[64];
    iso_now(iso, sizeof(iso));
    json_object_set_new(st, "server_time", json_string(iso));
    return st;
}

/* ---- leases -------------------------------------------------------------------------------- */

static void on_lease_expired(const char *device, const char *client, void *arg)
{
    struct recorder *r = arg;
    log_info("recorder", "%s: the lease of %s ran out", device, client);
    publish(r, "expire", json_pack("{s:s,s:s}", "id", device, "holder", client), 0);
    publish(r, "release", json_pack("{s:s,s:s}", "id", device, "holder", client), 0);
}

static void expire_leases(struct recorder *r)
{
    (void)lease_expire(r->leases, time(NULL), on_lease_expired, r);
}

/* Finds a connected device or answers 404. Called with r->lock held. */
static struct rec_device *connected_dev(struct recorder *r, const char *id, json_t **answer)
{
    struct rec_device *d = find_dev(r, id);
    if (!d || !d->connected) {
        set_answer(answer, fail_answer(d ? "device %s is not connected" :
                                       "there is no device %s", id ? id : "(none)"));
        return NULL;
    }
    return d;
}

static json_t *lease_answer(const char *id, const char *token, const struct lease_info *li,
                            unsigned lease_seconds)
{
    return json_pack("{s:b,s:s,s:s,s:s,s:I,s:i}", "state", 1, "token", token, "id", id,
                     "holder", li->client, "expires", (json_int_t)li->expires,
                     "lease_seconds", (int)lease_seconds);
}

int recorder_take(struct recorder *r, const char *id, const char *client, json_t **answer)
{
    char label[64];
    size_t n = 0;
    /* The label ends up in events and the page: printable characters only. */
    for (const char *p = client ? client : ""; *p && n < sizeof(label) - 1; p++)
        if ((unsigned char)*p >= 0x20 && *p != 0x7f)
            label[n++] = *p;
    label[n] = 0;
    if (n == 0)
        snprintf(label, sizeof(label), "anonymous");

    expire_leases(r);   /* so that a lease that just ran out says so before a new take */
    pthread_mutex_lock(&r->lock);
    struct rec_device *d = connected_dev(r, id, answer);
    if (!d) {
        pthread_mutex_unlock(&r->lock);
        return -ENOENT;
    }
    char token[JWT_MAX];
    struct lease_info li;
    time_t now = time(NULL);
    int rc = lease_take(r->leases, d->id, label, now, token, &li);
    if (rc == 0) {
        publish(r, "take", json_pack("{s:s,s:s,s:I}", "id", d->id, "holder", li.client,
                                     "expires", (json_int_t)li.expires), 0);
        set_answer(answer, lease_answer(d->id, token, &li, r->cfg->lease_seconds));
    } else if (rc == -EBUSY) {
        json_t *a = fail_answer("%s is held by %s until %lld", d->id, li.client,
                                (long long)li.expires);
        json_object_set_new(a, "holder", json_string(li.client));
        json_object_set_new(a, "expires", json_integer(li.expires));
        set_answer(answer, a);
    } else {
        set_answer(answer, fail_answer("could not take %s: %s", d->id, strerror(-rc)));
    }
    pthread_mutex_unlock(&r->lock);
    return rc;
}

int recorder_renew(struct recorder *r, const char *id, const char *token, json_t **answer)
{
    pthread_mutex_lock(&r->lock);
    struct rec_device *d = connected_dev(r, id, answer);
    if (!d) {
        pthread_mutex_unlock(&r->lock);
        return -ENOENT;
    }
    char fresh[JWT_MAX];
    struct lease_info li;
    int rc = lease_renew(r->leases, d->id, token, time(NULL), fresh, &li);
    if (rc == 0)
        set_answer(answer, lease_answer(d->id, fresh, &li, r->cfg->lease_seconds));
    else
        set_answer(answer, token_error(rc, d->id));
    pthread_mutex_unlock(&r->lock);
    return rc;
}

int recorder_release(struct recorder *r, const char *id, const char *token, json_t **answer)
{
    pthread_mutex_lock(&r->lock);
    struct rec_device *d = connected_dev(r, id, answer);
    if (!d) {
        pthread_mutex_unlock(&r->lock);
        return -ENOENT;
    }
    struct lease_info li;
    time_t now = time(NULL);
    lease_get(r->leases, d->id, now, &li);
    int rc = lease_release(r->leases, d->id, token, now);
    if (rc == 0) {
        publish(r, "release", json_pack("{s:s,s:s}", "id", d->id, "holder", li.client), 0);
        set_answer(answer, json_pack("{s:b}", "state", 1));
    } else {
        set_answer(answer, token_error(rc, d->id));
    }
    pthread_mutex_unlock(&r->lock);
    return rc;
}

/* ---- takes ----------------------------------------------------------------------------------- */

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

static json_t *stop_json(const char *id, const struct take_status *st, const char *reason)
{
    json_t *j = json_pack("{s:s,s:s,s:f,s:I,s:I,s:s}", "id", id, "file", base_name(st->path),
                          "seconds", st->seconds, "bytes", (json_int_t)st->bytes,
                          "lost_frames", (json_int_t)st->lost_frames, "reason", reason);
    if (st->error)
        json_object_set_new(j, "error", json_string(strerror(-st->error)));
    return j;
}

/* Finalizes a take detached from its device (d busy, no r->lock) and publishes `stop`.
 * reason NULL: from the take's own state ("stopped" when by_user). */
static int finish_take(struct recorder *r, struct rec_device *d, struct take *t, int by_user,
                       const char *reason, struct take_status *st)
{
    memset(st, 0, sizeof(*st));
    int rc = take_stop(t, st);
    if (!reason)
        reason = reason_of(st->state, by_user);
    if (st->path[0] == 0)
        snprintf(st->path, sizeof(st->path), "%s", d->take_file);
    log_info("recorder", "%s: take %s ended (%s): %.1f s, %" PRIu64 " bytes, %" PRIu64
             " frames lost%s%s", d->id, base_name(st->path), reason, st->seconds,
             st->bytes, st->lost_frames, rc ? ", error: " : "", rc ? strerror(-rc) : "");
    publish(r, "stop", stop_json(d->id, st, reason), 0);
    return rc;
}

/* The connected device `id` if `token` is its current lease token (r->lock held); else NULL
 * with *rc (-ENOENT, -EACCES, -ETIME) and the answer set. */
static struct rec_device *controlled_dev(struct recorder *r, const char *id, const char *token,
                                         json_t **answer, int *rc)
{
    struct rec_device *d = connected_dev(r, id, answer);
    if (!d) {
        *rc = -ENOENT;
        return NULL;
    }
    *rc = lease_check(r->leases, d->id, token, time(NULL));
    if (*rc < 0) {
        set_answer(answer, token_error(*rc, d->id));
        return NULL;
    }
    return d;
}

int recorder_start(struct recorder *r, const char *id, const char *token, json_t **answer)
{
    pthread_mutex_lock(&r->lock);
    int rc;
    struct rec_device *d = controlled_dev(r, id, token, answer, &rc);
    if (!d) {
        pthread_mutex_unlock(&r->lock);
        return rc;
    }
    if (d->take || d->busy) {
        set_answer(answer, fail_answer(d->take ? "%s is already recording %s" :
                                       "%s is busy starting or stopping a take: try again",
                                       d->id, d->take_file));
        pthread_mutex_unlock(&r->lock);
        return -EALREADY;
    }
    d->busy = 1;
    struct capture *cap = d->cap;
    pthread_mutex_unlock(&r->lock);

    /* Pre-roll: start behind the write position by what the ring still safely holds. */
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
    uint64_t start = wpos - want;
    struct timespec t0;
    clock_gettime(CLOCK_REALTIME, &t0);
    int64_t back_ns = (int64_t)(want * 1000000000ull / f->rate);
    int64_t ns = (int64_t)t0.tv_sec * 1000000000LL + t0.tv_nsec - back_ns;
    t0.tv_sec = (time_t)(ns / 1000000000LL);
    t0.tv_nsec = (long)(ns % 1000000000LL);

    struct take_config tc = {
        .dir = r->cfg->recordings,
        .device_id = d->id,
        .name_pattern = r->cfg->name_pattern,
        .bits = d->bits,
        .flush_ms = r->cfg->flush_ms,
        .max_frames = (uint64_t)r->cfg->max_take_seconds * f->rate,
        .min_free_bytes = r->cfg->min_free_bytes,
        .start_time = t0,
    };
    struct take *t = NULL;
    rc = take_start(&t, cap, &tc, start);
    struct take_status st;
    if (rc == 0)
        take_get_status(t, &st);

    pthread_mutex_lock(&r->lock);
    if (rc == 0) {
        d->take = t;
        set_str(d->take_file, sizeof(d->take_file), base_name(st.path));
        take_iso_time(d->take_started, sizeof(d->take_started), &t0);
        publish(r, "record", json_pack("{s:s,s:s,s:s}", "id", d->id, "file", d->take_file,
                                       "started", d->take_started), 0);
        set_answer(answer, json_pack("{s:b,s:s,s:s}", "state", 1, "file", d->take_file,
                                     "started", d->take_started));
        log_info("recorder", "%s: recording %s (%.1f s pre-roll)", d->id, d->take_file,
                 (double)want / f->rate);
    } else if (rc == -ENOSPC) {
        set_answer(answer, fail_answer("the disk of %s is nearly full: free some space or "
                                       "delete old takes", r->cfg->recordings));
    } else {
        set_answer(answer, fail_answer("could not start recording %s in %s: %s", d->id,
                                       r->cfg->recordings, strerror(-rc)));
        log_err("recorder", "%s: cannot start a take in %s: %s", d->id, r->cfg->recordings,
                strerror(-rc));
    }
    set_idle(r, d);
    pthread_mutex_unlock(&r->lock);
    return rc;
}

int recorder_stop(struct recorder *r, const char *id, const char *token, json_t **answer)
{
    pthread_mutex_lock(&r->lock);
    int rc;
    struct rec_device *d = controlled_dev(r, id, token, answer, &rc);
    if (!d) {
        pthread_mutex_unlock(&r->lock);
        return rc;
    }
    if (!d->take || d->busy) {
        set_answer(answer, fail_answer("%s is not recording", d->id));
        pthread_mutex_unlock(&r->lock);
        return -EALREADY;
    }
    struct take *t = d->take;
    d->take = NULL;
    d->busy = 1;
    pthread_mutex_unlock(&r->lock);

    struct take_status st;
    rc = finish_take(r, d, t, 1, NULL, &st);

    pthread_mutex_lock(&r->lock);
    d->take_file[0] = 0;
    set_idle(r, d);
    pthread_mutex_unlock(&r->lock);
    if (rc < 0 && st.frames == 0) {
        set_answer(answer, fail_answer("the take of %s failed: %s", d->id, strerror(-rc)));
        return rc;
    }
    json_t *a = json_pack("{s:b,s:s,s:f,s:I,s:I}", "state", 1, "file", base_name(st.path),
                          "seconds", st.seconds, "bytes", (json_int_t)st.bytes, "lost_frames",
                          (json_int_t)st.lost_frames);
    if (rc < 0)
        json_object_set_new(a, "error", json_string(strerror(-rc)));
    set_answer(answer, a);
    return 0;
}

/* ---- device removal ----------------------------------------------------------------------- */

/* d is busy, r->lock not held: finalize its take, drop its lease, stop its capture. */
static void disconnect_device(struct recorder *r, struct rec_device *d, const char *why)
{
    pthread_mutex_lock(&r->lock);
    struct take *t = d->take;
    struct capture *cap = d->cap;
    d->take = NULL;
    pthread_mutex_unlock(&r->lock);

    log_info("recorder", "%s: %s", d->id, why);
    if (t) {
        struct take_status st;
        (void)finish_take(r, d, t, 0, "device_gone", &st);
    }
    struct lease_info li;
    lease_get(r->leases, d->id, time(NULL), &li);
    lease_drop(r->leases, d->id);
    if (li.held)
        publish(r, "release", json_pack("{s:s,s:s}", "id", d->id, "holder", li.client), 0);
    if (cap)
        capture_stop(cap);

    pthread_mutex_lock(&r->lock);
    d->cap = NULL;
    d->connected = 0;
    d->take_file[0] = 0;
    publish(r, "remove", json_pack("{s:s}", "id", d->id), 0);
    set_idle(r, d);
    pthread_mutex_unlock(&r->lock);
}

/* ---- the ticker -------------------------------------------------------------------------------- */

static void publish_level(struct recorder *r, struct rec_device *d)
{
    struct meter_snapshot m;
    capture_meter(d->cap, &m);
    if (m.seq == 0 || m.seq == d->meter_seq)
        return;
    d->meter_seq = m.seq;
    /* Built by hand: 25 a second per device, and `t` must keep its sub-ms digits. */
    char buf[160 + AUDIO_MAX_CHANNELS * 80];
    int n = snprintf(buf, sizeof(buf), "{\"id\":\"%s\",\"t\":%.3f,\"ch\":[", d->id,
                     (double)m.capture_ns / 1e6);
    for (unsigned c = 0; c < m.channels && c < AUDIO_MAX_CHANNELS && n > 0 &&
                         (size_t)n < sizeof(buf) - 80; c++)
        n += snprintf(buf + n, sizeof(buf) - (size_t)n,
                      "%s{\"peak\":%.1f,\"rms\":%.1f,\"hold\":%.1f,\"clip\":%" PRIu32 "}",
                      c ? "," : "", m.ch[c].peak_db, m.ch[c].rms_db, m.ch[c].hold_db,
                      m.ch[c].clips);
    if (n > 0 && (size_t)n < sizeof(buf) - 3) {
        memcpy(buf + n, "]}", 3);
        (void)event_hub_publish(r->hub, "level", buf, 1);
    }
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
                publish(r, "error", json_pack("{s:s,s:s}", "id", d->id, "message", why), 0);
            } else {
                snprintf(why, sizeof(why), "%s", cs == CAPTURE_ENDED ? "the source ended" :
                         "the device is gone");
            }
            d->busy = 1;
            pthread_mutex_unlock(&r->lock);
            disconnect_device(r, d, why);
            pthread_mutex_lock(&r->lock);
            return 1;
        }
        if (d->take) {
            struct take_status st;
            take_get_status(d->take, &st);
            if (st.state == TAKE_RUNNING) {
                set_str(d->take_file, sizeof(d->take_file), base_name(st.path));
                continue;
            }
            /* Ended by itself: limit, disk nearly full, write error, source end. */
            struct take *t = d->take;
            d->take = NULL;
            d->busy = 1;
            pthread_mutex_unlock(&r->lock);
            struct take_status fin;
            (void)finish_take(r, d, t, 0, NULL, &fin);
            pthread_mutex_lock(&r->lock);
            d->take_file[0] = 0;
            set_idle(r, d);
            return 1;
        }
    }
    return 0;
}

static void *ticker_main(void *arg)
{
    struct recorder *r = arg;
    pthread_mutex_lock(&r->lock);
    while (!r->stopping) {
        pthread_mutex_unlock(&r->lock);
        expire_leases(r);
        time_t now = time(NULL);
        if (now - r->last_status >= STATUS_EVERY_S) {
            r->last_status = now;
            publish(r, "status", recorder_status(r), 0);
        }
        pthread_mutex_lock(&r->lock);
        for (int guard = 0; guard < 64 && !r->stopping && tick_devices(r); guard++)
            ;
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_nsec += TICK_MS * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        if (!r->stopping)
            pthread_cond_timedwait(&r->tick_cond, &r->lock, &ts);
    }
    pthread_mutex_unlock(&r->lock);
    return NULL;
}

/* ---- hotplug ----------------------------------------------------------------------------------- */

static int card_matches(const struct rec_device *d, const struct device_info *info)
{
    if (!d->configured || d->kind != DEV_ALSA)
        return 0;
    if (d->card_id[0])
        return strcasecmp(d->card_id, info->card_id) == 0;
    return d->card_index >= 0 && d->card_index == info->card;
}

static void on_hotplug(enum hotplug_event ev, const struct device_info *info, void *arg)
{
    struct recorder *r = arg;
    pthread_mutex_lock(&r->lock);
    struct rec_device *d = NULL;
    for (struct rec_device *x = r->devs; x && !d; x = x->next)
        if (card_matches(x, info))
            d = x;
    if (!d) {
        d = find_dev(r, info->id);
        if (d && (d->configured || (d->connected && strcmp(d->pcm, info->pcm) != 0))) {
            /* The card's id is taken by something else: make it distinct. */
            char alt[64];
            snprintf(alt, sizeof(alt), "%.50s-%d", info->id, info->card);
            d = find_dev(r, alt);
            if (!d && ev == HOTPLUG_ADD) {
                d = calloc(1, sizeof(*d));
                if (d) {
                    snprintf(d->id, sizeof(d->id), "%s", alt);
                    d->next = r->devs;
                    r->devs = d;
                }
            }
        } else if (!d && ev == HOTPLUG_ADD) {
            d = calloc(1, sizeof(*d));
            if (d) {
                snprintf(d->id, sizeof(d->id), "%s", info->id);
                d->next = r->devs;
                r->devs = d;
            }
        }
        if (d && !d->configured) {
            d->kind = DEV_ALSA;
            d->card_index = -1;
            snprintf(d->pcm, sizeof(d->pcm), "%s", info->pcm);
            /* a fake card of a test tree may name a file source (devices.h, pirec-caps) */
            if (strncmp(d->pcm, "file:", 5) == 0)
                d->kind = parse_file_pcm(d) == 0 ? DEV_FILE : DEV_ALSA;
            snprintf(d->name, sizeof(d->name), "%s", info->name[0] ? info->name : info->id);
        }
    } else if (info->name[0]) {
        snprintf(d->name, sizeof(d->name), "%s", info->name);
    }
    if (!d) {
        pthread_mutex_unlock(&r->lock);
        return;
    }
    wait_idle(r, d);
    if (r->stopping || (ev == HOTPLUG_ADD && d->connected) ||
        (ev == HOTPLUG_REMOVE && !d->connected)) {
        pthread_mutex_unlock(&r->lock);
        return;
    }
    d->busy = 1;
    char pcm[96];
    /* A configured "hw:CARD=X" PCM is opened as configured; otherwise what was found. */
    snprintf(pcm, sizeof(pcm), "%s", d->configured ? d->pcm : info->pcm);
    pthread_mutex_unlock(&r->lock);

    if (ev == HOTPLUG_REMOVE) {
        disconnect_device(r, d, "unplugged");
        return;
    }
    int rc = connect_device(r, d, pcm);
    pthread_mutex_lock(&r->lock);
    if (rc == 0)
        publish(r, "add", json_pack("{s:s,s:s}", "id", d->id, "name", d->name), 0);
    else
        publish(r, "error", json_pack("{s:s,s:s}", "id", d->id, "message",
                                      "the device was plugged in but cannot be opened"), 0);
    set_idle(r, d);
    pthread_mutex_unlock(&r->lock);
}

/* ---- create / destroy -------------------------------------------------------------------------- */

static struct rec_device *add_configured(struct recorder *r, const struct device_config *dc)
{
    struct rec_device *d = calloc(1, sizeof(*d));
    if (!d)
        return NULL;
    snprintf(d->id, sizeof(d->id), "%s", dc->id);
    snprintf(d->pcm, sizeof(d->pcm), "%s", dc->pcm);
    d->configured = 1;
    d->want = dc->format;
    d->bits = dc->bits;
    d->card_index = -1;
    if (strcmp(dc->pcm, "tone") == 0) {
        d->kind = DEV_TONE;
        snprintf(d->name, sizeof(d->name), "Demo tone");
    } else if (strncmp(dc->pcm, "file:", 5) == 0) {
        d->kind = DEV_FILE;
        if (parse_file_pcm(d) < 0) {
            log_err("recorder", "[device %s]: pcm '%s' is not file:PATH[?realtime=0|1&loop=0|1"
                    "&fail_at=N&stall_at=N&stall_ms=N]", dc->id, dc->pcm);
            free(d);
            return NULL;
        }
        snprintf(d->name, sizeof(d->name), "File %.100s", base_name(d->file_path));
    } else {
        d->kind = DEV_ALSA;
        parse_card(d);
        snprintf(d->name, sizeof(d->name), "%s", dc->pcm);
    }
    /* Keep the configuration's order in the status. */
    struct rec_device **p = &r->devs;
    while (*p)
        p = &(*p)->next;
    *p = d;
    return d;
}

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
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&r->tick_cond, &ca);
    pthread_condattr_destroy(&ca);
    r->last_status = time(NULL);

    uint8_t key[32];
    int rc = jwt_secret_load_or_create(cfg->state_dir, key);
    if (rc < 0)
        goto fail;
    rc = lease_mgr_create(&r->leases, key, cfg->lease_seconds);
    memset(key, 0, sizeof(key));
    if (rc < 0)
        goto fail;

    rc = take_mkdir_p(cfg->recordings);
    if (rc < 0) {
        log_err("recorder", "cannot create the recordings directory %s: %s", cfg->recordings,
                strerror(-rc));
        goto fail;
    }
    /* Takes a crash or power cut left as .part become normal files again. */
    int repaired = flac_repair_dir(cfg->recordings);
    if (repaired > 0)
        log_info("recorder", "finalized %d unfinished take(s) in %s", repaired, cfg->recordings);

    for (unsigned i = 0; i < cfg->n_devices; i++) {
        if (!add_configured(r, &cfg->devices[i])) {
            rc = -EINVAL;
            goto fail;
        }
    }
    if (cfg->demo && !find_dev(r, "tone")) {
        struct device_config tone = {.id = "tone", .pcm = "tone"};
        if (!add_configured(r, &tone)) {
            rc = -ENOMEM;
            goto fail;
        }
    }
    for (struct rec_device *d = r->devs; d; d = d->next) {
        /* Cards named by a configured PCM are connected when hotplug reports them. */
        if (d->kind == DEV_ALSA && (d->card_id[0] || d->card_index >= 0))
            continue;
        d->busy = 1;
        if (connect_device(r, d, d->pcm) < 0)
            log_warn("recorder", "%s: not connected", d->id);
        d->busy = 0;
    }

    struct hotplug_config hc = {
        .proc_root = cfg->proc_asound,
        .rescan_ms = 2000,
        .use_udev = strcmp(cfg->proc_asound, "/proc/asound") == 0,
    };
    rc = hotplug_start(&r->hotplug, &hc, on_hotplug, r);
    if (rc < 0) {
        log_warn("recorder", "the hotplug monitor did not start (%s): configured devices are "
                 "opened once, now", strerror(-rc));
        r->hotplug = NULL;
        for (struct rec_device *d = r->devs; d; d = d->next) {
            if (d->kind != DEV_ALSA || d->connected)
                continue;
            d->busy = 1;
            (void)connect_device(r, d, d->pcm);
            d->busy = 0;
        }
    }
    rc = pthread_create(&r->ticker, NULL, ticker_main, r);
    if (rc) {
        rc = -rc;
        goto fail;
    }
    r->ticker_started = 1;
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
    if (r->hotplug)
        hotplug_stop(r->hotplug);
    r->hotplug = NULL;
    pthread_mutex_lock(&r->lock);
    r->stopping = 1;
    pthread_cond_broadcast(&r->tick_cond);
    pthread_mutex_unlock(&r->lock);
    if (r->ticker_started)
        pthread_join(r->ticker, NULL);

    for (struct rec_device *d = r->devs; d; d = d->next) {
        pthread_mutex_lock(&r->lock);
        wait_idle(r, d);
        struct take *t = d->take;
        struct capture *cap = d->cap;
        d->take = NULL;
        d->cap = NULL;
        d->connected = 0;
        pthread_mutex_unlock(&r->lock);
        if (t) {
            struct take_status st;
            (void)finish_take(r, d, t, 0, "shutdown", &st);
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
    lease_mgr_destroy(r->leases);
    pthread_cond_destroy(&r->tick_cond);
    pthread_cond_destroy(&r->idle);
    pthread_mutex_destroy(&r->lock);
    free(r);
}

/* ---- recordings on disk ------------------------------------------------------------------------ */

/* Plain names only: no '/', no leading '.', printable, ending in .flac. */
static int valid_recording_name(const char *name)
{
    size_t n = name ? strlen(name) : 0;
    if (n < 6 || n > 255 || name[0] == '.' || strcmp(name + n - 5, ".flac") != 0)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (name[i] == '/' || (unsigned char)name[i] < 0x20 || name[i] == 0x7f)
            return 0;
    return 1;
}

static int open_dir(struct recorder *r)
{
    return open(r->cfg->recordings, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
}

static const char *comment_value(const FLAC__StreamMetadata *tags, const char *key, char *out,
                                 size_t n)
{
    out[0] = 0;
    if (!tags)
        return out;
    size_t kl = strlen(key);
    for (unsigned i = 0; i < tags->data.vorbis_comment.num_comments; i++) {
        const FLAC__StreamMetadata_VorbisComment_Entry *e = &tags->data.vorbis_comment.comments[i];
        if (e->length > kl && strncasecmp((const char *)e->entry, key, kl) == 0 &&
            e->entry[kl] == '=') {
            snprintf(out, n, "%.*s", (int)(e->length - kl - 1), (const char *)e->entry + kl + 1);
            break;
        }
    }
    return out;
}

struct rec_entry {
    json_t *obj;
    double sort_key;
};

static int cmp_entry(const void *a, const void *b)
{
    double x = ((const struct rec_entry *)a)->sort_key, y = ((const struct rec_entry *)b)->sort_key;
    return x < y ? 1 : x > y ? -1 : 0;
}

static json_t *describe_file(const char *dir, const char *fname, const struct stat *st)
{
    size_t n = strlen(fname);
    int complete = !(n > 5 && strcmp(fname + n - 5, ".part") == 0);
    char path[4096 + 300], name[300];
    if (snprintf(path, sizeof(path), "%s/%s", dir, fname) >= (int)sizeof(path))
        return NULL; /* a truncated path would describe another file */
    snprintf(name, sizeof(name), "%.*s", (int)(complete ? n : n - 5), fname);

    FLAC__StreamMetadata si;
    unsigned rate = 0, channels = 0, bits = 0;
    double seconds = 0;
    /* A .part has its STREAMINFO refreshed every flush; it may also not be readable yet. */
    if (FLAC__metadata_get_streaminfo(path, &si)) {
        rate = si.data.stream_info.sample_rate;
        channels = si.data.stream_info.channels;
        bits = si.data.stream_info.bits_per_sample;
        if (rate)
            seconds = (double)si.data.stream_info.total_samples / rate;
    }
    FLAC__StreamMetadata *tags = NULL;
    if (!FLAC__metadata_get_tags(path, &tags))
        tags = NULL;
    char device[128], started[64];
    comment_value(tags, "DEVICE", device, sizeof(device));
    comment_value(tags, "DATE", started, sizeof(started));
    if (tags)
        FLAC__metadata_object_delete(tags);
    if (!started[0]) {
        struct timespec ts = {st->st_mtime - (time_t)seconds, 0};
        take_iso_time(started, sizeof(started), &ts);
    }
    return json_pack("{s:s,s:s,s:s,s:f,s:I,s:s,s:i,s:i,s:i,s:b}", "name", name, "device", device,
                     "started", started, "seconds", seconds, "bytes", (json_int_t)st->st_size,
                     "format", "FLAC", "rate", (int)rate, "channels", (int)channels, "bits",
                     (int)bits, "complete", complete);
}

json_t *recorder_list_recordings(struct recorder *r)
{
    json_t *arr = json_array();
    int dfd = open_dir(r);
    DIR *dir = dfd >= 0 ? fdopendir(dfd) : NULL;
    if (!dir) {
        if (dfd >= 0)
            close(dfd);
        return json_pack("{s:o}", "recordings", arr);
    }
    struct rec_entry *list = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(dir))) {
        size_t l = strlen(e->d_name);
        int is_flac = l > 5 && strcmp(e->d_name + l - 5, ".flac") == 0;
        int is_part = l > 10 && strcmp(e->d_name + l - 10, ".flac.part") == 0;
        if (e->d_name[0] == '.' || (!is_flac && !is_part))
            continue;
        struct stat st;
        if (fstatat(dirfd(dir), e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode))
            continue;
        if (n == cap) {
            size_t nc = cap ? cap * 2 : 32;
            void *p = realloc(list, nc * sizeof(*list));
            if (!p)
                break;
            list = p;
            cap = nc;
        }
        json_t *obj = describe_file(r->cfg->recordings, e->d_name, &st);
        if (!obj)
            continue;
        list[n].obj = obj;
        list[n].sort_key = (double)st.st_mtime - json_real_value(json_object_get(obj, "seconds"));
        n++;
    }
    closedir(dir);
    if (n)
        qsort(list, n, sizeof(*list), cmp_entry);
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, list[i].obj);
    free(list);
    return json_pack("{s:o}", "recordings", arr);
}

int recorder_open_recording(struct recorder *r, const char *name, int *fd, struct stat *st)
{
    if (!valid_recording_name(name))
        return -EINVAL;
    int dfd = open_dir(r);
    if (dfd < 0)
        return -ENOENT;
    int f = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    int err = errno;
    close(dfd);
    if (f < 0)
        return err == ELOOP || err == ENOENT || err == ENOTDIR ? -ENOENT : -err;
    struct stat s;
    if (fstat(f, &s) < 0 || !S_ISREG(s.st_mode)) {
        close(f);
        return -ENOENT;
    }
    /* O_NONBLOCK only guarded the open against a FIFO planted under a .flac name. */
    fcntl(f, F_SETFL, fcntl(f, F_GETFL) & ~O_NONBLOCK);
    *fd = f;
    if (st)
        *st = s;
    return 0;
}

int recorder_delete_recording(struct recorder *r, const char *name, const char *token)
{
    if (!token || !*token)
        return -EACCES;
    /* A valid current lease token of any device. */
    int rc = -EACCES;
    time_t now = time(NULL);
    pthread_mutex_lock(&r->lock);
    for (struct rec_device *d = r->devs; d; d = d->next) {
        int c = lease_check(r->leases, d->id, token, now);
        if (c == 0) {
            rc = 0;
            break;
        }
        if (c == -ETIME)
            rc = -ETIME;
    }
    int writing = 0;
    if (rc == 0 && valid_recording_name(name))
        for (struct rec_device *d = r->devs; d; d = d->next)
            if ((d->take || d->busy) && strcmp(d->take_file, name) == 0)
                writing = 1;
    pthread_mutex_unlock(&r->lock);
    if (rc < 0)
        return rc;
    if (!valid_recording_name(name))
        return -EINVAL;
    if (writing)
        return -EBUSY;
    int dfd = open_dir(r);
    if (dfd < 0)
        return -ENOENT;
    char part[300];
    snprintf(part, sizeof(part), "%s.part", name);
    struct stat st;
    if (fstatat(dfd, part, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
        fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
        close(dfd);
        return -EBUSY;
    }
    if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode)) {
        close(dfd);
        return -ENOENT;
    }
    rc = unlinkat(dfd, name, 0) < 0 ? -errno : 0;
    if (rc == 0)
        fsync(dfd);
    close(dfd);
    if (rc == 0)
        log_info("recorder", "deleted %s", name);
    return rc;
}
