/*
 * api_json: the JSON shapes of docs/api.md built from the recorder's C results; used by
 * the HTTP answers (api.c), the SSE stream's first status (http.c) and the events
 * (api_events.c). The original Pi_Record client's quirk, each device also keyed by its
 * id in the status object, is added here and nowhere else.
 *
 * Threads: any; pure functions. Every function returns a new reference (NULL only when
 * out of memory).
 */
#ifndef PIREC_SERVER_API_JSON_H
#define PIREC_SERVER_API_JSON_H

#include "server/recorder.h"

#include <jansson.h>

/* {"devices":[...],"<id>":{"connected","taken","name"},...,"disk":{...},
 *  "clock_synchronised":..,"server_time":..} */
json_t *api_json_status(const struct recorder_status *st);
/* The status object of `r` right now. */
json_t *api_json_status_of(struct recorder *r);
/* One remote copy: {"id","file","state","connected","seconds_behind","local_bytes",
 * "remote_bytes","md5"}: an element of the status's "forward" and the `forward` event. */
struct forward_info;
json_t *api_json_forward(const struct forward_info *fi);
/* Record all: {"state":true,"session","started","recording":"recording"|"stopped",
 * "devices":[{"id","file","offset_us"|"seconds"[,"error"]}]}: the answer of the record_all
 * routes and the `session` event. */
json_t *api_json_session(const struct recorder_all_info *info, const char *state);
/* {"recordings":[...]} */
json_t *api_json_recordings(const struct recording_info *list, size_t n);
/* One element of the list (the `take_added` event). */
json_t *api_json_recording(const struct recording_info *e);
/* {"state":false,"token":"","error":msg} */
json_t *api_json_error(const char *msg);
/* take/renew success: {"state":true,"token","id","holder","expires","lease_seconds"} */
json_t *api_json_lease(const char *id, const struct recorder_lease *l);
/* {"id","file","seconds","bytes","lost_frames","reason"[,"error"]}: the `stop` event */
json_t *api_json_stop_event(const char *id, const struct take_status *st, const char *reason);

#endif
