/* api: the status codes and JSON bodies of docs/api.md, made from the recorder's C
 * results (the demo tone through take, start, stop; errors; the original client's
 * per-id status keys, added exactly once). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "server/api.h"
#include "server/api_json.h"
#include "recorder_fixture.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct fixture {
    char dir[64];
    struct server_config cfg;
    struct event_hub *hub;
    struct recorder *rec;
};

static void fixture_start(struct fixture *f)
{
    memset(f, 0, sizeof(*f));
    fixture_folder(f->dir, sizeof(f->dir), "api", &f->cfg);
    f->cfg.preroll_seconds = 0;
    f->cfg.demo = 1;
    assert_int_equal(event_hub_create(&f->hub, 0), 0);
    assert_int_equal(recorder_create(&f->rec, &f->cfg, f->hub), 0);
}

static void fixture_free(struct fixture *f)
{
    recorder_destroy(f->rec);
    event_hub_destroy(f->hub);
    fixture_folder_remove(f->dir);
}

/* Runs one request and returns its body parsed; *status gets the code. */
static json_t *call(struct fixture *f, const char *method, const char *path, const char *token,
                    const char *client, unsigned *status)
{
    static struct route rt;
    route_parse(method, path, &rt);
    struct api_request rq = {.route = &rt, .client = client};
    rq.token = rt.token[0] ? rt.token : token;
    struct api_reply a;
    api_handle(f->rec, &rq, &a);
    assert_non_null(a.body);
    *status = a.status;
    json_error_t err;
    json_t *j = json_loads(a.body, 0, &err);
    if (!j)
        fail_msg("%s %s: not JSON: %s", method, path, a.body);
    api_reply_free(&a);
    return j;
}

static const char *str(json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

static void assert_error_body(json_t *j)
{
    assert_true(json_is_false(json_object_get(j, "state")));
    assert_string_equal(str(j, "token"), "");
    assert_non_null(str(j, "error"));
}

static void test_control_answers(void **state)
{
    (void)state;
    struct fixture f;
    fixture_start(&f);
    unsigned st;
    json_t *j = call(&f, "GET", "/api/recording/tone/take", NULL, "ipad", &st);
    assert_int_equal(st, 200);
    assert_true(json_is_true(json_object_get(j, "state")));
    assert_string_equal(str(j, "id"), "tone");
    assert_string_equal(str(j, "holder"), "ipad");
    assert_int_equal(json_integer_value(json_object_get(j, "lease_seconds")), 300);
    assert_true(json_integer_value(json_object_get(j, "expires")) > 0);
    char token[JWT_MAX];
    snprintf(token, sizeof(token), "%s", str(j, "token"));
    json_decref(j);

    j = call(&f, "GET", "/api/recording/tone/take", NULL, "phone", &st);
    assert_int_equal(st, 409);
    assert_error_body(j);
    assert_string_equal(str(j, "holder"), "ipad");
    assert_non_null(strstr(str(j, "error"), "is held by ipad until"));
    json_decref(j);

    j = call(&f, "GET", "/api/recording/scarlett/take", NULL, NULL, &st);
    assert_int_equal(st, 404);
    assert_error_body(j);
    assert_non_null(strstr(str(j, "error"), "scarlett"));
    json_decref(j);

    j = call(&f, "POST", "/api/recording/tone/start", NULL, NULL, &st);
    assert_int_equal(st, 401);
    assert_string_equal(str(j, "error"), "missing token");
    json_decref(j);
    j = call(&f, "GET", "/api/recording/tone/start/forged.token.x", NULL, NULL, &st);
    assert_int_equal(st, 401);
    assert_non_null(strstr(str(j, "error"), "take the device again"));
    json_decref(j);
    j = call(&f, "POST", "/api/recording/tone/stop", token, NULL, &st);
    assert_int_equal(st, 409);
    assert_non_null(strstr(str(j, "error"), "not recording"));
    json_decref(j);

    j = call(&f, "POST", "/api/recording/tone/start", token, NULL, &st);
    assert_int_equal(st, 200);
    assert_true(json_is_true(json_object_get(j, "state")));
    char file[256];
    snprintf(file, sizeof(file), "%s", str(j, "file"));
    assert_non_null(str(j, "started"));
    json_decref(j);
    j = call(&f, "POST", "/api/recording/tone/start", token, NULL, &st);
    assert_int_equal(st, 409);
    assert_non_null(strstr(str(j, "error"), file));
    json_decref(j);

    j = call(&f, "GET", "/api/status", NULL, NULL, &st);
    assert_int_equal(st, 200);
    json_t *dev = json_array_get(json_object_get(j, "devices"), 0);
    assert_string_equal(str(dev, "id"), "tone");
    assert_true(json_is_true(json_object_get(dev, "recording")));
    assert_string_equal(str(dev, "file"), file);
    assert_string_equal(str(dev, "holder"), "ipad");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(dev, "format"), "rate")),
                     48000);
    /* the original's per-id key */
    json_t *orig = json_object_get(j, "tone");
    assert_true(json_is_true(json_object_get(orig, "connected")));
    assert_true(json_is_true(json_object_get(orig, "taken")));
    assert_string_equal(str(orig, "name"), "Demo tone");
    assert_int_equal(json_object_size(orig), 3);
    assert_true(json_is_boolean(json_object_get(j, "clock_synchronised")));
    assert_non_null(str(j, "server_time"));
    assert_true(json_integer_value(json_object_get(json_object_get(j, "disk"), "free_bytes")) > 0);
    json_decref(j);

    j = call(&f, "POST", "/api/recording/tone/stop", token, NULL, &st);
    assert_int_equal(st, 200);
    assert_string_equal(str(j, "file"), file);
    assert_true(json_is_real(json_object_get(j, "seconds")));
    assert_true(json_is_integer(json_object_get(j, "lost_frames")));
    json_decref(j);

    j = call(&f, "GET", "/api/recordings", NULL, NULL, &st);
    assert_int_equal(st, 200);
    json_t *first = json_array_get(json_object_get(j, "recordings"), 0);
    assert_string_equal(str(first, "name"), file);
    assert_string_equal(str(first, "format"), "FLAC");
    json_decref(j);

    char path[400];
    snprintf(path, sizeof(path), "/api/recordings/%s", file);
    j = call(&f, "DELETE", path, "forged.x.y", NULL, &st);
    assert_int_equal(st, 401);
    json_decref(j);
    j = call(&f, "DELETE", path, token, NULL, &st);
    assert_int_equal(st, 200);
    json_decref(j);
    j = call(&f, "DELETE", path, token, NULL, &st);
    assert_int_equal(st, 404);
    json_decref(j);

    j = call(&f, "GET", "/api/recording/tone/release/x.y.z", NULL, NULL, &st);
    assert_int_equal(st, 401);
    json_decref(j);
    j = call(&f, "GET", "/api/recording/tone/release", token, NULL, &st);
    assert_int_equal(st, 200);
    assert_true(json_is_true(json_object_get(j, "state")));
    json_decref(j);
    fixture_free(&f);
}

static void test_route_errors(void **state)
{
    (void)state;
    struct route rt;
    route_parse("PUT", "/api/recording/tone/take", &rt);
    struct api_request rq = {.route = &rt};
    struct api_reply a;
    api_handle(NULL, &rq, &a);   /* no recorder needed for a refused route */
    assert_int_equal(a.status, 405);
    assert_string_equal(a.allow, "GET, POST");
    assert_non_null(strstr(a.body, "\"state\":false"));
    api_reply_free(&a);
    api_errno(&a, -ENOSPC);
    assert_int_equal(a.status, 507);
    api_reply_free(&a);
    /* every refusal of the transport has a status and a message in the API's shape */
    for (int why = API_BAD_REQUEST_LINE; why <= API_SUBSCRIBE_FAILED; why++) {
        api_refuse(&a, (enum api_refusal)why);
        assert_true(a.status >= 400 && a.status < 600);
        assert_int_equal(a.status, api_refusal_status((enum api_refusal)why));
        assert_non_null(strstr(a.body, "\"state\":false,\"token\":\"\",\"error\":\""));
        assert_true(strlen(api_refusal_message((enum api_refusal)why)) > 10);
        api_reply_free(&a);
    }
    api_refuse(&a, API_CROSS_ORIGIN);
    assert_int_equal(a.status, 403);
    api_reply_free(&a);
}

/* A device whose id is a field of the status object does not shadow that field. */
static void test_status_keys_not_shadowed(void **state)
{
    (void)state;
    struct recorder_device_status d[2] = {0};
    snprintf(d[0].id, sizeof(d[0].id), "disk");
    snprintf(d[1].id, sizeof(d[1].id), "yeti");
    snprintf(d[1].name, sizeof(d[1].name), "Yeti");
    struct recorder_status st = {.devices = d, .n_devices = 2, .disk_known = 1, .free_bytes = 7};
    json_t *j = api_json_status(&st);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "disk"),
                                                        "free_bytes")), 7);
    assert_string_equal(str(json_object_get(j, "yeti"), "name"), "Yeti");
    assert_int_equal(json_array_size(json_object_get(j, "devices")), 2);
    json_decref(j);
    /* Free space not measured yet (a hung disk): null figures, marked stale. */
    st.disk_known = 0;
    st.disk_stale = 1;
    j = api_json_status(&st);
    json_t *disk = json_object_get(j, "disk");
    assert_true(json_is_null(json_object_get(disk, "free_bytes")));
    assert_true(json_is_null(json_object_get(disk, "seconds_left")));
    assert_true(json_is_true(json_object_get(disk, "stale")));
    json_decref(j);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_control_answers),
        cmocka_unit_test(test_route_errors),
        cmocka_unit_test(test_status_keys_not_shadowed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
