/* api: route + C results -> status code + JSON. See api.h. */
#include "server/api.h"

#include "common/log.h"
#include "server/api_json.h"
#include "server/peaks.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Sets the reply from obj (stolen). */
static void reply(struct api_reply *out, unsigned status, json_t *obj)
{
    out->status = status;
    out->allow = NULL;
    out->body = obj ? json_dumps(obj, JSON_COMPACT) : NULL;
    json_decref(obj);
    if (!out->body) {
        out->status = 500;
        out->body = strdup("{\"state\":false,\"token\":\"\",\"error\":\"out of memory\"}");
    }
}

static void fail(struct api_reply *out, unsigned status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void fail(struct api_reply *out, unsigned status, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    reply(out, status, api_json_error(msg));
}

void api_error(struct api_reply *out, unsigned status, const char *msg, const char *allow)
{
    reply(out, status, api_json_error(msg));
    out->allow = allow;
}

static unsigned status_of(int err)
{
    switch (err) {
    case 0: return 200;
    case -ENOENT:
    case -ENODEV: return 404;
    case -EBUSY:
    case -EALREADY:
    case -ENOLINK: return 409;
    case -EACCES:
    case -EOWNERDEAD:
    case -ETIME: return 401;
    case -EINVAL: return 400;
    case -ENOSPC: return 507;
    default: return 500;
    }
}

void api_errno(struct api_reply *out, int rc)
{
    const char *msg;
    switch (rc) {
    case -ENOENT:
    case -ENODEV: msg = "not found"; break;
    case -EBUSY: msg = "busy"; break;
    case -EALREADY: msg = "already in that state"; break;
    case -ENOLINK: msg = "the device is stalled (no audio); it is being reopened"; break;
    case -EACCES: msg = "bad token"; break;
    case -ETIME: msg = "token expired"; break;
    case -EOWNERDEAD: msg = "control was taken over by another client"; break;
    case -EINVAL: msg = "bad request"; break;
    case -ENOSPC: msg = "disk nearly full"; break;
    default: msg = "internal error"; break;
    }
    if (status_of(rc) == 500)
        log_warn("api", "recorder: %s", strerror(-rc));
    fail(out, status_of(rc), "%s", msg);
}

void api_reply_free(struct api_reply *out)
{
    free(out->body);
    out->body = NULL;
}

/* The answers every device route shares: unknown device, bad token. 1 when handled. */
static int device_error(struct recorder *r, struct api_reply *out, int rc, const char *id)
{
    switch (rc) {
    case -ENOENT: fail(out, 404, "there is no device %s", id); return 1;
    case -ENODEV: fail(out, 404, "device %s is not connected", id); return 1;
    case -ETIME:
        fail(out, 401, "the lease token for %s has expired: take the device again", id);
        return 1;
    case -EACCES:
        fail(out, 401, "the token is not the current lease token for %s (released, renewed "
             "or forged): take the device again", id);
        return 1;
    case -EOWNERDEAD: {
        char by[RECORDER_LABEL_MAX];
        recorder_taken_over_by(r, id, by, sizeof(by));
        fail(out, 401, "%s took over control of %s: take it again when it is free",
             by[0] ? by : "another client", id);
        json_t *j = json_loads(out->body, 0, NULL);
        if (j) {
            json_object_set_new(j, "taken_over_by", json_string(by));
            free(out->body);
            reply(out, 401, j);
        }
        return 1;
    }
    }
    return 0;
}

/* The 409 of take/takeover: who holds it, whether they are present, when a take-over is
 * allowed. */
static void held_by(struct api_reply *out, const struct recorder_lease *l, const char *msg)
{
    json_t *a = api_json_error(msg);
    json_object_set_new(a, "holder", json_string(l->holder));
    json_object_set_new(a, "expires", json_integer(l->expires));
    json_object_set_new(a, "present", json_boolean(l->present));
    json_object_set_new(a, "takeover_at", json_integer(l->takeover_at));
    reply(out, 409, a);
}

static void do_take(struct recorder *r, const struct api_request *rq, struct api_reply *out)
{
    const char *id = rq->route->id;
    struct recorder_lease l;
    int rc = recorder_take(r, id, rq->client && rq->client[0] ? rq->client : "web", &l);
    if (rc == 0) {
        reply(out, 200, api_json_lease(id, &l));
    } else if (rc == -EBUSY) {
        char msg[256];
        snprintf(msg, sizeof(msg), "%s is held by %s until %lld", id, l.holder,
                 (long long)l.expires);
        held_by(out, &l, msg);
    } else if (!device_error(r, out, rc, id)) {
        fail(out, status_of(rc), "could not take %s: %s", id, strerror(-rc));
    }
}

static void do_takeover(struct recorder *r, const struct api_request *rq, struct api_reply *out)
{
    const char *id = rq->route->id;
    struct recorder_lease l;
    int rc = recorder_takeover(r, id, rq->client && rq->client[0] ? rq->client : "web", &l);
    if (rc == 0) {
        json_t *a = api_json_lease(id, &l);
        if (a && l.previous[0])
            json_object_set_new(a, "previous", json_string(l.previous));
        reply(out, 200, a);
    } else if (rc == -EBUSY) {
        char msg[256];
        snprintf(msg, sizeof(msg), "%s is still connected: a take-over is allowed once it has "
                 "been gone for a while (takeover_at)", l.holder);
        held_by(out, &l, msg);
    } else if (!device_error(r, out, rc, id)) {
        fail(out, status_of(rc), "could not take over %s: %s", id, strerror(-rc));
    }
}

static void do_clock(struct recorder *r, const struct api_request *rq, struct api_reply *out)
{
    char *end = NULL;
    double now_ms = rq->now && rq->now[0] ? strtod(rq->now, &end) : 0;
    if (!rq->now || !rq->now[0] || !end || *end || !(now_ms > 0)) {
        fail(out, 400, "now=UNIX_MS is missing or not a number (the client's time in "
             "milliseconds since 1970, e.g. Date.now())");
        return;
    }
    struct recorder_clock c;
    int rc = recorder_set_clock(r, rq->token, now_ms, &c);
    if (rc == 0) {
        reply(out, 200, json_pack("{s:b,s:f,s:s,s:s}", "state", 1, "clock_offset", c.offset,
                                  "clock_source", c.source, "server_time", c.server_time));
    } else if (rc == -EALREADY) {
        fail(out, 409, "the recorder's clock is synchronised already: it is not overridden");
    } else if (rc == -EINVAL) {
        fail(out, 400, "now=%s is not a plausible time in milliseconds", rq->now);
    } else if (rc == -EACCES || rc == -ETIME || rc == -EOWNERDEAD) {
        fail(out, 401, "setting the time needs the current lease token of a device: take "
             "control of one first");
    } else {
        api_errno(out, rc);
    }
}

static void do_peaks(struct recorder *r, const struct api_request *rq, struct api_reply *out)
{
    const char *name = rq->route->name;
    uint8_t *data = NULL;
    size_t len = 0;
    unsigned ch = 0;
    int complete = 0;
    int rc = recorder_read_peaks(r, name, &data, &len, &ch, &complete);
    if (rc == -EINVAL) {
        fail(out, 400, "bad recording name");
        return;
    }
    if (rc == -ENOENT) {
        fail(out, 404, "no waveform overview for %s (an older take, or no such take)", name);
        return;
    }
    if (rc < 0) {
        api_errno(out, rc);
        return;
    }
    size_t slices = len / ch;
    json_t *chans = json_array();
    for (unsigned c = 0; chans && c < ch; c++) {
        json_t *a = json_array();
        for (size_t i = 0; a && i < slices; i++)
            json_array_append_new(a, json_integer(data[i * ch + c]));
        json_array_append_new(chans, a);
    }
    free(data);
    reply(out, 200, json_pack("{s:i,s:f,s:i,s:b,s:o}", "per_second", PEAKS_PER_SECOND,
                              "seconds", (double)slices / PEAKS_PER_SECOND, "channels", (int)ch,
                              "complete", complete, "peaks", chans));
}

static void do_renew(struct recorder *r, const struct api_request *rq, struct api_reply *out)
{
    const char *id = rq->route->id;
    struct recorder_lease l;
    int rc = recorder_renew(r, id, rq->token, &l);
    if (rc == 0)
        reply(out, 200, api_json_lease(id, &l));
    else if (!device_error(r, out, rc, id))
        api_errno(out, rc);
}

static void do_release(struct recorder *r, const struct api_request *rq, struct api_reply *out)
{
    const char *id = rq->route->id;
    int rc = recorder_release(r, id, rq->token);
    if (rc == 0)
        reply(out, 200, json_pack("{s:b}", "state", 1));
    else if (!device_error(r, out, rc, id))
        api_errno(out, rc);
}

static void do_start(struct recorder *r, const struct api_request *rq, struct api_reply *out)
{
    const char *id = rq->route->id;
    struct recorder_take_info ti;
    memset(&ti, 0, sizeof(ti));
    int rc = recorder_start(r, id, rq->token, &ti);
    if (rc == 0)
        reply(out, 200, json_pack("{s:b,s:s,s:s,s:f,s:f}", "state", 1, "file", ti.file,
                                  "started", ti.started, "preroll", ti.preroll, "pos", ti.pos));
    else if (device_error(r, out, rc, id))
        return;
    else if (rc == -EALREADY)
        fail(out, 409, "%s is already recording %s", id, ti.file);
    else if (rc == -EBUSY)
        fail(out, 409, "%s is busy starting or stopping a take: try again", id);
    else if (rc == -ENOLINK)
        fail(out, 409, "the device %s is stalled (no audio for %.0f s); it is being reopened: "
             "start again when it is back", id, ti.silent_seconds);
    else if (rc == -ENOSPC)
        fail(out, 507, "the disk is nearly full: free some space or delete old takes");
    else
        fail(out, 500, "could not start recording %s: %s", id, strerror(-rc));
}

static void do_stop(struct recorder *r, const struct api_request *rq, struct api_reply *out)
{
    const char *id = rq->route->id;
    struct take_status st;
    int rc = recorder_stop(r, id, rq->token, &st);
    if (rc == 0) {
        const char *file = strrchr(st.path, '/');
        json_t *a = json_pack("{s:b,s:s,s:f,s:I,s:I}", "state", 1, "file",
                              file ? file + 1 : st.path, "seconds", st.seconds, "bytes",
                              (json_int_t)st.bytes, "lost_frames", (json_int_t)st.lost_frames);
        if (a && st.error)
            json_object_set_new(a, "error", json_string(strerror(-st.error)));
        reply(out, 200, a);
    } else if (device_error(r, out, rc, id)) {
        return;
    } else if (rc == -EALREADY) {
        fail(out, 409, "%s is not recording", id);
    } else if (rc == -EBUSY) {
        fail(out, 409, "%s is busy starting or stopping a take: try again", id);
    } else {
        fail(out, 500, "the take of %s failed: %s", id, strerror(-rc));
    }
}

static void do_list(struct recorder *r, struct api_reply *out)
{
    struct recording_info *list = NULL;
    size_t n = 0;
    int rc = recorder_list_recordings(r, &list, &n);
    if (rc < 0) {
        fail(out, 500, "cannot list the recordings: %s", strerror(-rc));
        return;
    }
    reply(out, 200, api_json_recordings(list, n));
    free(list);
}

static void do_delete(struct recorder *r, const struct api_request *rq, struct api_reply *out)
{
    int rc = recorder_delete_recording(r, rq->route->name, rq->token);
    switch (rc) {
    case 0:
        reply(out, 200, json_pack("{s:b}", "state", 1));   /* library.c logged it */
        break;
    case -ENOENT: fail(out, 404, "there is no recording %s", rq->route->name); break;
    case -EBUSY: fail(out, 409, "%s is still being written: stop the take first",
                      rq->route->name); break;
    case -ETIME: fail(out, 401, "the lease token has expired: take a device again"); break;
    case -EACCES: fail(out, 401, "deleting needs the current lease token of a device"); break;
    default: api_errno(out, rc); break;
    }
}

static const struct {
    unsigned status;
    const char *msg;
} REFUSALS[] = {
    [API_BAD_REQUEST_LINE] = {400, "that is not an HTTP request line (want e.g. GET /api/status HTTP/1.1)"},
    [API_BODY_TOO_LARGE] = {413, "request body too large"},
    [API_UNKNOWN_HOST] = {403, "this recorder does not answer to that host name (add it to "
                               "allowed_hosts in the [server] section of the config if it "
                               "is really this recorder's name)"},
    [API_CROSS_ORIGIN] = {403, "refused: this request comes from another web site's page; only "
                               "the recorder's own page and command-line clients may control it"},
    [API_HEADER_TIMEOUT] = {408, "the request did not arrive in time: send it again"},
    [API_SERVER_FULL] = {503, "the recorder has too many connections: try again in a moment"},
    [API_CLIENT_FULL] = {503, "too many connections from your address: close some and try again"},
    [API_STREAMS_FULL] = {503, "too many event streams: try again later"},
    [API_CLIENT_STREAMS_FULL] = {503, "too many event streams from your address: close other "
                                      "pages of this recorder"},
    [API_LIST_BUSY] = {503, "the recorder is busy listing recordings: try again"},
    [API_BUSY] = {503, "the recorder is busy: try again"},
    [API_SHUTTING_DOWN] = {503, "server shutting down"},
    [API_SUBSCRIBE_FAILED] = {500, "cannot subscribe to the events"},
};

unsigned api_refusal_status(enum api_refusal why)
{
    return REFUSALS[why].status;
}

const char *api_refusal_message(enum api_refusal why)
{
    return REFUSALS[why].msg;
}

void api_refuse(struct api_reply *out, enum api_refusal why)
{
    api_error(out, REFUSALS[why].status, REFUSALS[why].msg, NULL);
}

static void do_all(struct recorder *r, const struct api_request *rq, struct api_reply *out,
                   int start)
{
    struct recorder_all_info info;
    int rc = start ? recorder_start_all(r, rq->token, &info)
                   : recorder_stop_all(r, rq->token, &info);
    if (rc == 0)
        reply(out, 200, api_json_session(&info, start ? "recording" : "stopped"));
    else if (rc == -ETIME)
        fail(out, 401, "the lease token has expired: take a device again");
    else if (rc == -EACCES)
        fail(out, 401, "record all needs the current lease token of a device");
    else if (rc == -EALREADY)
        fail(out, 409, start ? "session %s is recording: stop it first"
                             : "no record-all session is recording%s", info.session);
    else if (rc == -ENODEV)
        fail(out, 409, "no connected device is free to record (all busy, recording or held "
             "by another client)");
    else
        fail(out, status_of(rc), "record all: %s", strerror(-rc));
}

int api_route_is_slow(const struct route *rt)
{
    switch (rt->action) {
    case ROUTE_START_ALL:
    case ROUTE_STOP_ALL:
    case ROUTE_START:
    case ROUTE_STOP:
    case ROUTE_LIST:
    case ROUTE_PEAKS:
    case ROUTE_DELETE: return 1;
    default: return 0;
    }
}

void api_handle(struct recorder *r, const struct api_request *rq, struct api_reply *out)
{
    const struct route *rt = rq->route;
    if (rt->action == ROUTE_ERROR) {
        api_error(out, (unsigned)rt->status, rt->error, rt->allow);
        return;
    }
    if (rt->needs_token && !rq->token) {
        api_error(out, 401, rq->token_malformed ? "bad token" : "missing token", NULL);
        return;
    }
    switch (rt->action) {
    case ROUTE_TAKE: do_take(r, rq, out); break;
    case ROUTE_TAKEOVER: do_takeover(r, rq, out); break;
    case ROUTE_CLOCK: do_clock(r, rq, out); break;
    case ROUTE_PEAKS: do_peaks(r, rq, out); break;
    case ROUTE_RENEW: do_renew(r, rq, out); break;
    case ROUTE_RELEASE: do_release(r, rq, out); break;
    case ROUTE_START: do_start(r, rq, out); break;
    case ROUTE_STOP: do_stop(r, rq, out); break;
    case ROUTE_STATUS: reply(out, 200, api_json_status_of(r)); break;
    case ROUTE_LIST: do_list(r, out); break;
    case ROUTE_DELETE: do_delete(r, rq, out); break;
    case ROUTE_START_ALL: do_all(r, rq, out, 1); break;
    case ROUTE_STOP_ALL: do_all(r, rq, out, 0); break;
    default: api_error(out, 500, "internal error: not an answer of the API layer", NULL); break;
    }
}
