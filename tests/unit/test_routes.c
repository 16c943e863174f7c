/* Unit tests of the HTTP route table (src/server/routes.c) and the embedded page table. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "server/routes.h"
#include "server/static_files.h"

#include <string.h>

static struct route r;

static enum route_action parse(const char *m, const char *p)
{
    assert_int_equal(route_parse(m, p, &r), 0);
    return r.action;
}

static void expect_error(const char *m, const char *p, int status)
{
    assert_int_equal(parse(m, p), ROUTE_ERROR);
    if (r.status != status)
        fail_msg("%s %s: status %d, want %d (%s)", m, p, r.status, status, r.error);
    assert_non_null(r.error);
}

static void test_original_get_routes(void **st)
{
    (void)st;
    assert_int_equal(parse("GET", "/api/recording/scarlett/take"), ROUTE_TAKE);
    assert_string_equal(r.id, "scarlett");
    assert_string_equal(r.token, "");
    assert_false(r.needs_token);
    assert_int_equal(parse("GET", "/api/recording/yeti/renew/aa.bb.cc"), ROUTE_RENEW);
    assert_string_equal(r.id, "yeti");
    assert_string_equal(r.token, "aa.bb.cc");
    assert_true(r.needs_token);
    assert_int_equal(parse("GET", "/api/recording/yeti/release/a-b_c.d.e"), ROUTE_RELEASE);
    assert_int_equal(parse("GET", "/api/recording/yeti/start/x.y.z"), ROUTE_START);
    assert_int_equal(parse("GET", "/api/recording/yeti/stop/x.y.z"), ROUTE_STOP);
    assert_int_equal(parse("GET", "/api/status/1700000000000"), ROUTE_EVENTS);
    assert_string_equal(r.subid, "1700000000000");
    assert_int_equal(parse("GET", "/api/status"), ROUTE_STATUS);
    assert_true(r.is_api);
}

static void test_post_and_bearer_forms(void **st)
{
    (void)st;
    assert_int_equal(parse("POST", "/api/recording/tone/take"), ROUTE_TAKE);
    /* token may come from Authorization: Bearer, so the path may end at the verb */
    assert_int_equal(parse("POST", "/api/recording/tone/start"), ROUTE_START);
    assert_string_equal(r.token, "");
    assert_true(r.needs_token);
    assert_int_equal(parse("HEAD", "/api/status"), ROUTE_STATUS);
    expect_error("PUT", "/api/recording/tone/take", 405);
    assert_string_equal(r.allow, "GET, POST");
    /* HEAD must not change anything: no take, start or stop by HEAD */
    expect_error("HEAD", "/api/recording/tone/take", 405);
    expect_error("HEAD", "/api/recording/tone/stop/x.y.z", 405);
    expect_error("POST", "/api/status", 405);
}

static void test_recordings(void **st)
{
    (void)st;
    assert_int_equal(parse("GET", "/api/recordings"), ROUTE_LIST);
    assert_int_equal(parse("GET", "/api/recordings/tone_2026-11-21T19-30-00+0100.flac"),
                     ROUTE_DOWNLOAD);
    assert_string_equal(r.name, "tone_2026-11-21T19-30-00+0100.flac");
    assert_int_equal(parse("DELETE", "/api/recordings/a.flac"), ROUTE_DELETE);
    assert_true(r.needs_token);
    assert_int_equal(parse("POST", "/api/recordings/a.flac/delete"), ROUTE_DELETE);
    expect_error("GET", "/api/recordings/a.flac/delete", 405);
    expect_error("GET", "/api/recordings/a.wav", 400);
    expect_error("GET", "/api/recordings/.flac", 400);
    expect_error("GET", "/api/recordings/.hidden.flac", 400);
    expect_error("GET", "/api/recordings/a\"b.flac", 400);
    expect_error("POST", "/api/recordings", 405);
    expect_error("GET", "/api/recordings/a.flac/other", 404);
}

static void test_traversal_refused(void **st)
{
    (void)st;
    /* What libmicrohttpd hands us after decoding %2e%2e, %2f, %5c ... */
    expect_error("GET", "/../etc/passwd", 400);
    expect_error("GET", "/api/recordings/../../etc/passwd", 400);
    expect_error("GET", "/api/recordings/..", 400);
    expect_error("GET", "/api/recordings/./a.flac", 400);
    expect_error("GET", "/api/recordings/....//a.flac", 400);   /* empty segment */
    expect_error("GET", "/api/recordings/..\\..\\x.flac", 400);
    expect_error("DELETE", "/api/recordings/../state/jwt.key", 400);
    expect_error("GET", "/app.js/..", 400);
    expect_error("GET", "//etc/passwd", 400);
    expect_error("GET", "/a\x7f" "b.flac", 400);                  /* %00 after our unescaper */
    expect_error("GET", "/api/recordings/a\tb.flac", 400);
    expect_error("GET", "etc/passwd", 400);
    expect_error("GET", "", 400);
    /* static paths are names in a table: an unknown one is simply not there */
    assert_int_equal(parse("GET", "/etc/passwd"), ROUTE_STATIC);
    assert_null(static_file_find(r.name));
    assert_int_equal(parse("GET", "/....."), ROUTE_STATIC);
    assert_null(static_file_find(r.name));
}

static void test_bad_ids_tokens_lengths(void **st)
{
    (void)st;
    char big[1024];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    char path[2048];
    snprintf(path, sizeof path, "/api/recording/%.*s/take", 64, big);
    expect_error("GET", path, 404);
    expect_error("GET", "/api/recording/a%20b/take", 404);
    expect_error("GET", "/api/recording/.x/take", 404);
    expect_error("GET", "/api/recording/tone/dance/x", 404);
    expect_error("GET", "/api/recording/tone/take/extra", 404);
    expect_error("GET", "/api/recording/tone/start/not a token", 401);
    expect_error("GET", "/api/recording/tone/start/to{ken", 401);
    expect_error("GET", "/api/nothing", 404);
    expect_error("GET", "/api", 404);
    char longp[ROUTE_PATH_MAX + 10];
    memset(longp, 'b', sizeof longp - 1);
    longp[0] = '/';
    longp[sizeof longp - 1] = '\0';
    expect_error("GET", longp, 414);
    snprintf(path, sizeof path, "/api/status/%.*s", 200, big);
    expect_error("GET", path, 400);
    snprintf(path, sizeof path, "/api/recordings/%.*s.flac", 300, big);
    expect_error("GET", path, 400);
}

static void test_static(void **st)
{
    (void)st;
    assert_int_equal(parse("GET", "/"), ROUTE_STATIC);
    assert_string_equal(r.name, "/index.html");
    assert_false(r.is_api);
    const struct web_asset *a = static_file_find(r.name);
    assert_non_null(a);
    assert_true(a->size > 0);
    assert_string_equal(a->content_type, "text/html; charset=utf-8");
    assert_int_equal(a->data[a->size], 0);    /* the .S appends a NUL after each file */
    expect_error("POST", "/", 405);
    assert_int_equal(parse("GET", "/apix"), ROUTE_STATIC);  /* not the API prefix */
    size_t n = 0;
    const struct web_asset *t = static_file_table(&n);
    assert_true(n >= 1);
    for (size_t i = 0; i < n; i++)
        assert_ptr_equal(static_file_find(t[i].path), &t[i]);
}

static void test_mask(void **st)
{
    (void)st;
    char out[256];
    route_mask_path("/api/recording/tone/start/eyJhbGciOi.x.y", out, sizeof out);
    assert_string_equal(out, "/api/recording/tone/start/***");
    route_mask_path("/api/recording/tone/take", out, sizeof out);
    assert_string_equal(out, "/api/recording/tone/take");
    route_mask_path("/api/status", out, sizeof out);
    assert_string_equal(out, "/api/status");
    route_mask_path("/api/record_all/start/eyJhbGciOi.x.y", out, sizeof out);
    assert_string_equal(out, "/api/record_all/start/***");
}

static void test_record_all(void **st)
{
    (void)st;
    assert_int_equal(parse("GET", "/api/record_all/start/a.b.c"), ROUTE_START_ALL);
    assert_string_equal(r.token, "a.b.c");
    assert_true(r.needs_token);
    assert_int_equal(parse("POST", "/api/record_all/stop"), ROUTE_STOP_ALL);
    assert_string_equal(r.token, "");
    assert_true(r.needs_token);
    expect_error("GET", "/api/record_all/pause/a.b.c", 404);
    expect_error("DELETE", "/api/record_all/start/a.b.c", 405);
    expect_error("GET", "/api/record_all/start/a b", 401);
    expect_error("GET", "/api/record_all", 404);
}

static void test_request_lines(void **st)
{
    (void)st;
    const char *ok[] = {"GET / HTTP/1.1\r\n", "POST /api/recording/x/take HTTP/1.0\n",
                        "DELETE /api/recordings/a.flac?token=x HTTP/1.1\r\n"};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        assert_true(route_request_line_ok(ok[i], strlen(ok[i])));
    const char *bad[] = {"GARBAGE\r\n", "GET\r\n", "GET /\r\n", "get / HTTP/1.1\r\n",
                         "GET  / HTTP/1.1\r\n", "GET / HTTP/1.1 x\r\n", "GET / FTP/1.1\r\n",
                         "\x16\x03\x01 / HTTP/1.1\r\n", "GET / HTTP/1.1", "GET /\x01 HTTP/1.1\r\n",
                         "ABCDEFGHIJKLMNOPQ / HTTP/1.1\r\n"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (route_request_line_ok(bad[i], strlen(bad[i])))
            fail_msg("accepted %s", bad[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request_lines),
        cmocka_unit_test(test_original_get_routes),
        cmocka_unit_test(test_post_and_bearer_forms),
        cmocka_unit_test(test_recordings),
        cmocka_unit_test(test_traversal_refused),
        cmocka_unit_test(test_bad_ids_tokens_lengths),
        cmocka_unit_test(test_static),
        cmocka_unit_test(test_mask),
        cmocka_unit_test(test_record_all),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
