/* api_json: docs/api.md's JSON shapes from C results. See api_json.h. */
#include "server/api_json.h"

#include "server/forward.h"

#include <stdlib.h>
#include <string.h>

static const char *base_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

static json_t *device_json(const struct recorder_device_status *d)
{
    json_t *fmt = json_null();
    if (d->has_format)
        fmt = json_pack("{s:s,s:i,s:i,s:i}", "sample", sample_format_name(d->format.sample),
                        "rate", (int)d->format.rate, "channels", (int)d->format.channels,
                        "bits", (int)d->bits);
    json_t *o = json_pack("{s:s,s:s,s:b,s:o,s:b,s:s,s:I,s:b,s:s,s:f}", "id", d->id, "name",
                          d->name, "connected", d->connected, "format", fmt, "taken", d->taken,
                          "holder", d->taken ? d->holder : "", "expires",
                          (json_int_t)(d->taken ? d->expires : 0), "recording", d->recording,
                          "file", d->recording ? d->file : "", "elapsed", d->elapsed);
    /* the capture watchdog (docs/api.md): not in the original's per-id object */
    if (o) {
        json_object_set_new(o, "stalled", json_boolean(d->stalled));
        json_object_set_new(o, "stalled_since", json_integer((json_int_t)d->stalled_since));
        json_object_set_new(o, "timing_losses", json_integer((json_int_t)d->timing_losses));
        json_object_set_new(o, "measured_rate", json_real(d->measured_rate));
        /* control follows the take (docs/api.md "Leases and takes") */
        json_object_set_new(o, "lease", json_string(d->taken ? d->lease : ""));
        json_object_set_new(o, "kept_by_take", json_boolean(d->taken && d->kept_by_take));
        json_object_set_new(o, "started", json_string(d->recording ? d->started : ""));
        json_object_set_new(o, "preroll", json_real(d->recording ? d->preroll : 0));
        json_object_set_new(o, "holder_seen", json_integer(d->taken ? d->holder_seen : 0));
        json_object_set_new(o, "takeover_at", json_integer(d->taken ? d->takeover_at : 0));
    }
    return o;
}

/* Top-level fields an id must not shadow in the original's per-id keys. */
static int reserved_key(const char *id)
{
    return strcmp(id, "devices") == 0 || strcmp(id, "disk") == 0 ||
           strcmp(id, "lease_seconds") == 0 || strcmp(id, "takeover_after_seconds") == 0 ||
           strcmp(id, "instance") == 0 || strcmp(id, "clock_offset") == 0 ||
           strcmp(id, "clock_source") == 0 ||
           strcmp(id, "clock_synchronised") == 0 || strcmp(id, "server_time") == 0;
}

json_t *api_json_status(const struct recorder_status *st)
{
    json_t *o = json_object();
    json_t *devs = json_array();
    if (!o || !devs) {
        json_decref(o);
        json_decref(devs);
        return NULL;
    }
    for (size_t i = 0; i < st->n_devices; i++) {
        const struct recorder_device_status *d = &st->devices[i];
        json_array_append_new(devs, device_json(d));
        /* The original's clients read status as {"<id>":{"connected","taken","name"}}. */
        if (!reserved_key(d->id))
            json_object_set_new(o, d->id, json_pack("{s:b,s:b,s:s}", "connected", d->connected,
                                                    "taken", d->taken, "name", d->name));
    }
    json_object_set_new(o, "devices", devs);
    /* Not measured yet (a hung disk at start): null figures, which the page leaves out. */
    json_t *disk = st->disk_known
        ? json_pack("{s:I,s:f,s:f}", "free_bytes", (json_int_t)st->free_bytes, "seconds_left",
                    st->seconds_left, "age_seconds", st->disk_age)
        : json_pack("{s:n,s:n,s:n}", "free_bytes", "seconds_left", "age_seconds");
    if (disk)
        json_object_set_new(disk, "stale", json_boolean(st->disk_stale));
    json_object_set_new(o, "disk", disk);
    json_object_set_new(o, "clock_synchronised", json_boolean(st->clock_synchronised));
    json_object_set_new(o, "server_time", json_string(st->server_time));
    json_object_set_new(o, "lease_seconds", json_integer(st->lease_seconds));
    json_object_set_new(o, "takeover_after_seconds", json_integer(st->takeover_after_seconds));
    json_object_set_new(o, "instance", json_string(st->instance));
    json_object_set_new(o, "clock_offset", json_real(st->clock_offset));
    json_object_set_new(o, "clock_source", json_string(st->clock_source));
    if (st->n_forward) {
        json_t *fw = json_array();
        for (size_t i = 0; fw && i < st->n_forward; i++)
            json_array_append_new(fw, api_json_forward(&st->forward[i]));
        json_object_set_new(o, "forward", fw);
    }
    return o;
}

json_t *api_json_session(const struct recorder_all_info *info, const char *state)
{
    json_t *devs = json_array();
    int stopped = strcmp(state, "stopped") == 0;
    for (size_t i = 0; devs && i < info->n; i++) {
        const struct recorder_all_device *d = &info->dev[i];
        json_t *o = json_pack("{s:s,s:s}", "id", d->id, "file", d->file);
        if (!o)
            continue;
        if (stopped)
            json_object_set_new(o, "seconds", json_real(d->seconds));
        else
            json_object_set_new(o, "offset_us", json_integer(d->offset_us));
        if (d->error)
            json_object_set_new(o, "error", json_string(strerror(-d->error)));
        json_array_append_new(devs, o);
    }
    return devs ? json_pack("{s:b,s:s,s:s,s:s,s:o}", "state", 1, "session", info->session,
                            "started", info->started, "recording", state, "devices", devs)
                : NULL;
}

json_t *api_json_forward(const struct forward_info *fi)
{
    json_t *o = json_pack("{s:s,s:s,s:s,s:b,s:f,s:I,s:I,s:s}", "id", fi->device, "file",
                          fi->file, "state", forward_state_name(fi->state), "connected",
                          fi->connected, "seconds_behind", fi->seconds_behind, "local_bytes",
                          (json_int_t)fi->local_bytes, "remote_bytes",
                          (json_int_t)fi->remote_bytes, "md5", fi->md5);
    if (o && fi->error[0])
        json_object_set_new(o, "error", json_string(fi->error));
    return o;
}

json_t *api_json_status_of(struct recorder *r)
{
    struct recorder_status st;
    if (recorder_get_status(r, &st) < 0)
        return NULL;
    json_t *o = api_json_status(&st);
    recorder_status_free(&st);
    return o;
}

json_t *api_json_recording(const struct recording_info *e)
{
    return json_pack("{s:s,s:s,s:s,s:f,s:I,s:s,s:i,s:i,s:i,s:b,s:b}", "name", e->name, "device",
                     e->device, "started", e->started, "seconds", e->seconds, "bytes",
                     (json_int_t)e->bytes, "format", "FLAC", "rate", (int)e->rate, "channels",
                     (int)e->channels, "bits", (int)e->bits, "complete", e->complete, "peaks",
                     e->peaks);
}

json_t *api_json_recordings(const struct recording_info *list, size_t n)
{
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < n; i++)
        json_array_append_new(arr, api_json_recording(&list[i]));
    return arr ? json_pack("{s:o}", "recordings", arr) : NULL;
}

json_t *api_json_error(const char *msg)
{
    return json_pack("{s:b,s:s,s:s}", "state", 0, "token", "", "error", msg);
}

json_t *api_json_lease(const char *id, const struct recorder_lease *l)
{
    return json_pack("{s:b,s:s,s:s,s:s,s:I,s:i,s:s,s:b}", "state", 1, "token", l->token, "id",
                     id, "holder", l->holder, "expires", (json_int_t)l->expires,
                     "lease_seconds", (int)l->lease_seconds, "lease", l->lease,
                     "kept_by_take", l->kept_by_take);
}

json_t *api_json_stop_event(const char *id, const struct take_status *st, const char *reason)
{
    json_t *j = json_pack("{s:s,s:s,s:f,s:I,s:I,s:s}", "id", id, "file", base_name(st->path),
                          "seconds", st->seconds, "bytes", (json_int_t)st->bytes,
                          "lost_frames", (json_int_t)st->lost_frames, "reason", reason);
    if (j && st->error)
        json_object_set_new(j, "error", json_string(strerror(-st->error)));
    return j;
}
