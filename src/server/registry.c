/*
 * registry: the recorder's devices. Configured [device] sections, the demo tone, and ALSA
 * cards the hotplug thread reports; each connected device has one continuous capture.
 * A device is never freed before recorder_destroy: one that goes away is kept as
 * disconnected. Locking: recorder_internal.h.
 */
#include "server/recorder_internal.h"

#include "common/log.h"
#include "server/api_events.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- sources ---------------------------------------------------------------------------- */

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
    if (d->src.kind == SOURCE_ALSA)   /* a card's PCM name may change between plug-ins */
        return audio_source_open_alsa(src, pcm, NULL, &d->want);
    return source_spec_open(&d->src, NULL, &d->want, src);
}

/* The capture thread's watchdog events: atomics only (capture.h: no lock, no I/O, no
 * allocation); the ticker reports them within a tick (status.c). */
static void on_capture_event(const struct capture_event *ev, void *arg)
{
    struct rec_device *d = arg;
    switch (ev->kind) {
    case CAPTURE_EV_STALLED:
        atomic_store(&d->stall_silent_ns, ev->duration_ns);
        atomic_store(&d->stall_start_ns, ev->realtime_ns - ev->duration_ns);
        break;
    case CAPTURE_EV_BACK:         /* the ticker polls the capture's counters */
        break;
    case CAPTURE_EV_TIMING:
        atomic_fetch_add(&d->timing_short, ev->frames);
        atomic_store(&d->timing_window_ns, ev->duration_ns);
        break;
    }
    atomic_fetch_or(&d->capture_news, 1u << ev->kind);
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
    struct capture_config cc = {.ring_seconds = r->cfg->preroll_seconds + 3, .meter_rate = 25,
                                .stall_ms = d->stall_ms, .on_event = on_capture_event,
                                .on_event_arg = d};   /* d outlives the capture */
    if (d->src.kind == SOURCE_FILE && !d->src.fopt.realtime) {
        cc.stall_ms = -1;            /* read as fast as it goes: no clock to watch */
        cc.timing_window_ms = -1;
    }
    struct capture *cap = NULL;
    atomic_store(&d->capture_news, 0);    /* nothing left from a previous capture */
    rc = capture_start(&cap, src, &cc);
    if (rc < 0) {
        log_warn("recorder", "%s: cannot start capturing: %s", d->id, strerror(-rc));
        return rc;
    }
    pthread_mutex_lock(&r->lock);
    d->cap = cap;
    d->connected = 1;
    d->meter_seq = 0;
    d->stalled = 0;
    pthread_mutex_unlock(&r->lock);
    log_info("recorder", "%s: capturing %s", d->id, capture_description(cap));
    return 0;
}

void registry_disconnect(struct recorder *r, struct rec_device *d, const char *why)
{
    pthread_mutex_lock(&r->lock);
    struct take *t = d->take;
    struct capture *cap = d->cap;
    d->take = NULL;
    pthread_mutex_unlock(&r->lock);

    log_info("recorder", "%s: %s", d->id, why);
    if (t) {
        struct take_status st;
        (void)takes_finish(r, d, t, 0, "device_gone", &st);
    }
    struct lease_info li;
    lease_get(r->leases, d->id, time(NULL), &li);
    lease_drop(r->leases, d->id);
    if (li.held)
        api_event_release(r->hub, d->id, li.client);
    pthread_mutex_lock(&r->lock);
    d->cap = NULL;             /* the ticker reads levels of busy devices too */
    pthread_mutex_unlock(&r->lock);
    if (cap)
        capture_stop(cap);     /* after the take: it reads this capture's ring */

    pthread_mutex_lock(&r->lock);
    d->connected = 0;
    d->stalled = 0;
    d->take_file[0] = 0;
    api_event_remove(r->hub, d->id);
    rec_set_idle(r, d);
    pthread_mutex_unlock(&r->lock);
}

/* ---- hotplug ----------------------------------------------------------------------------------- */

static int card_matches(const struct rec_device *d, const struct device_info *info)
{
    if (!d->configured || d->src.kind != SOURCE_ALSA)
        return 0;
    if (d->card_id[0])
        return strcasecmp(d->card_id, info->card_id) == 0;
    return d->card_index >= 0 && d->card_index == info->card;
}

/* A new hotplugged device at the head of the list (r->lock held). */
static struct rec_device *new_card_device(struct recorder *r, const char *id)
{
    struct rec_device *d = calloc(1, sizeof(*d));
    if (d) {
        snprintf(d->id, sizeof(d->id), "%s", id);
        d->next = r->devs;
        r->devs = d;
    }
    return d;
}

/* The device a card event is about, created for a new card (r->lock held); NULL if none. */
static struct rec_device *card_device(struct recorder *r, enum hotplug_event ev,
                                      const struct device_info *info)
{
    for (struct rec_device *x = r->devs; x; x = x->next)
        if (card_matches(x, info)) {
            if (info->name[0] && !x->named)
                snprintf(x->name, sizeof(x->name), "%s", info->name);
            return x;
        }
    struct rec_device *d = rec_find(r, info->id);
    if (d && (d->configured || (d->connected && strcmp(d->pcm, info->pcm) != 0))) {
        /* The card's id is taken by something else: make it distinct. */
        char alt[64];
        snprintf(alt, sizeof(alt), "%.50s-%d", info->id, info->card);
        d = rec_find(r, alt);
        if (!d && ev == HOTPLUG_ADD)
            d = new_card_device(r, alt);
    } else if (!d && ev == HOTPLUG_ADD) {
        d = new_card_device(r, info->id);
    }
    if (d && !d->configured) {
        d->card_index = -1;
        snprintf(d->pcm, sizeof(d->pcm), "%s", info->pcm);
        /* a fake card of a test tree may name a file source (devices.h, pirec-caps) */
        char err[160];
        if (source_spec_parse(d->pcm, 1, &d->src, err, sizeof(err)) < 0 ||
            d->src.kind == SOURCE_TONE)
            d->src.kind = SOURCE_ALSA;
        snprintf(d->name, sizeof(d->name), "%s", info->name[0] ? info->name : info->id);
    }
    return d;
}

static void on_hotplug(enum hotplug_event ev, const struct device_info *info, void *arg)
{
    struct recorder *r = arg;
    pthread_mutex_lock(&r->lock);
    struct rec_device *d = card_device(r, ev, info);
    if (!d) {
        pthread_mutex_unlock(&r->lock);
        return;
    }
    rec_wait_idle(r, d);
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
        registry_disconnect(r, d, "unplugged");
        return;
    }
    int rc = connect_device(r, d, pcm);
    pthread_mutex_lock(&r->lock);
    if (rc == 0)
        api_event_add(r->hub, d->id, d->name);
    else
        api_event_error(r->hub, d->id, "the device was plugged in but cannot be opened");
    rec_set_idle(r, d);
    pthread_mutex_unlock(&r->lock);
}

/* ---- configured devices ------------------------------------------------------------------------ */

int registry_add_configured(struct recorder *r, const struct device_config *dc)
{
    struct rec_device *d = calloc(1, sizeof(*d));
    if (!d)
        return -ENOMEM;
    snprintf(d->id, sizeof(d->id), "%s", dc->id);
    snprintf(d->pcm, sizeof(d->pcm), "%s", dc->pcm);
    d->configured = 1;
    d->want = dc->format;
    d->bits = dc->bits;
    d->stall_ms = dc->stall_ms;
    d->card_index = -1;
    char err[256];
    if (source_spec_parse(dc->pcm, 1, &d->src, err, sizeof(err)) < 0) {
        log_err("recorder", "[device %s]: pcm '%s': %s", dc->id, dc->pcm, err);
        free(d);
        return -EINVAL;
    }
    if (d->src.kind == SOURCE_TONE) {
        snprintf(d->name, sizeof(d->name), "Demo tone");
    } else if (d->src.kind == SOURCE_FILE) {
        snprintf(d->name, sizeof(d->name), "File %.100s", rec_base_name(d->src.name));
    } else {
        parse_card(d);
        snprintf(d->name, sizeof(d->name), "%s", dc->pcm);
    }
    if (dc->name[0]) {
        snprintf(d->name, sizeof(d->name), "%s", dc->name);
        d->named = 1;
    }
    /* Keep the configuration's order in the status. */
    struct rec_device **p = &r->devs;
    while (*p)
        p = &(*p)->next;
    *p = d;
    return 0;
}

void registry_start(struct recorder *r)
{
    for (struct rec_device *d = r->devs; d; d = d->next) {
        /* Cards named by a configured PCM are connected when hotplug reports them. */
        if (d->src.kind == SOURCE_ALSA && (d->card_id[0] || d->card_index >= 0))
            continue;
        d->busy = 1;
        if (connect_device(r, d, d->pcm) < 0)
            log_warn("recorder", "%s: not connected", d->id);
        d->busy = 0;
    }

    struct hotplug_config hc = {
        .proc_root = r->cfg->proc_asound,
        .rescan_ms = 2000,
        .use_udev = strcmp(r->cfg->proc_asound, "/proc/asound") == 0,
    };
    int rc = hotplug_start(&r->hotplug, &hc, on_hotplug, r);
    if (rc < 0) {
        log_warn("recorder", "the hotplug monitor did not start (%s): configured devices are "
                 "opened once, now", strerror(-rc));
        r->hotplug = NULL;
        for (struct rec_device *d = r->devs; d; d = d->next) {
            if (d->src.kind != SOURCE_ALSA || d->connected)
                continue;
            d->busy = 1;
            (void)connect_device(r, d, d->pcm);
            d->busy = 0;
        }
    }
}

void registry_stop_hotplug(struct recorder *r)
{
    if (r->hotplug)
        hotplug_stop(r->hotplug);
    r->hotplug = NULL;
}
