/* forward_state: what the forwarder keeps on disk for a restart: saved and read back,
 * replaced atomically (no temporary file left), removed, and files that are not state
 * files (damaged, a name with '/', an unknown state) left alone rather than trusted. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "server/forward_state.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir[64];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/pirec-fwdst-XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

struct seen {
    int n;
    char stream[4][256];
    struct forward_saved s[4];
};

static void each(const char *stream, const struct forward_saved *s, void *arg)
{
    struct seen *v = arg;
    if (v->n < 4) {
        snprintf(v->stream[v->n], sizeof(v->stream[0]), "%s", stream);
        v->s[v->n] = *s;
    }
    v->n++;
}

static void write_raw(const char *name, const char *text)
{
    char p[256];
    snprintf(p, sizeof(p), "%s/forward/%s", dir, name);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void test_round_trip(void **state)
{
    (void)state;
    struct forward_saved s = {.url = "wss://nas:9443/pirec/", .device = "hi",
                              .file = "hi_1.flac", .local = "hi_1.flac.part",
                              .final_name = "hi_1.flac"};
    assert_int_equal(forward_state_save(dir, "fwd~pi~hi~hi_1.flac", &s), 0);
    snprintf(s.local, sizeof(s.local), "hi_1.flac");
    s.verifying = 1;
    assert_int_equal(forward_state_save(dir, "fwd~pi~hi~hi_1.flac", &s), 0);   /* replaced */

    struct seen v = {0};
    assert_int_equal(forward_state_load_all(dir, each, &v), 1);
    assert_string_equal(v.stream[0], "fwd~pi~hi~hi_1.flac");
    assert_string_equal(v.s[0].url, "wss://nas:9443/pirec/");
    assert_string_equal(v.s[0].device, "hi");
    assert_string_equal(v.s[0].file, "hi_1.flac");
    assert_string_equal(v.s[0].local, "hi_1.flac");
    assert_string_equal(v.s[0].final_name, "hi_1.flac");
    assert_int_equal(v.s[0].verifying, 1);

    char p[256];   /* the replacement went through a temporary file that is gone */
    snprintf(p, sizeof(p), "%s/forward/fwd~pi~hi~hi_1.flac.fwd.tmp", dir);
    assert_int_equal(access(p, F_OK), -1);

    assert_int_equal(forward_state_remove(dir, "fwd~pi~hi~hi_1.flac"), 0);
    assert_int_equal(forward_state_remove(dir, "fwd~pi~hi~hi_1.flac"), 0);   /* gone: fine */
    memset(&v, 0, sizeof v);
    assert_int_equal(forward_state_load_all(dir, each, &v), 0);
}

static void test_bad_files_left_alone(void **state)
{
    (void)state;
    struct forward_saved s = {.url = "ws://nas:9090/", .device = "a", .file = "a\n.flac",
                              .local = "a.flac.part", .final_name = "a.flac"};
    assert_int_equal(forward_state_save(dir, "fwd~pi~a~x", &s), -EINVAL);   /* a newline */

    snprintf(s.file, sizeof(s.file), "a.flac");
    assert_int_equal(forward_state_save(dir, "fwd~pi~a~a.flac", &s), 0);
    write_raw("junk.fwd", "not a state file\n");
    write_raw("up.fwd", "pirec-forward-state 1\nurl=ws://x:1/\ndevice=a\nfile=a.flac\n"
                        "local=../etc/passwd\nstate=sending\n");
    write_raw("odd.fwd", "pirec-forward-state 1\nurl=ws://x:1/\ndevice=a\nfile=a.flac\n"
                         "local=a.flac\nstate=maybe\n");
    write_raw("ignored.txt", "pirec-forward-state 1\n");
    write_raw("fwd~pi~a~b.flac.fwd.tmp", "pirec-forward-state 1\nurl=ws://x:1/\n");
    struct seen v = {0};
    assert_int_equal(forward_state_load_all(dir, each, &v), 1);
    assert_string_equal(v.stream[0], "fwd~pi~a~a.flac");
    assert_int_equal(v.s[0].verifying, 0);
    char p[256];   /* a save cut short is cleaned up */
    snprintf(p, sizeof(p), "%s/forward/fwd~pi~a~b.flac.fwd.tmp", dir);
    assert_int_equal(access(p, F_OK), -1);

    /* no folder at all: nothing to resume, not an error */
    struct seen w = {0};
    assert_int_equal(forward_state_load_all("/nonexistent-pirec-state", each, &w), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_files_left_alone, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
