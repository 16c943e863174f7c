/*
 * recorder: the core of `pirec serve`, everything but HTTP.
 *
 * It keeps the device registry (configured devices, hotplugged ALSA cards, the demo tone),
 * one continuous capture per connected device (so meters never stop and pre-roll is
 * always there), at most one take per device, the leases, and it publishes every event
 * (docs/api.md) to the hub. A ticker thread publishes `level` ~25/s per device, enforces
 * lease expiry on its own (`expire` + `release`), notices takes that ended by themselves
 * (limit, disk full, device gone: `stop`), and sends `status` every 90 s.
 * Unplugging during a take finalizes it and sends `stop`, `release`, `remove`.
 *
 * The functions below are the HTTP layer's whole view. Each returns 0 or a negative errno
 * and, when `answer` is not NULL, sets *answer to a new JSON object (the response body,
 * also on errors: {"state":false,"token":"","error":"..."}) that the caller json_decrefs.
 * Errno meanings (the HTTP layer maps them): -ENOENT unknown or unplugged device / no such
 * recording (404); -EBUSY held by another client, or a recording still being written
 * (409); -EALREADY already recording / not recording (409); -EACCES bad, forged,
 * other-device or superseded token, -ETIME expired token (401); -EINVAL bad name (400);
 * -ENOSPC disk nearly full (507); others 500.
 *
 * Threads: every function is thread-safe and may be called from any HTTP thread; none
 * blocks on the disk for long except recorder_stop (finalizing a take: fsync).
 * Ownership: the recorder borrows cfg and hub, which must outlive recorder_destroy().
 */
#ifndef PIREC_SERVER_RECORDER_H
#define PIREC_SERVER_RECORDER_H

#include "server/config.h"
#include "server/events.h"

#include <jansson.h>
#include <sys/stat.h>

struct recorder;

/* Starts hotplug, captures and the ticker. */
int  recorder_create(struct recorder **out, const struct server_config *cfg, struct event_hub *hub);
/* Finalizes running takes (each gets `stop`), stops captures and threads, frees. */
void recorder_destroy(struct recorder *r);

int recorder_take(struct recorder *r, const char *id, const char *client, json_t **answer);
int recorder_renew(struct recorder *r, const char *id, const char *token, json_t **answer);
int recorder_release(struct recorder *r, const char *id, const char *token, json_t **answer);
int recorder_start(struct recorder *r, const char *id, const char *token, json_t **answer);
int recorder_stop(struct recorder *r, const char *id, const char *token, json_t **answer);

/* The status object of docs/api.md (new reference). */
json_t *recorder_status(struct recorder *r);
/* {"recordings":[...]} (new reference). */
json_t *recorder_list_recordings(struct recorder *r);
/* Opens a finished recording for reading by plain name (no '/', no leading '.', must end
 * in .flac): 0 and an fd the caller closes, -EINVAL, -ENOENT. Never leaves the directory
 * (openat + O_NOFOLLOW). */
int recorder_open_recording(struct recorder *r, const char *name, int *fd, struct stat *st);
/* Needs a valid current lease token of any device. -EACCES/-ETIME, -EINVAL, -ENOENT,
 * -EBUSY (being written). */
int recorder_delete_recording(struct recorder *r, const char *name, const char *token);

#endif
