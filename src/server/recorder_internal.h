/*
 * recorder_internal: what the files of the recorder core share (recorder.c, registry.c,
 * takes.c, status.c, library.c). Not for the HTTP or API layer: they see recorder.h only.
 *
 * Locking: r->lock guards the device list and every field of a device; it is held only
 * for short things (lookups, lease calls, take_get_status, publishing to the hub). Slow
 * steps (take_start/take_stop with their file I/O, capture_start/stop, opening ALSA) run
 * without it while the device is marked `busy`: the ticker skips busy devices, other
 * requests get -EBUSY or wait on r->idle (hotplug removal, shutdown). Devices are never
 * freed before recorder_destroy (a removed one is kept as disconnected), so a pointer
 * found under the lock stays valid. Lock order: recorder -> lease -> hub.
 */
#ifndef PIREC_SERVER_RECORDER_INTERNAL_H
#define PIREC_SERVER_RECORDER_INTERNAL_H

#include "audio/capture.h"
#include "audio/devices.h"
#include "audio/source.h"
#include "audio/source_spec.h"
#include "server/lease.h"
#include "server/peaks.h"
#include "server/disk_watch.h"
#include "server/forward.h"
#include "server/recorder.h"
#include "server/workers.h"
#include "store/take.h"

#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

struct rec_device {
    struct rec_device *next;
    char id[64];
    char name[128];
    char pcm[96];             /* configured or reported PCM name */
    char card_id[64];         /* card a configured hw PCM names ("USB"), "" if none */
    int card_index;           /* card a configured "hw:N" names, -1 if none */
    int configured;
    int named;                /* the configuration's `name =`: hotplug keeps it */
    struct source_spec src;   /* what `pcm` names (audio/source_spec.h); a hotplugged card:
                                 SOURCE_ALSA, opened by its current PCM name */
    struct audio_format want;
    unsigned bits;

    int connected;
    int busy;                 /* a slow step runs without r->lock */
    struct capture *cap;
    struct take *take;
    char take_file[256];      /* final name of the current take file */
    char take_started[64];    /* ISO time */
    uint64_t take_start;      /* ring position of the take's first frame */
    double take_preroll;      /* seconds of pre-roll it began with */
    struct take_peaks *peaks; /* its waveform overview, fed by the ticker (NULL: none) */
    struct forward_session *fwd;  /* the take's link to r->fwd (NULL: not forwarded) */
    char session[24];         /* record-all session of the running take, "" if none */
    uint64_t meter_seq;

    /* The capture watchdog (docs/server.md "A device that goes silent"). The capture
     * thread's on_event only sets these atomics; the ticker reads and clears them. */
    int stall_ms;                      /* capture_config.stall_ms: 0 auto, -1 off */
    _Atomic uint32_t capture_news;     /* 1u << enum capture_event_kind, since the last tick */
    _Atomic int64_t stall_start_ns;    /* STALLED: CLOCK_REALTIME of the last frame */
    _Atomic int64_t stall_silent_ns;   /* STALLED: silence when it was noticed */
    _Atomic uint64_t timing_short;     /* TIMING: missing frames since the last tick */
    _Atomic int64_t timing_window_ns;
    int stalled;                       /* under r->lock: the ticker reported the stall */
    time_t stalled_since;              /* epoch s of the last frame before the stall */
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
    pthread_cond_t tick_cond; /* CLOCK_MONOTONIC */
    time_t last_status;
    struct workers *slow;     /* finalizing and disconnecting for the ticker */
    struct forwarder *fwd;    /* NULL: no device forwards */
    struct disk_watch *disk;  /* free space of cfg->recordings, probed off every answering thread */
    char instance[17];        /* random hex, new at every start (restarts are recognisable) */
    double clock_offset;      /* under lock: seconds a client's clock is ahead (for naming) */
    char clock_source[64];    /* under lock: who set it, "" = the system's clock */
};

/* ---- recorder.c: shared helpers (r->lock held where it says so) ---- */
struct rec_device *rec_find(struct recorder *r, const char *id);          /* lock held */
/* The connected device `id`: NULL and *rc = -ENOENT (unknown) / -ENODEV (not connected). */
struct rec_device *rec_connected(struct recorder *r, const char *id, int *rc);  /* lock held */
/* The connected device `id` whose current lease token is `token`; NULL and *rc. */
struct rec_device *rec_controlled(struct recorder *r, const char *id, const char *token,
                                  int *rc);                                   /* lock held */
void rec_wait_idle(struct recorder *r, struct rec_device *d);               /* lock held */
/* A current lease token of any device: 0, -EACCES, -ETIME, -EOWNERDEAD; *holder = its
 * client (lock held). */
int rec_any_lease(struct recorder *r, const char *token, time_t now, char *holder, size_t n);
/* Is the system clock synchronised (NTP)? PIREC_TEST_CLOCK=synced|unsynced overrides it for
 * the tests. No lock. */
int rec_clock_synchronised(void);
/* t shifted by the client's clock offset (/api/clock), for names and `started` (lock held). */
struct timespec rec_clock_shift(const struct recorder *r, struct timespec t);
void rec_set_idle(struct recorder *r, struct rec_device *d);                /* lock held */
void rec_expire_leases(struct recorder *r);                                 /* no lock */
/* Copies with truncation (snprintf would make GCC warn about the long paths). */
void rec_set_str(char *dst, size_t n, const char *src);
const char *rec_base_name(const char *path);

/* The running take's position in seconds: frames captured into it (pre-roll included) /
 * rate, what the file will hold; -1 when d records nothing (lock held). */
double rec_take_pos(const struct rec_device *d);

/* ---- registry.c: devices, sources, hotplug ---- */
int  registry_add_configured(struct recorder *r, const struct device_config *dc);
/* Opens the configured devices that do not wait for a card, then starts hotplug. */
void registry_start(struct recorder *r);
void registry_stop_hotplug(struct recorder *r);
/* d busy, no lock: finalize its take, drop its lease, stop its capture, publish. */
void registry_disconnect(struct recorder *r, struct rec_device *d, const char *why);

/* ---- takes.c ---- */
/* Finalizes a take detached from its device (d busy, no r->lock) and publishes `stop`.
 * reason NULL: from the take's own state ("stopped" when by_user). */
int takes_finish(struct recorder *r, struct rec_device *d, struct take *t, int by_user,
                 const char *reason, struct take_status *st);
/* The same, ending at ring position stop_pos (UINT64_MAX: now). */
int takes_finish_at(struct recorder *r, struct rec_device *d, struct take *t, int by_user,
                    const char *reason, uint64_t stop_pos, struct take_status *st);
/* Starts d's take at ring position `start` whose first frame is at wall time t0 (d busy,
 * no r->lock; marks it idle again), with extra Vorbis comments. */
int takes_begin(struct recorder *r, struct rec_device *d, struct capture *cap, uint64_t start,
                struct timespec t0, const char *const *extra, size_t n_extra,
                struct recorder_take_info *out);

/* ---- library.c ---- */
/* The recordings-list object of the finished take file `name` (no lock). 0 or -errno. */
int library_describe(struct recorder *r, const char *name, struct recording_info *o);

/* ---- status.c: the ticker ---- */
int  status_start_ticker(struct recorder *r);
void status_stop_ticker(struct recorder *r);

#endif
