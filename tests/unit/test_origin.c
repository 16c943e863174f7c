/* origin: the Host check against DNS rebinding, and the same-origin rule for requests
 * that change state (the original client's GET routes keep working from its own page
 * and from command-line clients). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "server/origin.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

static void test_hosts(void **state)
{
    (void)state;
    struct origin_policy p;
    char err[200];
    assert_int_equal(origin_policy_init(&p, "studio.lan, Recorder", err, sizeof(err)), 0);
    const char *ok[] = {NULL, "127.0.0.1", "127.0.0.1:8080", "192.168.1.20:80", "[::1]:8080",
                        "[fe80::1]", "localhost", "LOCALHOST:8080", "app.localhost:1",
                        "studio.lan", "studio.lan.:8080", "recorder", "RECORDER:9"};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
        if (!origin_host_allowed(&p, ok[i]))
            fail_msg("Host %s refused", ok[i] ? ok[i] : "(none)");
    const char *bad[] = {"evil.example", "evil.example:8080", "127.0.0.1.evil.example",
                         "localhost.evil.example", "", ":8080", "studio.lan:80x",
                         "[::1", "studio", "lan"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (origin_host_allowed(&p, bad[i]))
            fail_msg("Host %s allowed", bad[i]);
    /* this machine's own name and name.local */
    char host[256];
    assert_int_equal(gethostname(host, sizeof(host)), 0);
    host[strcspn(host, ".")] = 0;
    assert_true(origin_host_allowed(&p, host));
    strcat(host, ".local:8080");
    assert_true(origin_host_allowed(&p, host));
}

static void test_bad_names(void **state)
{
    (void)state;
    struct origin_policy p;
    char err[200];
    assert_int_equal(origin_policy_init(&p, "good, bad/name", err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "'bad/name' is not a host name"));
    assert_int_equal(origin_names_valid("a..b", err, sizeof(err)), -EINVAL);
    assert_int_equal(origin_names_valid("", err, sizeof(err)), 0);
    assert_int_equal(origin_names_valid("a b,c", err, sizeof(err)), 0);
}

static int origin_same_origin4(const char *h, const char *o, const char *sfs)
{
    return origin_same_origin(h, o, sfs, NULL);
}

static void test_same_origin(void **state)
{
    (void)state;
    /* command-line clients and old browsers: neither header */
    assert_true(origin_same_origin4("pi.local:8080", NULL, NULL));
    assert_true(origin_same_origin4(NULL, NULL, NULL));
    /* the page itself */
    assert_true(origin_same_origin4("pi.local:8080", "http://pi.local:8080", NULL));
    assert_true(origin_same_origin4("pi.local", "http://pi.local:80", NULL));
    assert_true(origin_same_origin4("PI.local:8080", "http://pi.LOCAL:8080", NULL));
    assert_true(origin_same_origin4("x", "http://elsewhere", "same-origin"));
    assert_true(origin_same_origin4("x", NULL, "none"));   /* typed in the address bar */
    /* another page */
    assert_false(origin_same_origin4("pi.local:8080", "http://evil.example", NULL));
    assert_false(origin_same_origin4("pi.local:8080", "http://pi.local:8081", NULL));
    assert_false(origin_same_origin4("pi.local:8080", "null", NULL));
    assert_false(origin_same_origin4(NULL, "http://pi.local", NULL));
    assert_false(origin_same_origin4("pi.local:8080", NULL, "cross-site"));
    assert_false(origin_same_origin4("pi.local:8080", "http://pi.local:8080", "same-site"));
    /* browsers without Sec-Fetch-Site: the Referer of a GET from another page */
    assert_false(origin_same_origin("pi.local:8080", NULL, NULL, "http://evil.example/x.html"));
    assert_true(origin_same_origin("pi.local:8080", NULL, NULL, "http://pi.local:8080/"));
    assert_true(origin_same_origin("pi.local:8080", NULL, "same-origin", "http://evil.example/"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hosts),
        cmocka_unit_test(test_bad_names),
        cmocka_unit_test(test_same_origin),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
