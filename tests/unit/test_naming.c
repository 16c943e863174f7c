/* Unit tests of take naming: pattern expansion (%D, strftime, local offset), ISO time,
 * unique suffixes and the rename that never overwrites. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "store/naming.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* 2026-11-21 18:30:00 UTC */
static const struct timespec T = {.tv_sec = 1795285800};

static void test_expand_default(void **st)
{
    (void)st;
    setenv("TZ", "CET-1", 1);
    tzset();
    char out[256];
    assert_int_equal(take_name_expand(out, sizeof out, NULL, "scarlett", &T), 0);
    assert_string_equal(out, "scarlett_2026-11-21T19-30-00+0100");
    assert_int_equal(take_name_expand(out, sizeof out, "%D/%Y/%%D-%D", "a b/../c%n", &T), 0);
    assert_string_equal(out, "a_b_.._c_n/2026/%D-a_b_.._c_n");
    setenv("TZ", "UTC0", 1);
    tzset();
    assert_int_equal(take_name_expand(out, sizeof out, "%D_%H%M%z", "yeti", &T), 0);
    assert_string_equal(out, "yeti_1830+0000");
}

/* name_pattern = %D_%x once wrote tone_11/21/26.flac into sub-folders, where the take was
 * never listed, downloaded, deleted or repaired: a '/' a conversion makes becomes '-'. */
static void test_expand_conversion_slash(void **st)
{
    (void)st;
    setenv("TZ", "UTC0", 1);
    tzset();
    char out[256];
    assert_int_equal(take_name_expand(out, sizeof out, "%D_%x", "tone", &T), 0);
    assert_null(strchr(out, '/'));
    assert_string_equal(out, "tone_11-21-26");
    assert_int_equal(take_name_expand(out, sizeof out, "%D_%c_%-d_%Ey_%_H", "tone", &T), 0);
    assert_null(strchr(out, '/'));
    assert_non_null(strstr(out, "_21_26_18"));
    assert_int_equal(take_name_expand(out, sizeof out, "x%", "tone", &T), -EINVAL);
}

static void test_expand_refuses_escape(void **st)
{
    (void)st;
    char out[64];
    assert_int_equal(take_name_expand(out, sizeof out, "../x", "d", &T), -EINVAL);
    assert_int_equal(take_name_expand(out, sizeof out, "/etc/x", "d", &T), -EINVAL);
    assert_int_equal(take_name_expand(out, sizeof out, "a/../../x", "d", &T), -EINVAL);
    assert_int_equal(take_name_expand(out, 8, "%D_%Y-%m-%d", "longdevice", &T), -ENAMETOOLONG);
}

static void test_iso_time(void **st)
{
    (void)st;
    setenv("TZ", "IST-5:30", 1);
    tzset();
    char out[64];
    take_iso_time(out, sizeof out, &T);
    assert_string_equal(out, "2026-11-22T00:00:00+05:30");
    setenv("TZ", "UTC0", 1);
    tzset();
}

static void test_suffix(void **st)
{
    (void)st;
    char out[64];
    assert_int_equal(take_name_suffix(out, sizeof out, "a/b.flac", 0), 0);
    assert_string_equal(out, "a/b.flac");
    assert_int_equal(take_name_suffix(out, sizeof out, "a/b.flac", 2), 0);
    assert_string_equal(out, "a/b-2.flac");
    assert_int_equal(take_name_suffix(out, sizeof out, "a.d/b", 1), 0);
    assert_string_equal(out, "a.d/b-1");
}

static void test_rename_noreplace_and_mkdir(void **st)
{
    (void)st;
    char dir[] = "/tmp/pirec-test-naming.XXXXXX";
    assert_non_null(mkdtemp(dir));
    char deep[128], from[160], to[160];
    snprintf(deep, sizeof deep, "%s/x/y/z", dir);
    assert_int_equal(take_mkdir_p(deep), 0);
    assert_int_equal(take_mkdir_p(deep), 0);
    snprintf(from, sizeof from, "%s/f", deep);
    snprintf(to, sizeof to, "%s/file", dir);
    assert_int_equal(take_mkdir_p(to), 0);  /* a directory named like the target */
    FILE *f = fopen(from, "w");
    fputs("new", f);
    fclose(f);
    /* "<dir>/file" is taken (a directory), so the file lands on "-1" */
    assert_int_equal(take_rename_noreplace(from, to, sizeof to), 0);
    char want[160];
    snprintf(want, sizeof want, "%s/file-1", dir);
    assert_string_equal(to, want);
    assert_int_equal(access(from, F_OK), -1);
    snprintf(from, sizeof from, "%s/x", dir);
    assert_int_equal(take_mkdir_p(want), -ENOTDIR);
    char cmd[200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_expand_default),
        cmocka_unit_test(test_expand_conversion_slash),
        cmocka_unit_test(test_expand_refuses_escape),
        cmocka_unit_test(test_iso_time),
        cmocka_unit_test(test_suffix),
        cmocka_unit_test(test_rename_noreplace_and_mkdir),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
