/* src/common parsers shared by the command line and the config: listen addresses,
 * numbers with ranges, and UTF-8 text cut on a character boundary. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "common/listen_addr.h"
#include "common/numparse.h"
#include "common/utf8.h"

#include <errno.h>
#include <string.h>

static void test_listen(void **state)
{
    (void)state;
    char host[64];
    unsigned port;
    assert_int_equal(listen_addr_parse("127.0.0.1:8080", host, sizeof host, &port), 0);
    assert_string_equal(host, "127.0.0.1");
    assert_int_equal(port, 8080);
    assert_int_equal(listen_addr_parse("[::1]:0", host, sizeof host, &port), 0);
    assert_string_equal(host, "::1");
    assert_int_equal(port, 0);
    assert_int_equal(listen_addr_parse(":9", host, sizeof host, &port), 0);
    assert_string_equal(host, "0.0.0.0");
    assert_int_equal(listen_addr_parse("8081", host, sizeof host, &port), 0);
    assert_string_equal(host, "0.0.0.0");
    assert_int_equal(port, 8081);
    const char *bad[] = {"", "localhost", "::1:80", "[::1]", "[::1]80", "[]:80", "h:65536",
                         "h:-1", "h:80x", "h: 80", "h:"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (listen_addr_parse(bad[i], host, sizeof host, &port) != -EINVAL)
            fail_msg("'%s' accepted", bad[i]);
    assert_int_equal(listen_addr_parse("a-very-long-host-name-indeed:80", host, 8, &port), -EINVAL);
}

static void test_numbers(void **state)
{
    (void)state;
    unsigned v;
    assert_int_equal(parse_uint_range("10", 1, 10, &v), 0);
    assert_int_equal(v, 10);
    assert_int_equal(parse_uint_range("11", 1, 10, &v), -ERANGE);
    assert_int_equal(parse_uint_range("0", 1, 10, &v), -ERANGE);
    assert_int_equal(parse_uint_range("-1", 0, 10, &v), -EINVAL);
    assert_int_equal(parse_uint_range(" 1", 0, 10, &v), -EINVAL);
    assert_int_equal(parse_uint_range("1k", 0, 10, &v), -EINVAL);
    assert_int_equal(parse_uint_range("", 0, 10, &v), -EINVAL);
    unsigned long long u;
    assert_int_equal(parse_ullong_range("99999999999999999999999", 0, ~0ull, &u), -ERANGE);

    /* decimals (seconds, megabytes) */
    double d;
    const char *good_d[] = {"0", "2", "0.5", "10.", "3600"};
    const double want_d[] = {0, 2, 0.5, 10, 3600};
    for (size_t i = 0; i < sizeof(good_d) / sizeof(good_d[0]); i++) {
        assert_int_equal(parse_double_range(good_d[i], 0, 3600, &d), 0);
        assert_true(d == want_d[i]);
    }
    const char *bad_d[] = {"", ".5", "-1", "1e3", "nan", "inf", "1.2.3", " 1", "1 ", "0x10", "1s"};
    for (size_t i = 0; i < sizeof(bad_d) / sizeof(bad_d[0]); i++)
        if (parse_double_range(bad_d[i], 0, 1e9, &d) != -EINVAL)
            fail_msg("decimal '%s' accepted", bad_d[i]);
    assert_int_equal(parse_double_range("3600.5", 0, 3600, &d), -ERANGE);
    assert_int_equal(parse_double_range("0.05", 0.1, 3600, &d), -ERANGE);

    /* option messages name the option and the range */
    char err[128];
    assert_int_equal(parse_option_ull("--rate", "12", 1000, 768000, &u, err, sizeof err), -ERANGE);
    assert_string_equal(err, "--rate must be a whole number 1000..768000, not '12'");
    assert_int_equal(parse_option_ull("loop", "2", 0, 1, &u, err, sizeof err), -ERANGE);
    assert_string_equal(err, "loop must be 0 or 1, not '2'");
    assert_int_equal(parse_option_double("--stall-seconds", "0", 0.1, 3600, &d, err, sizeof err),
                     -ERANGE);
    assert_string_equal(err, "--stall-seconds must be a number 0.1..3600, not '0'");
    assert_int_equal(parse_option_ull("--bits", "24", 16, 32, &u, err, sizeof err), 0);
    assert_int_equal(u, 24);
}

static void test_utf8(void **state)
{
    (void)state;
    char out[64], in[128] = "";
    for (int i = 0; i < 40; i++)
        strcat(in, "\xc3\xa9");
    assert_int_equal(utf8_copy_printable(out, sizeof out, in), 62);   /* 31 whole é */
    assert_int_equal(utf8_copy_printable(out, 4, "\xe2\x82\xac\xe2\x82\xac"), 3);
    assert_string_equal(out, "\xe2\x82\xac");
    /* control characters, C1, stray and overlong bytes, surrogates go */
    utf8_copy_printable(out, sizeof out, "a\x01" "b\x7f\xc2\x85" "c\xc0\xaf" "d\xed\xa0\x80" "e\xff");
    assert_string_equal(out, "abcde");
    assert_int_equal(utf8_copy_printable(out, sizeof out, NULL), 0);
    assert_int_equal(utf8_copy_printable(out, 1, "abc"), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_listen),
        cmocka_unit_test(test_numbers),
        cmocka_unit_test(test_utf8),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
