/* config: defaults, a full file, and that each mistake names FILE:LINE and the problem. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "server/config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir[64];
static char path[128];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/pirec-cfg-XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    snprintf(path, sizeof(path), "%s/pirec.ini", dir);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    unlink(path);
    rmdir(dir);
    return 0;
}

static void write_file(const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void test_defaults(void **state)
{
    (void)state;
    struct server_config c;
    setenv("HOME", "/home/someone", 1);
    unsetenv("XDG_STATE_HOME");
    config_defaults(&c);
    assert_string_equal(c.listen, "0.0.0.0:8080");
    assert_string_equal(c.recordings, "./recordings");
    assert_string_equal(c.state_dir, "/home/someone/.local/state/pirec");
    assert_int_equal(c.lease_seconds, 300);
    assert_int_equal(c.preroll_seconds, 5);
    assert_int_equal(c.max_take_seconds, 21600);
    assert_int_equal(c.min_free_bytes, 256ull << 20);
    assert_int_equal(c.flush_ms, 2000);
    assert_string_equal(c.name_pattern, "%D_%Y-%m-%dT%H-%M-%S%z");
    assert_string_equal(c.proc_asound, "/proc/asound");
    assert_int_equal(c.demo, 0);
    assert_int_equal(c.n_devices, 0);
    setenv("XDG_STATE_HOME", "/xdg/state", 1);
    config_defaults(&c);
    assert_string_equal(c.state_dir, "/xdg/state/pirec");
    unsetenv("XDG_STATE_HOME");
    if (geteuid() == 0) {
        char *old = getenv("HOME") ? strdup(getenv("HOME")) : NULL;
        unsetenv("HOME");
        config_defaults(&c);
        assert_string_equal(c.state_dir, "/var/lib/pirec");
        if (old)
            setenv("HOME", old, 1);
        free(old);
    }
}

static void test_full_file(void **state)
{
    (void)state;
    setenv("HOME", "/home/pianist", 1);
    write_file("; pirec test configuration\n"
               "[server]\n"
               "listen = 127.0.0.1:9090\n"
               "recordings = ~/takes\n"
               "state_dir = /var/lib/x\n"
               "lease_seconds = 60\n"
               "preroll_seconds = 10\n"
               "max_take_seconds = 0\n"
               "min_free_mb = 1G\n"
               "flush_ms = 500\n"
               "name_pattern = %D-%Y%m%d\n"
               "proc_asound = /tmp/fake-asound\n"
               "demo = yes\n"
               "allowed_hosts = studio.lan, recorder\n"
               "max_connections = 100\n"
               "max_connections_per_client = 10\n"
               "max_event_streams = 20\n"
               "max_event_streams_per_client = 3\n"
               "header_timeout_seconds = 5\n"
               "\n"
               "[device scarlett]\n"
               "pcm = hw:CARD=USB\n"
               "format = S32_LE\n"
               "rate = 192000\n"
               "channels = 2\n"
               "bits = 24\n"
               "[device yeti]\n"
               "pcm = hw:CARD=Microphone   ; inline comment\n"
               "format = s16_le\n");
    struct server_config c;
    config_defaults(&c);
    char err[512];
    assert_int_equal(config_load(path, &c, err, sizeof(err)), 0);
    assert_string_equal(err, "");
    assert_string_equal(c.listen, "127.0.0.1:9090");
    assert_string_equal(c.recordings, "/home/pianist/takes");
    assert_string_equal(c.state_dir, "/var/lib/x");
    assert_int_equal(c.lease_seconds, 60);
    assert_int_equal(c.preroll_seconds, 10);
    assert_int_equal(c.max_take_seconds, 0);
    assert_int_equal(c.min_free_bytes, 1ull << 30);
    assert_int_equal(c.flush_ms, 500);
    assert_string_equal(c.name_pattern, "%D-%Y%m%d");
    assert_string_equal(c.proc_asound, "/tmp/fake-asound");
    assert_int_equal(c.demo, 1);
    assert_string_equal(c.allowed_hosts, "studio.lan, recorder");
    assert_int_equal(c.max_connections, 100);
    assert_int_equal(c.max_connections_per_client, 10);
    assert_int_equal(c.max_event_streams, 20);
    assert_int_equal(c.max_event_streams_per_client, 3);
    assert_int_equal(c.header_timeout_seconds, 5);
    assert_int_equal(c.n_devices, 2);
    assert_string_equal(c.devices[0].id, "scarlett");
    assert_string_equal(c.devices[0].pcm, "hw:CARD=USB");
    assert_int_equal(c.devices[0].format.sample, SF_S32_LE);
    assert_int_equal(c.devices[0].format.rate, 192000);
    assert_int_equal(c.devices[0].format.channels, 2);
    assert_int_equal(c.devices[0].bits, 24);
    assert_string_equal(c.devices[1].id, "yeti");
    assert_string_equal(c.devices[1].pcm, "hw:CARD=Microphone");
    assert_int_equal(c.devices[1].format.sample, SF_S16_LE);
    assert_int_equal(c.devices[1].format.rate, 0);   /* device's best */

    /* Booleans in every spelling. */
    const char *t[] = {"true", "yes", "1", "TRUE"}, *f[] = {"false", "no", "0", "No"};
    char text[128];
    for (int i = 0; i < 4; i++) {
        snprintf(text, sizeof(text), "[server]\ndemo = %s\n", t[i]);
        write_file(text);
        config_defaults(&c);
        assert_int_equal(config_load(path, &c, err, sizeof(err)), 0);
        assert_int_equal(c.demo, 1);
        snprintf(text, sizeof(text), "[server]\ndemo = %s\n", f[i]);
        write_file(text);
        c.demo = 1;
        assert_int_equal(config_load(path, &c, err, sizeof(err)), 0);
        assert_int_equal(c.demo, 0);
    }
    /* An empty file is fine: all defaults. */
    write_file("");
    config_defaults(&c);
    assert_int_equal(config_load(path, &c, err, sizeof(err)), 0);
    assert_int_equal(c.lease_seconds, 300);
}

/* Loads text and checks the message is "PATH:LINE: ..." and contains `what`. */
static void expect_error(const char *text, int line, const char *what)
{
    write_file(text);
    struct server_config c;
    config_defaults(&c);
    char err[512], prefix[256];
    assert_int_equal(config_load(path, &c, err, sizeof(err)), -EINVAL);
    snprintf(prefix, sizeof(prefix), "%s:%d: ", path, line);
    if (strncmp(err, prefix, strlen(prefix)) != 0 || !strstr(err, what)) {
        print_error("got '%s', wanted prefix '%s' and '%s'\n", err, prefix, what);
        fail();
    }
}

static void test_errors_name_line_and_problem(void **state)
{
    (void)state;
    expect_error("[server]\nlisten = 0.0.0.0:8080\n\nrate = 48000\n", 4,
                 "unknown key 'rate' in [server]");
    expect_error("[server]\n[sever]\nlisten = 1\n", 3, "unknown section [sever]");
    expect_error("[device x]\npcm = hw:0\nrate = 19k\n", 3, "rate: '19k' is not a number of Hz");
    expect_error("[device x]\npcm = hw:0\nrate = 48000.0\n", 3, "rate: '48000.0'");
    expect_error("[device x]\npcm = hw:0\nrate = -48000\n", 3, "rate: '-48000'");
    expect_error("[device x]\npcm = hw:0\nchannels = 33\n", 3, "channels: '33'");
    expect_error("[device x]\npcm = hw:0\nformat = FLOAT\n", 3, "format: 'FLOAT' is not one of");
    expect_error("[device x]\npcm = hw:0\nbits = 20\n", 3, "bits: '20'");
    expect_error("[device x]\npcm = hw:0\nvolume = 3\n", 3, "unknown key 'volume' in [device x]");
    expect_error("[server]\ndemo = maybe\n", 2, "demo: 'maybe' is not true/false");
    expect_error("[server]\nlease_seconds = 5 minutes\n", 2, "lease_seconds: '5 minutes'");
    expect_error("[server]\nlease_seconds = 0\n", 2, "lease_seconds: '0'");
    expect_error("[server]\nlease_seconds = 99999999999999999999999\n", 2, "lease_seconds");
    expect_error("[server]\nmin_free_mb = lots\n", 2, "min_free_mb: 'lots'");
    expect_error("[server]\nmin_free_mb = 5X\n", 2, "min_free_mb: '5X'");
    expect_error("[server]\nflush_ms = 10\n", 2, "flush_ms: '10'");
    expect_error("[server]\nlisten = localhost\n", 2, "listen: 'localhost'");
    expect_error("[server]\nlisten = [::1]:http\n", 2, "listen: '[::1]:http'");
    expect_error("[server]\nname_pattern = a/b\n", 2, "name_pattern");
    expect_error("[server]\nallowed_hosts = good, evil/x\n", 2,
                 "allowed_hosts: 'evil/x' is not a host name");
    expect_error("[server]\nmax_connections = 2\n", 2, "max_connections: '2' is not a number from 4");
    expect_error("[server]\nheader_timeout_seconds = 0\n", 2, "header_timeout_seconds: '0'");
    expect_error("[server]\nmax_event_streams_per_client = lots\n", 2,
                 "max_event_streams_per_client: 'lots'");
    expect_error("[server]\nmax_bogus = 1\n", 2, "unknown key 'max_bogus' in [server]");
    expect_error("[server]\nrecordings =\n", 2, "recordings: the path is empty");
    expect_error("[device ../x]\npcm = hw:0\n", 2, "not a usable device id");
    expect_error("[device a]\npcm = hw:0\n[device b]\npcm = hw:1\n[device a]\nrate = 48000\n", 6,
                 "[device a] appears twice");
    expect_error("; comment\n[device a]\nrate = 48000\n", 3, "[device a] has no pcm");
    /* Syntax errors inih finds itself. */
    expect_error("[server]\nlisten 8080\n", 2, "syntax error");
    expect_error("[server\nlisten = 8080\n", 1, "syntax error");
    /* The first of two problems is the one reported. */
    expect_error("[server]\nflush_ms = 1\ndemo = maybe\n", 2, "flush_ms");
    expect_error("[server]\nbogus\ndemo = maybe\n", 2, "syntax error");
    expect_error("[server]\ndemo = maybe\nbogus\n", 2, "demo");
    /* Long lines do not shift the line count. */
    char text[2048];
    memset(text, 0, sizeof(text));
    strcpy(text, "[server]\n; ");
    memset(text + strlen(text), 'x', 600);
    strcat(text, "\nflush_ms = 1\n");
    expect_error(text, 3, "flush_ms");
}

/* [forward], per-device forward, gap_fill: values and the mistakes a user makes. */
static void test_forward_and_gap_fill(void **state)
{
    (void)state;
    struct server_config c;
    char err[512];
    config_defaults(&c);
    assert_int_equal(c.gap_fill, 1);
    assert_string_equal(c.forward_url, "");
    assert_true(c.forward_recorder[0] != 0);
    write_file("[server]\ngap_fill = false\n[forward]\nurl = ws://nas.local:9090/\n"
               "recorder = stage-pi\n[device a]\npcm = tone\nforward = off\n"
               "[device b]\npcm = tone\nforward = wss://[::1]:9443/pirec/\n[device c]\npcm = tone\n");
    assert_int_equal(config_load(path, &c, err, sizeof(err)), 0);
    assert_int_equal(c.gap_fill, 0);
    assert_string_equal(c.forward_recorder, "stage-pi");
    assert_string_equal(config_forward_url(&c, "a"), "");
    assert_string_equal(config_forward_url(&c, "b"), "wss://[::1]:9443/pirec/");
    assert_string_equal(config_forward_url(&c, "c"), "ws://nas.local:9090/");
    assert_string_equal(config_forward_url(&c, "hotplugged"), "ws://nas.local:9090/");
    expect_error("[forward]\nurl = ws://nas:9090\n", 2, "url: 'ws://nas:9090' is not");
    expect_error("[forward]\nurl = http://nas:9090/\n", 2, "url: 'http://nas:9090/'");
    expect_error("[forward]\nurl = ws:///\n", 2, "url: 'ws:///'");
    expect_error("[forward]\nurl = ws://nas/a?b/\n", 2, "url:");
    expect_error("[forward]\nrecorder = ../up\n", 2, "recorder: '../up' is not a usable folder");
    expect_error("[forward]\nport = 9\n", 2, "unknown key 'port' in [forward]");
    expect_error("[device x]\npcm = hw:0\nforward = yes\n", 3, "forward: 'yes' is neither");
    expect_error("[server]\ngap_fill = sometimes\n", 2, "gap_fill: 'sometimes'");

    /* wss:// options, checked as record_set_tls() / pirec send --ca-file --pin do */
    char ca[160], text[600];
    snprintf(ca, sizeof(ca), "%s/ca.pem", dir);
    FILE *f = fopen(ca, "w");
    assert_non_null(f);
    fputs("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n", f);
    fclose(f);
    const char *pin = "sha256:0123456789abcdef0123456789ABCDEF0123456789abcdef0123456789abcdef";
    snprintf(text, sizeof(text), "[forward]\nurl = wss://nas:9443/\nca_file = %s\npin = %s\n",
             ca, pin);
    write_file(text);
    config_defaults(&c);
    assert_int_equal(config_load(path, &c, err, sizeof(err)), 0);
    assert_string_equal(c.forward_ca_file, ca);
    assert_string_equal(c.forward_pin, pin);
    expect_error("[forward]\nca_file = /nonexistent/ca.pem\n", 2,
                 "ca_file: '/nonexistent/ca.pem' does not exist");
    expect_error("[forward]\nca_file = /dev/null\n", 2, "holds no PEM certificate");
    expect_error("[forward]\npin = abc\n", 2, "pin: 'abc' is not 64 hex digits");
    expect_error("[forward]\npin = sha256:zz23456789abcdef0123456789abcdef0123456789abcdef01234567"
                 "89abcdef\n", 2, "is not 64 hex digits");
}

/* The shipped example must stay loadable, with the defaults it documents. */
static void test_example_file(void **state)
{
    (void)state;
    const char *src = getenv("PIREC_SRC");
    char ex[4200];
    snprintf(ex, sizeof(ex), "%s/packaging/pirec.ini.example", src ? src : ".");
    if (access(ex, R_OK) != 0) {
        print_message("%s not found: skipped\n", ex);
        skip();
    }
    struct server_config c, d;
    config_defaults(&c);
    config_defaults(&d);
    char err[512];
    assert_int_equal(config_load(ex, &c, err, sizeof(err)), 0);
    assert_memory_equal(&c, &d, sizeof(c));
}

/* stall_seconds: the capture watchdog's bound per device, in ms (0 auto, -1 off). */
static void test_stall_seconds(void **state)
{
    (void)state;
    static const struct { const char *v; int ms; } ok[] = {
        {"0", 0}, {"2", 2000}, {"2.5", 2500}, {"0.1", 100}, {"3600", 3600000}, {"off", -1},
        {"OFF", -1},
    };
    char text[128], err[512];
    struct server_config c;
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        snprintf(text, sizeof(text), "[device x]\npcm = hw:0\nstall_seconds = %s\n", ok[i].v);
        write_file(text);
        config_defaults(&c);
        assert_int_equal(config_load(path, &c, err, sizeof(err)), 0);
        assert_int_equal(c.devices[0].stall_ms, ok[i].ms);
    }
    write_file("[device x]\npcm = hw:0\n");
    config_defaults(&c);
    assert_int_equal(config_load(path, &c, err, sizeof(err)), 0);
    assert_int_equal(c.devices[0].stall_ms, 0);   /* automatic unless configured */
    const char *bad[] = {"0.05", "-1", "3601", "2s", "forever", "nan", ""};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(text, sizeof(text), "[device x]\npcm = hw:0\nstall_seconds = %s\n", bad[i]);
        expect_error(text, 3, "stall_seconds: '");
    }
}

static void test_unreadable(void **state)
{
    (void)state;
    struct server_config c;
    config_defaults(&c);
    char err[512];
    assert_int_equal(config_load("/nonexistent/pirec.ini", &c, err, sizeof(err)), -ENOENT);
    assert_non_null(strstr(err, "/nonexistent/pirec.ini"));
    assert_non_null(strstr(err, "No such file"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_full_file),
        cmocka_unit_test(test_errors_name_line_and_problem),
        cmocka_unit_test(test_forward_and_gap_fill),
        cmocka_unit_test(test_example_file),
        cmocka_unit_test(test_unreadable),
        cmocka_unit_test(test_stall_seconds),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
