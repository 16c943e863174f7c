/*
 * api_events: the payload of every event of docs/api.md, formatted as JSON and published
 * to the hub. The recorder core calls these with C values, so that the wire format of the
 * events lives in one place with the HTTP answers (api.c, api_json.c).
 *
 * Threads: any (the hub serialises). Nothing is retained; a publish that fails is logged
 * (except after shutdown).
 */
#ifndef PIREC_SERVER_API_EVENTS_H
#define PIREC_SERVER_API_EVENTS_H

#include "audio/meter.h"
#include "server/events.h"
#include "server/recorder.h"
#include "store/take.h"

#include <time.h>

/* lease: the lease's name ("L17"); kept: a running take keeps the lease (docs/api.md). */
void api_event_take(struct event_hub *h, const char *id, const char *holder, const char *lease,
                    time_t expires, int kept);
void api_event_release(struct event_hub *h, const char *id, const char *holder);
/* The same with the lease's name (NULL: none). */
void api_event_release_lease(struct event_hub *h, const char *id, const char *holder,
                             const char *lease);
/* A take-over: lease granted to holder, replacing previous's. */
void api_event_takeover(struct event_hub *h, const char *id, const char *holder,
                        const char *lease, const char *previous, time_t expires);
/* The holder's first bound event stream opened / its last one closed. */
void api_event_presence(struct event_hub *h, const char *id, const char *holder,
                        const char *lease, int present, time_t holder_seen, time_t takeover_at);
/* A take was deleted by `by` (the holder of the token used). */
void api_event_delete(struct event_hub *h, const char *name, const char *by);
/* A take became complete: its recordings-list object. */
void api_event_take_added(struct event_hub *h, const struct recording_info *e);
/* The clock offset for naming changed (/api/clock; 0 and "system": dropped). */
void api_event_clock(struct event_hub *h, double offset, const char *source);
void api_event_expire(struct event_hub *h, const char *id, const char *holder, const char *lease);
/* preroll: seconds of pre-roll granted; pos: the take's position (docs/api.md). */
void api_event_record(struct event_hub *h, const char *id, const char *file, const char *started,
                      double preroll, double pos);
/* reason: docs/api.md's `stop` reasons; st->path may be a full path (its base is sent). */
void api_event_stop(struct event_hub *h, const char *id, const struct take_status *st,
                    const char *reason);
void api_event_add(struct event_hub *h, const char *id, const char *name);
void api_event_remove(struct event_hub *h, const char *id);
void api_event_error(struct event_hub *h, const char *id, const char *message);
/* A stalled device delivers audio again after silent_seconds. */
void api_event_back(struct event_hub *h, const char *id, double silent_seconds);
/* A volatile `level` event (25/s per device: formatted without jansson). */
/* pos: the running take's position in seconds (`pos`, 3 decimals); < 0: not recording. */
void api_event_level(struct event_hub *h, const char *id, const struct meter_snapshot *m,
                     double pos);
void api_event_status(struct event_hub *h, const struct recorder_status *st);
/* Where a take's remote copy stands (server/forward.h). */
struct forward_info;
void api_event_forward(struct event_hub *h, const struct forward_info *fi);
/* Record all: state "recording" or "stopped". */
void api_event_session(struct event_hub *h, const struct recorder_all_info *info,
                       const char *state);

#endif
