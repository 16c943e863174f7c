/* Unit tests of the record module's URL parser (src/record/url.c): every accepted form,
 * and a long list of malformed ones that must each be rejected with one log line. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "common/log.h"
#include "record/url.h"

static int log_lines;
static char last_line[1024];

static void capture(int level, const char *line, void *arg)
{
    (void)level;
    (void)arg;
    log_lines++;
    snprintf(last_line, sizeof last_line, "%s", line);
}

static int setup(void **state)
{
    (void)state;
    plog_set_sink(capture, NULL);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    plog_set_sink(NULL, NULL);
    return 0;
}

static struct rec_url u;

static void ok(const char *s, enum rec_url_role role)
{
    log_lines = 0;
    int rc = rec_url_parse(s, role, &u);
    if (rc)
        print_error("should be accepted: \"%s\" (%s)\n", s, last_line);
    assert_int_equal(rc, 0);
    assert_int_equal(log_lines, 0);
}

/* Rejected with exactly one line that contains `why`. */
static void bad(const char *s, enum rec_url_role role, const char *why)
{
    log_lines = 0;
    last_line[0] = 0;
    int rc = rec_url_parse(s, role, &u);
    if (rc == 0)
        print_error("should be rejected: \"%s\"\n", s);
    assert_true(rc == -EINVAL || rc == -ENAMETOOLONG);
    assert_int_equal(log_lines, 1);
    if (!strstr(last_line, why))
        print_error("\"%s\": message \"%s\" does not say \"%s\"\n", s, last_line, why);
    assert_non_null(strstr(last_line, why));
}

static void test_valid_sources(void **state)
{
    (void)state;
    ok("ringbuffer://handle=403913384", REC_URL_SOURCE);
    assert_int_equal(u.kind, REC_URL_RING);
    assert_int_equal(u.addr, 403913384);
    if (UINTPTR_MAX < UINT64_MAX) { /* 32-bit (armhf): a wider address is refused, not cut */
        bad("ringbuffer://handle=0x7ffd12345678", REC_URL_SOURCE, "wider than a pointer");
        bad("ringbuffer://handle=18446744073709551608", REC_URL_SOURCE, "wider than a pointer");
        ok("ringbuffer://handle=0XFFFFFFF8", REC_URL_SOURCE);
        assert_true(u.addr == 0xFFFFFFF8ULL);
    } else {
        ok("ringbuffer://handle=0x7ffd12345678", REC_URL_SOURCE);
        assert_int_equal(u.addr, 0x7ffd12345678ULL);
        ok("ringbuffer://handle=0XFFFFFFFFFFFFFFF8", REC_URL_SOURCE);
        assert_true(u.addr == 0xFFFFFFFFFFFFFFF8ULL);
        ok("ringbuffer://handle=18446744073709551608", REC_URL_SOURCE); /* 2^64 - 8 */
        assert_true(u.addr == 18446744073709551608ULL);
    }
    ok("mem://address=403913384&size=1024", REC_URL_SOURCE);
    assert_int_equal(u.kind, REC_URL_MEM);
    assert_int_equal(u.addr, 403913384);
    assert_int_equal(u.size, 1024);
    ok("mem://size=0x10&address=0x1000", REC_URL_SOURCE); /* key order is free */
    assert_int_equal(u.addr, 0x1000);
    assert_int_equal(u.size, 16);
    ok("file:///tmp/in.raw", REC_URL_SOURCE);
    assert_int_equal(u.kind, REC_URL_FILE);
    assert_string_equal(u.path, "/tmp/in.raw");
    ok("file://relative/in.raw", REC_URL_SOURCE);
    assert_string_equal(u.path, "relative/in.raw");
    ok("file:///tmp/My Take.wav", REC_URL_SOURCE); /* spaces inside a path are a file name's business */
    assert_string_equal(u.path, "/tmp/My Take.wav");
    ok("sdbuffer://handle=/data/rec.pcm", REC_URL_SOURCE);
    assert_int_equal(u.kind, REC_URL_FILE);
    assert_string_equal(u.path, "/data/rec.pcm");
}

static void test_valid_sinks(void **state)
{
    (void)state;
    ok("ws://192.168.1.102:9090/mic.pcm", REC_URL_SINK);
    assert_int_equal(u.kind, REC_URL_WS);
    assert_string_equal(u.ws.host, "192.168.1.102");
    assert_int_equal(u.ws.port, 9090);
    assert_string_equal(u.ws.path, "/mic.pcm");
    assert_string_equal(u.ws.name, "mic.pcm");
    assert_int_equal(u.ws.tls, 0);
    ok("ws://example.org/a/b/1700000000_mic_take1", REC_URL_SINK);
    assert_int_equal(u.ws.port, 80);
    assert_string_equal(u.ws.path, "/a/b/1700000000_mic_take1");
    assert_string_equal(u.ws.name, "1700000000_mic_take1");
    ok("wss://rec.example.org/x", REC_URL_SINK);
    assert_int_equal(u.ws.tls, 1);
    assert_int_equal(u.ws.port, 443);
    ok("ws://[::1]:8080/mic", REC_URL_SINK);
    assert_string_equal(u.ws.host, "::1");
    assert_int_equal(u.ws.port, 8080);
    ok("ws://[fe80::1:2]/mic", REC_URL_SINK);
    assert_int_equal(u.ws.port, 80);
    ok("ws://h:1/n", REC_URL_SINK);
    ok("ws://h:65535/n", REC_URL_SINK);
    assert_int_equal(u.ws.port, 65535);
    ok("ws://h/Aufnahme_\xc3\xbc" "ber_\xe2\x99\xab", REC_URL_SINK);   /* UTF-8 names, like the original */
    ok("WS://host/name", REC_URL_SINK);
    ok("file:///tmp/out.raw", REC_URL_SINK);
    ok("ringbuffer://handle=4096", REC_URL_SINK);
    ok("mem://address=4096&size=1", REC_URL_SINK);
}

static void test_numbers(void **state)
{
    (void)state;
    uint64_t v;
    assert_int_equal(rec_url_parse_u64("18446744073709551615", 20, &v), 0);
    assert_true(v == UINT64_MAX);
    assert_int_equal(rec_url_parse_u64("18446744073709551616", 20, &v), -ERANGE);
    assert_int_equal(rec_url_parse_u64("0xffffffffffffffff", 18, &v), 0);
    assert_true(v == UINT64_MAX);
    assert_int_equal(rec_url_parse_u64("0x10000000000000000", 19, &v), -ERANGE);
    assert_int_equal(rec_url_parse_u64("0x0000000000000000001", 21, &v), 0); /* leading zeros */
    assert_int_equal(v, 1);
    assert_int_equal(rec_url_parse_u64("0x", 2, &v), -EINVAL);
    assert_int_equal(rec_url_parse_u64("", 0, &v), -EINVAL);
    assert_int_equal(rec_url_parse_u64("-1", 2, &v), -EINVAL);
    assert_int_equal(rec_url_parse_u64("+1", 2, &v), -EINVAL);
    assert_int_equal(rec_url_parse_u64("1 ", 2, &v), -EINVAL);
}

static void test_rejected(void **state)
{
    (void)state;
    const enum rec_url_role S = REC_URL_SOURCE, K = REC_URL_SINK;
    /* scheme */
    bad("", S, "empty");
    bad("ringbuffer:/handle=4096", S, "no scheme");
    bad("://handle=4096", S, "no scheme");
    bad("ringbuf://handle=4096", S, "unknown source scheme");
    bad("xmem://address=4096&size=1", S, "unknown source scheme");
    bad("http://host/name", K, "unknown sink scheme");
    bad("ws://host/name", S, "can only be a sink");
    bad("wss://host/name", S, "can only be a sink");
    bad("sdbuffer://handle=/tmp/x", K, "source");
    bad("sdbuffer:///tmp/x", S, "sdbuffer://handle=");
    /* keys */
    bad("ringbuffer://", S, "nothing after");
    bad("ringbuffer://handle", S, "not key=value");
    bad("ringbuffer://handle=", S, "no value");
    bad("ringbuffer://handle=4096&handle=4096", S, "twice");
    bad("ringbuffer://handle=4096&x=1", S, "unknown key");
    bad("ringbuffer://handle=4096&", S, "not key=value");
    bad("ringbuffer://hdl=4096", S, "unknown key");
    bad("ringbuffer://HANDLE=4096", S, "unknown key");
    bad("mem://address=4096", S, "missing key \"size\"");
    bad("mem://size=4", S, "missing key \"address\"");
    bad("mem://address=4096&size=4&size=4", S, "twice");
    bad("mem://address=4096&size=4&extra=1", S, "unknown key");
    bad("mem://address=4096;size=4", S, "missing key \"size\"");
    /* numbers */
    bad("ringbuffer://handle=12abc", S, "decimal or 0x-hex");
    bad("ringbuffer://handle=abc", S, "decimal or 0x-hex");
    bad("ringbuffer://handle=-4096", S, "decimal or 0x-hex");
    bad("ringbuffer://handle=+4096", S, "decimal or 0x-hex");
    bad("ringbuffer://handle=0x", S, "decimal or 0x-hex");
    bad("ringbuffer://handle=0xg000", S, "decimal or 0x-hex");
    bad("ringbuffer://handle=4096 ", S, "trailing space");
    bad("ringbuffer://handle= 4096", S, "spaces");
    bad("ringbuffer://handle=18446744073709551616", S, "64 bits");
    bad("ringbuffer://handle=0x1ffffffffffffffff", S, "64 bits");
    bad("ringbuffer://handle=99999999999999999999999999", S, "64 bits");
    bad("ringbuffer://handle=0", S, "address is 0");
    bad("ringbuffer://handle=0x0", S, "address is 0");
    bad("ringbuffer://handle=4097", S, "aligned");
    bad("mem://address=0&size=4", S, "address is 0");
    bad("mem://address=4096&size=0", S, "size is 0");
    bad(UINTPTR_MAX < UINT64_MAX ? "mem://address=0xfffffff0&size=0x100"
                                 : "mem://address=0xfffffffffffffff0&size=0x100", S, "wraps");
    bad("mem://address=4096&size=1e3", S, "decimal or 0x-hex");
    /* files */
    bad("file://", S, "path is empty");
    bad("file://", K, "path is empty");
    bad("sdbuffer://handle=", S, "path is empty");
    bad("file:///tmp/a\tb", S, "control character");
    bad("file:///tmp/a\nb", K, "control character");
    bad(" file:///tmp/x", S, "leading or trailing space");
    /* ws */
    bad("ws://host:99999/x", K, "1..65535");
    bad("ws://host:0/x", K, "1..65535");
    bad("ws://host:65536/x", K, "1..65535");
    bad("ws://host:/x", K, "without a port");
    bad("ws://host:80a/x", K, "decimal number");
    bad("ws://host:-1/x", K, "decimal number");
    bad("ws://host/", K, "no stream name");
    bad("ws://host", K, "no stream name");
    bad("ws:///name", K, "host is empty");
    bad("ws://host/dir/", K, "no stream name");
    bad("ws://host/name?x=1", K, "queries");
    bad("ws://host/name#frag", K, "queries");
    bad("ws://host/na me", K, "spaces");
    bad("ws://ho st/name", K, "spaces");
    bad("ws://host/a%00b", K, "percent");
    bad("ws://host/..", K, "name starts with '.'");
    bad("ws://host/.hidden", K, "name starts with '.'");
    bad("ws://host/mic.losses", K, ".losses");            /* the same rule as pirec ingest */
    bad("ws://host/a\xff\xfe" "b", K, "not valid UTF-8");
    bad("ws://host/a\xc0\xaf" "b", K, "not valid UTF-8");    /* overlong '/' */
    bad("ws://host/a\\b", K, "bad character");
    bad("ws://user:secret@host/name", K, "user names or passwords");
    bad("ws://[::1/name", K, "missing its ']'");
    bad("ws://[]/name", K, "empty IPv6");
    bad("ws://[::1]x/name", K, "junk after the host");
    bad("ws://[127.0.0.1]/name", K, "only for IPv6");
    bad("ws://[::g]/name", K, "IPv6 host");
    bad("ws://ho$t/name", K, "bad character");
    /* the credentials never reach the log */
    bad("ws://user:secret@host/name", K, "user names");
    assert_null(strstr(last_line, "secret"));
}

static void test_overlong(void **state)
{
    (void)state;
    static char big[REC_URL_MAX + 100];
    /* total length */
    memset(big, 'a', sizeof big - 1);
    memcpy(big, "file:///", 8);
    big[sizeof big - 1] = 0;
    bad(big, REC_URL_SOURCE, "longer than");
    /* a host too long for the target buffer must be refused, not truncated */
    char host[400];
    memset(host, 'h', 300);
    host[300] = 0;
    snprintf(big, sizeof big, "ws://%s/name", host);
    bad(big, REC_URL_SINK, "host is longer");
    /* a name of 256 bytes does not fit the 255-byte limit */
    char name[300];
    memset(name, 'n', 256);
    name[256] = 0;
    snprintf(big, sizeof big, "ws://h/%s", name);
    bad(big, REC_URL_SINK, "name is longer");
    name[255] = 0;
    snprintf(big, sizeof big, "ws://h/%s", name);
    ok(big, REC_URL_SINK);
    assert_int_equal(strlen(u.ws.name), 255);
    /* a path longer than the upgrade request's buffer */
    char path[1200];
    path[0] = '/';
    memset(path + 1, 'd', 1100);
    memcpy(path + 1101, "/x", 3);
    snprintf(big, sizeof big, "ws://h%s", path);
    bad(big, REC_URL_SINK, "path is longer");
}

/* A NUL in the middle of a buffer ends the C string: what follows is never seen, so a
 * caller cannot smuggle a second URL behind a valid one; the prefix alone is judged. */
static void test_nul_truncation(void **state)
{
    (void)state;
    const char trick[] = "ws://host/\0mic";
    bad(trick, REC_URL_SINK, "no stream name");
    const char trick2[] = "ringbuffer://handle=\0" "4096";
    bad(trick2, REC_URL_SOURCE, "no value");
    assert_int_equal(rec_url_parse(NULL, REC_URL_SOURCE, &u), -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_sources),
        cmocka_unit_test(test_valid_sinks),
        cmocka_unit_test(test_numbers),
        cmocka_unit_test(test_rejected),
        cmocka_unit_test(test_overlong),
        cmocka_unit_test(test_nul_truncation),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
