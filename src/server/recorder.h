/*
 * recorder: the core of `pirec serve`, everything but HTTP and JSON.
 *
 * It keeps the device registry (configured devices, hotplugged ALSA cards, the demo tone;
 * registry.c), one continuous capture per connected device (so meters never stop and
 * pre-roll is always there), at most one take per device (takes.c), the leases
 * (recorder.c), the status and its ticker (status.c) and the recordings directory
 * (library.c). Every event of docs/api.md is published to the hub through api_events.h.
 * A ticker thread publishes `level` ~25/s per device, enforces lease expiry on its own
 * (`expire` + `release`), notices takes that ended by themselves (limit, disk full,
 * device gone: `stop`), reports what the capture watchdog saw (a stalled device: its take
 * finalized, `stop` device_stalled + `error`; `back`; a loss of timing: `error`), and
 * sends `status` every 90 s.
 *
 * The functions below return C results: 0 or a negative errno, and fill the caller's
 * struct. The API layer (api.c) turns them into status codes, JSON and prose.
 * Errno meanings: -ENOENT no such device / no such recording; -ENODEV a known device that
 * is not connected; -EBUSY held by another client (take), a start or stop of that device
 * under way, or a recording still being written (delete); -EALREADY already recording
 * (start) / not recording (stop); -EACCES bad, forged, other-device or superseded token,
 * -ETIME expired token; -EINVAL bad name; -ENOSPC disk nearly full; -ENOLINK the device is
 * stalled (start); others: failures.
 *
 * Threads: every function is thread-safe and may be called from any thread. Those that
 * touch the disk (start, stop: finalizing with fsync; list; delete) can block for as long
 * as the disk stalls: the HTTP layer calls them on its worker threads.
 * Ownership: the recorder borrows cfg and hub, which must outlive recorder_destroy().
 */
#ifndef PIREC_SERVER_RECORDER_H
#define PIREC_SERVER_RECORDER_H

#include "server/config.h"
#include "server/events.h"
#include "server/jwt.h"
#include "store/take.h"

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <time.h>

#define RECORDER_LABEL_MAX 64      /* client labels: at most 63 bytes of UTF-8 */

struct recorder;

/* Starts hotplug, captures and the ticker. */
int  recorder_create(struct recorder **out, const struct server_config *cfg, struct event_hub *hub);
/* Finalizes running takes (each gets `stop`), stops captures and threads, frees. */
void recorder_destroy(struct recorder *r);

/* A lease: granted (token set), or the current holder's when take answers -EBUSY
 * (token empty). */
struct recorder_lease {
    char token[JWT_MAX];
    char holder[RECORDER_LABEL_MAX];
    time_t expires;
    unsigned lease_seconds;
    char lease[16];            /* the lease's name ("L17"), stable across renewals */
    int kept_by_take;          /* a running take keeps it: it does not expire meanwhile */
    int present;               /* -EBUSY: the holder is connected or was seen lately */
    time_t takeover_at;        /* -EBUSY: earliest take-over (0 while it is connected) */
    char previous[RECORDER_LABEL_MAX];   /* takeover: the holder replaced, "" if none */
};

/* client: any bytes; kept as printable UTF-8 cut on a character boundary, "anonymous"
 * when nothing is left. */
int recorder_take(struct recorder *r, const char *id, const char *client,
                  struct recorder_lease *out);
int recorder_renew(struct recorder *r, const char *id, const char *token,
                   struct recorder_lease *out);
int recorder_release(struct recorder *r, const char *id, const char *token);
/* Takes the device from a holder who is gone (docs/api.md "Take-over"): 0 (out->previous
 * names the old holder, "" when the device was free), -EBUSY while the holder is present.
 * Tokens of the replaced lease answer -EOWNERDEAD afterwards. */
int recorder_takeover(struct recorder *r, const char *id, const char *client,
                      struct recorder_lease *out);
/* The tablet's time for naming takes while the system clock is not synchronised
 * (docs/api.md "/api/clock"): now_ms is the client's UNIX time in ms; token a current lease
 * token of any device. 0 (out filled), -EACCES/-ETIME/-EOWNERDEAD, -EALREADY when the clock
 * is synchronised (never overrides NTP), -EINVAL. */
struct recorder_clock {
    double offset;             /* seconds added to the system clock for names */
    char source[RECORDER_LABEL_MAX];
    char server_time[64];      /* ISO, milliseconds, the corrected time */
};
int recorder_set_clock(struct recorder *r, const char *token, double now_ms,
                       struct recorder_clock *out);
/* Who took over from the lease of an -EOWNERDEAD token ("" if nobody). */
void recorder_taken_over_by(struct recorder *r, const char *id, char *out, size_t n);

/* Presence: an event stream opened with lease tokens binds to their leases while it is
 * open (the holder is "connected": no take-over). NULL when no token is current. */
struct recorder_presence;
struct recorder_presence *recorder_presence_open(struct recorder *r, const char *const *tokens,
                                                 size_t n);
/* r NULL (the recorder is gone, shutting down): only frees p. */
void recorder_presence_close(struct recorder *r, struct recorder_presence *p);

struct recorder_take_info {
    char file[256];            /* final name of the take file, no directory */
    char started[64];          /* ISO time of its first frame (pre-roll included) */
    double silent_seconds;     /* -ENOLINK: how long the device has delivered nothing */
    double preroll;            /* seconds of pre-roll granted (less if the ring held less) */
    double pos;                /* the take's length now, pre-roll included */
};
/* out->file names the running take on -EALREADY. -ENOLINK: the device is stalled (no
 * audio; its capture is being reopened): a take starts once it is back. */
int recorder_start(struct recorder *r, const char *id, const char *token,
                   struct recorder_take_info *out);
/* Record all: one take on every connected device that is idle and not held by another
 * client, all starting at the same capture instant (each capture's own timestamps;
 * the measured offset of each first frame is in its file's comments), with one session
 * id; stop_all ends every take of a session at one capture instant. token: a current
 * lease token of any device (-EACCES/-ETIME). start_all: -ENODEV when no device could
 * start; -EALREADY when a session is recording. stop_all: -EALREADY when none is. */
#define RECORDER_ALL_MAX 32
struct recorder_all_device {
    char id[64];
    char file[256];
    int error;                 /* 0, or why this device did not start / stop cleanly */
    int64_t offset_us;         /* first frame's capture time minus the session's instant */
    double seconds;            /* stop_all: the take's length */
};
struct recorder_all_info {
    char session[24];
    char started[64];          /* ISO time (ms, UTC) of the session's first frame */
    struct recorder_all_device dev[RECORDER_ALL_MAX];
    size_t n;
};
int recorder_start_all(struct recorder *r, const char *token, struct recorder_all_info *out);
int recorder_stop_all(struct recorder *r, const char *token, struct recorder_all_info *out);

/* 0 when the take was finalized with audio (out->error may still say what went wrong);
 * a take that failed with nothing recorded returns its error. */
int recorder_stop(struct recorder *r, const char *id, const char *token,
                  struct take_status *out);

struct recorder_device_status {
    char id[64];
    char name[128];
    int connected;
    int has_format;            /* connected and capturing: format and bits are valid */
    struct audio_format format;
    unsigned bits;             /* stored depth */
    int taken;
    char holder[RECORDER_LABEL_MAX];
    time_t expires;
    char lease[16];            /* "" when free */
    int kept_by_take;
    time_t holder_seen;        /* last sign of the holder (now while connected) */
    time_t takeover_at;        /* earliest take-over; 0 while connected or free */
    int recording;
    char file[256];
    double elapsed;            /* the take's position: frames captured into it / rate */
    char started[64];          /* ISO time of the take's first frame, "" when not recording */
    double preroll;            /* its pre-roll in seconds */
    int stalled;               /* connected, but no audio: the capture is reopening it */
    time_t stalled_since;      /* epoch s of the last frame before the stall, 0 if not */
    unsigned timing_losses;    /* windows that delivered clearly fewer frames than wall time */
    double measured_rate;      /* frames/s over the last timing window, 0 before one */
};

struct recorder_status {
    struct recorder_device_status *devices;   /* in configuration order, then hotplugged */
    size_t n_devices;
    int disk_known;            /* free space has been measured (else free_bytes and
                                  seconds_left are 0 and mean nothing) */
    uint64_t free_bytes;
    double seconds_left;       /* at the widest connected format */
    double disk_age;           /* seconds since free_bytes was measured (server/disk_watch.h) */
    int disk_stale;            /* not measured, or too long ago: the disk may be hung */
    int clock_synchronised;
    char server_time[64];      /* ISO */
    unsigned lease_seconds;
    unsigned takeover_after_seconds;
    double clock_offset;       /* /api/clock: seconds added for names, 0 = system */
    char clock_source[RECORDER_LABEL_MAX];   /* "system" or the client that set it */
    char instance[17];         /* random hex, new at every start of the server */
    struct forward_info *forward;   /* remote copies of takes (server/forward.h), oldest
                                       first; NULL when none */
    size_t n_forward;
};

/* Fills *out (free it with recorder_status_free). 0 or -ENOMEM. */
int  recorder_get_status(struct recorder *r, struct recorder_status *out);
void recorder_status_free(struct recorder_status *st);

struct recording_info {
    char name[256];            /* final name (a take being written: without .part) */
    char device[128];
    char started[64];
    double seconds;
    uint64_t bytes;
    unsigned rate, channels, bits;
    int complete;              /* 0 for a .part still being written or left by a crash */
    int peaks;                 /* NAME.peaks exists: GET /api/recordings/NAME/peaks */
};

/* The waveform overview of a take (docs/api.md "Waveform peaks"): 0, *data (caller frees),
 * *len bytes (slices x channels), *channels, *complete (the take is finished); -EINVAL bad
 * name, -ENOENT none. */
int recorder_read_peaks(struct recorder *r, const char *name, uint8_t **data, size_t *len,
                        unsigned *channels, int *complete);

/* The recordings, newest first; *out is freed by the caller (free). 0 or -ENOMEM. */
int recorder_list_recordings(struct recorder *r, struct recording_info **out, size_t *n);
/* Opens a finished recording for reading by plain name (no '/', no leading '.', must end
 * in .flac): 0 and an fd the caller closes, -EINVAL, -ENOENT. Never leaves the directory
 * (openat + O_NOFOLLOW). */
int recorder_open_recording(struct recorder *r, const char *name, int *fd, struct stat *st);
/* Needs a valid current lease token of any device. -EACCES/-ETIME, -EINVAL, -ENOENT,
 * -EBUSY (being written). */
int recorder_delete_recording(struct recorder *r, const char *name, const char *token);

#endif
