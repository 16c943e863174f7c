/* api_events: event payloads of docs/api.md. See api_events.h. */
#include "server/api_events.h"

#include "common/log.h"
#include "server/api_json.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Publishes data (stolen). */
static void publish(struct event_hub *h, const char *type, json_t *data)
{
    char *txt = data ? json_dumps(data, JSON_COMPACT) : NULL;
    json_decref(data);
    if (!txt) {
        log_warn("recorder", "could not build the %s event (out of memory?)", type);
        return;
    }
    int64_t id = event_hub_publish(h, type, txt, 0);
    if (id < 0 && id != -EPIPE)
        log_warn("recorder", "could not publish %s: %s", type, strerror((int)-id));
    free(txt);
}

void api_event_take(struct event_hub *h, const char *id, const char *holder, const char *lease,
                    time_t expires, int kept)
{
    publish(h, "take", json_pack("{s:s,s:s,s:s,s:I,s:b}", "id", id, "holder", holder, "lease",
                                 lease, "expires", (json_int_t)expires, "kept_by_take", kept));
}

void api_event_release_lease(struct event_hub *h, const char *id, const char *holder,
                             const char *lease)
{
    json_t *j = json_pack("{s:s,s:s}", "id", id, "holder", holder);
    if (j && lease)
        json_object_set_new(j, "lease", json_string(lease));
    publish(h, "release", j);
}

void api_event_release(struct event_hub *h, const char *id, const char *holder)
{
    api_event_release_lease(h, id, holder, NULL);
}

void api_event_takeover(struct event_hub *h, const char *id, const char *holder,
                        const char *lease, const char *previous, time_t expires)
{
    publish(h, "takeover", json_pack("{s:s,s:s,s:s,s:s,s:I}", "id", id, "lease", lease, "holder",
                                     holder, "previous", previous, "expires",
                                     (json_int_t)expires));
}

void api_event_presence(struct event_hub *h, const char *id, const char *holder,
                        const char *lease, int present, time_t holder_seen, time_t takeover_at)
{
    publish(h, "presence", json_pack("{s:s,s:s,s:s,s:b,s:I,s:I}", "id", id, "lease", lease,
                                     "holder", holder, "present", present, "holder_seen",
                                     (json_int_t)holder_seen, "takeover_at",
                                     (json_int_t)takeover_at));
}

void api_event_delete(struct event_hub *h, const char *name, const char *by)
{
    publish(h, "delete", json_pack("{s:s,s:s}", "name", name, "by", by));
}

void api_event_take_added(struct event_hub *h, const struct recording_info *e)
{
    publish(h, "take_added", api_json_recording(e));
}

void api_event_clock(struct event_hub *h, double offset, const char *source)
{
    publish(h, "clock", json_pack("{s:f,s:s}", "clock_offset", offset, "clock_source", source));
}

void api_event_expire(struct event_hub *h, const char *id, const char *holder, const char *lease)
{
    publish(h, "expire", json_pack("{s:s,s:s,s:s}", "id", id, "holder", holder, "lease", lease));
}

void api_event_record(struct event_hub *h, const char *id, const char *file, const char *started,
                      double preroll, double pos)
{
    publish(h, "record", json_pack("{s:s,s:s,s:s,s:f,s:f}", "id", id, "file", file, "started",
                                   started, "preroll", preroll, "pos", pos));
}

void api_event_stop(struct event_hub *h, const char *id, const struct take_status *st,
                    const char *reason)
{
    publish(h, "stop", api_json_stop_event(id, st, reason));
}

void api_event_add(struct event_hub *h, const char *id, const char *name)
{
    publish(h, "add", json_pack("{s:s,s:s}", "id", id, "name", name));
}

void api_event_remove(struct event_hub *h, const char *id)
{
    publish(h, "remove", json_pack("{s:s}", "id", id));
}

void api_event_error(struct event_hub *h, const char *id, const char *message)
{
    publish(h, "error", json_pack("{s:s,s:s}", "id", id, "message", message));
}

void api_event_back(struct event_hub *h, const char *id, double silent_seconds)
{
    publish(h, "back", json_pack("{s:s,s:f}", "id", id, "silent_seconds", silent_seconds));
}

void api_event_status(struct event_hub *h, const struct recorder_status *st)
{
    publish(h, "status", api_json_status(st));
}

void api_event_session(struct event_hub *h, const struct recorder_all_info *info,
                       const char *state)
{
    publish(h, "session", api_json_session(info, state));
}

void api_event_forward(struct event_hub *h, const struct forward_info *fi)
{
    publish(h, "forward", api_json_forward(fi));
}

void api_event_level(struct event_hub *h, const char *id, const struct meter_snapshot *m,
                     double pos)
{
    /* Built by hand: 25 a second per device, and `t` must keep its sub-ms digits. Device
     * ids are [A-Za-z0-9._-] (config.c, registry.c), so they need no escaping. */
    char buf[160 + AUDIO_MAX_CHANNELS * 80];
    int n = snprintf(buf, sizeof(buf), "{\"id\":\"%s\",\"t\":%.3f,\"ch\":[", id,
                     (double)m->capture_ns / 1e6);
    for (unsigned c = 0; c < m->channels && c < AUDIO_MAX_CHANNELS && n > 0 &&
                         (size_t)n < sizeof(buf) - 80; c++)
        n += snprintf(buf + n, sizeof(buf) - (size_t)n,
                      "%s{\"peak\":%.1f,\"rms\":%.1f,\"hold\":%.1f,\"clip\":%" PRIu32 "}",
                      c ? "," : "", m->ch[c].peak_db, m->ch[c].rms_db, m->ch[c].hold_db,
                      m->ch[c].clips);
    if (n <= 0 || (size_t)n >= sizeof(buf) - 40)
        return;   /* cannot happen with AUDIO_MAX_CHANNELS channels; never half a JSON */
    if (pos >= 0)   /* the running take's position: the page's counter runs on it */
        n += snprintf(buf + n, sizeof(buf) - (size_t)n, "],\"pos\":%.3f}", pos);
    else
        n += snprintf(buf + n, sizeof(buf) - (size_t)n, "]}");
    if ((size_t)n < sizeof(buf))
        (void)event_hub_publish(h, "level", buf, 1);
}
