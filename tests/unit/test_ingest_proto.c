/* Unit tests of src/ingest/proto.c: names, message split, control messages, --listen. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "ingest/proto.h"

#include <errno.h>
#include <string.h>

static void test_names(void **state)
{
    (void)state;
    const char *why = NULL;
    assert_int_equal(wsproto_name_check("mic", 3, &why), 0);
    assert_int_equal(wsproto_name_check("take 1.flac", 11, &why), 0);
    assert_int_equal(wsproto_name_check("caf\xc3\xa9", 5, &why), 0); /* UTF-8 is fine */
    char n255[255];
    memset(n255, 'a', sizeof n255);
    assert_int_equal(wsproto_name_check(n255, 255, &why), 0);

    struct { const char *n; size_t len; const char *why; } bad[] = {
        {"", 0, "empty"},
        {"a/b", 3, "'/'"},
        {"/", 1, "'/'"},
        {".", 1, "'.'"},
        {"..", 2, "'.'"},
        {".hidden", 7, "'.'"},
        {"a\0b", 3, "NUL"},
        {"a\tb", 3, "control"},
        {"a\x7f", 2, "control"},
        {"\x1b[31m", 5, "control"},
        {"mic.losses", 10, ".losses"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        why = NULL;
        assert_int_equal(wsproto_name_check(bad[i].n, bad[i].len, &why), -EINVAL);
        assert_non_null(why);
        assert_non_null(strstr(why, bad[i].why));
    }
    char n256[256];
    memset(n256, 'a', sizeof n256);
    assert_int_equal(wsproto_name_check(n256, 256, &why), -EINVAL);
    assert_non_null(strstr(why, "255"));
}

static void test_escape(void **state)
{
    (void)state;
    char out[64];
    wsproto_name_escape("a\x1b[0m\n'\\", 8, out, sizeof out);
    assert_string_equal(out, "a\\x1b[0m\\x0a\\'\\\\");
    wsproto_name_escape("\xff", 1, out, sizeof out);
    assert_string_equal(out, "\\xff");
    /* Cut to fit, marked with "..." and always terminated. */
    char small[12];
    wsproto_name_escape("abcdefghijklmnop", 16, small, sizeof small);
    assert_string_equal(small, "abcdefgh...");
}

static void test_split(void **state)
{
    (void)state;
    const char *name, *why;
    size_t nlen, dlen;
    const void *data;
    assert_int_equal(wsproto_split_message("mic\0PCM", 7, &name, &nlen, &data, &dlen, &why), 0);
    assert_int_equal(nlen, 3);
    assert_memory_equal(name, "mic", 3);
    assert_int_equal(dlen, 3);
    assert_memory_equal(data, "PCM", 3);
    /* Empty data is a valid (empty) message. */
    assert_int_equal(wsproto_split_message("mic", 4, &name, &nlen, &data, &dlen, &why), 0);
    assert_int_equal(dlen, 0);
    /* No NUL at all. */
    assert_int_equal(wsproto_split_message("micPCM", 6, &name, &nlen, &data, &dlen, &why),
                     -EINVAL);
    assert_non_null(strstr(why, "NUL"));
    /* A NUL beyond byte 256 does not count: the name would be too long anyway. */
    char big[400];
    memset(big, 'n', sizeof big);
    big[300] = '\0';
    assert_int_equal(wsproto_split_message(big, sizeof big, &name, &nlen, &data, &dlen, &why),
                     -EINVAL);
    assert_non_null(strstr(why, "256"));
    /* Bad names are caught. */
    assert_int_equal(wsproto_split_message("../x\0d", 6, &name, &nlen, &data, &dlen, &why),
                     -EINVAL);
    assert_int_equal(wsproto_split_message("\0d", 2, &name, &nlen, &data, &dlen, &why), -EINVAL);
}

static void test_ctl(void **state)
{
    (void)state;
    struct wsproto_ctl c;
    char err[256];
#define PARSE(s) wsproto_ctl_parse(s, strlen(s), &c, err, sizeof err)
    assert_int_equal(PARSE("{\"op\":\"stat\",\"name\":\"mic\"}"), 0);
    assert_int_equal(c.op, WSPROTO_OP_STAT);
    assert_string_equal(c.name, "mic");
    assert_int_equal(PARSE(" {\"name\":\"m\",\"op\":\"stat\"} "), 0);
    assert_int_equal(PARSE("{\"op\":\"loss\",\"name\":\"mic\",\"at\":9007199254740993,"
                           "\"bytes\":2560}"), 0);
    assert_int_equal(c.op, WSPROTO_OP_LOSS);
    assert_true(c.at == 9007199254740993ull); /* beyond a double's precision */
    assert_int_equal(c.bytes, 2560);

    const char *bad[] = {
        "", "nope", "[]", "{}", "{\"op\":1}", "{\"op\":\"stat\"}",
        "{\"op\":\"stat\",\"name\":\"mic\",\"x\":0}",
        "{\"op\":\"stat\",\"name\":\"mic\",\"op\":\"stat\"}",
        "{\"op\":\"stat\",\"name\":\"\"}", "{\"op\":\"stat\",\"name\":\"a/b\"}",
        "{\"op\":\"stat\",\"name\":\"a\\u0000\"}", "{\"op\":\"stat\",\"name\":null}",
        "{\"op\":\"loss\",\"name\":\"m\",\"at\":-1,\"bytes\":1}",
        "{\"op\":\"loss\",\"name\":\"m\",\"at\":1,\"bytes\":\"1\"}",
        "{\"op\":\"loss\",\"name\":\"m\",\"at\":1.0,\"bytes\":1}",
        "{\"op\":\"ack\",\"name\":\"m\",\"size\":1}",
        "{\"op\":\"stat\",\"name\":\"m\"}{}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        if (PARSE(bad[i]) != -EINVAL)
            fail_msg("accepted: %s", bad[i]);
        assert_true(err[0] != '\0');
    }
#undef PARSE
    char out[128];
    int n = wsproto_ctl_format("ack", "mic", 123456789012ull, out, sizeof out);
    assert_true(n > 0);
    assert_string_equal(out, "{\"op\":\"ack\",\"name\":\"mic\",\"size\":123456789012}");
    assert_int_equal(wsproto_ctl_format("ack", "mic", 1, out, 10), -ENOSPC);
}

static void test_listen(void **state)
{
    (void)state;
    char host[64], err[256];
    int port, v6;
#define L(s) ingest_parse_listen(s, host, sizeof host, &port, &v6, err, sizeof err)
    assert_int_equal(L("0.0.0.0:9090"), 0);
    assert_string_equal(host, "0.0.0.0");
    assert_int_equal(port, 9090);
    assert_int_equal(v6, 0);
    assert_int_equal(L("[::1]:0"), 0);
    assert_string_equal(host, "::1");
    assert_int_equal(port, 0);
    assert_int_equal(v6, 1);
    assert_int_equal(L(":65535"), 0);
    assert_string_equal(host, "");
    assert_int_equal(L("9090"), 0);   /* the shared grammar (common/listen_addr.h) */
    assert_string_equal(host, "");
    assert_int_equal(port, 9090);
    const char *bad[] = {"", "1.2.3.4", "1.2.3.4:", "1.2.3.4:65536", "1.2.3.4:-1",
                         "1.2.3.4:+1", "1.2.3.4: 1", "1.2.3.4:1x", "::1:80", "[::1]80", "[]:1",
                         "[1.2.3.4]:1", "localhost:80", "1.2.3:80"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        if (L(bad[i]) != -EINVAL)
            fail_msg("accepted --listen %s", bad[i]);
        assert_non_null(strstr(err, "--listen") ? err : strstr(err, "empty"));
    }
#undef L
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names),  cmocka_unit_test(test_escape),
        cmocka_unit_test(test_split),  cmocka_unit_test(test_ctl),
        cmocka_unit_test(test_listen),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
