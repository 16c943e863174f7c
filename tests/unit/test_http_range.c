/* http_range: the Range header of a download against RFC 7233 (one range: 206; several:
 * the whole file, or 416 when none can be satisfied; malformed: ignored), as a table. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "server/http_range.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define WHOLE HTTP_RANGE_WHOLE
#define ONE HTTP_RANGE_ONE
#define NONE HTTP_RANGE_UNSATISFIABLE
#define MAX UINT64_MAX

static const struct {
    const char *h;
    uint64_t size;
    enum http_range want;
    uint64_t first, last;
} CASES[] = {
    /* no header, other units, malformed: ignored (200, everything) */
    {NULL, 1000, WHOLE, 0, 0},
    {"", 1000, WHOLE, 0, 0},
    {"items=0-5", 1000, WHOLE, 0, 0},
    {"bytes", 1000, WHOLE, 0, 0},
    {"bytes=", 1000, WHOLE, 0, 0},
    {"bytes=,", 1000, WHOLE, 0, 0},
    {"bytes=-", 1000, WHOLE, 0, 0},
    {"bytes=a-b", 1000, WHOLE, 0, 0},
    {"bytes=5", 1000, WHOLE, 0, 0},
    {"bytes=5-3", 1000, WHOLE, 0, 0},          /* last < first: invalid */
    {"bytes=1-2-3", 1000, WHOLE, 0, 0},
    {"bytes=+1-2", 1000, WHOLE, 0, 0},
    {"bytes=--5", 1000, WHOLE, 0, 0},
    {"bytes=0-1;x", 1000, WHOLE, 0, 0},
    {"bytes=0x10-", 1000, WHOLE, 0, 0},
    {"bytes=0 - 1", 1000, WHOLE, 0, 0},        /* no spaces inside an element */
    /* one range */
    {"bytes=0-499", 1000, ONE, 0, 499},
    {"bytes=500-999", 1000, ONE, 500, 999},
    {"bytes=500-5000", 1000, ONE, 500, 999},   /* past the end: to the end */
    {"bytes=999-999", 1000, ONE, 999, 999},
    {"bytes=9500-", 10000, ONE, 9500, 9999},   /* open-ended */
    {"bytes=0-", 1, ONE, 0, 0},
    {"bytes=-500", 1000, ONE, 500, 999},       /* suffix */
    {"bytes=-1000", 1000, ONE, 0, 999},
    {"bytes=-5000", 1000, ONE, 0, 999},        /* suffix longer than the file: all of it */
    {"Bytes=0-0", 1000, ONE, 0, 0},            /* the unit is case-insensitive */
    {"bytes= 1-2 ", 1000, ONE, 1, 2},
    {"bytes=\t1-2", 1000, ONE, 1, 2},
    {"bytes=,1-2,", 1000, ONE, 1, 2},          /* empty list elements are skipped */
    /* unsatisfiable: 416 */
    {"bytes=1000-", 1000, NONE, 0, 0},
    {"bytes=1000-2000", 1000, NONE, 0, 0},
    {"bytes=-0", 1000, NONE, 0, 0},
    {"bytes=0-", 0, NONE, 0, 0},               /* an empty file has no byte to send */
    {"bytes=-5", 0, NONE, 0, 0},
    /* several ranges: the whole file if one can be satisfied, else 416 */
    {"bytes=0-1,5-6", 1000, WHOLE, 0, 0},
    {"bytes=0-1, -1", 1000, WHOLE, 0, 0},
    {"bytes=2000-,0-1", 1000, WHOLE, 0, 0},
    {"bytes=2000-,3000-3001", 1000, NONE, 0, 0},
    {"bytes=-0,1000-", 1000, NONE, 0, 0},
    {"bytes=0-1,x", 1000, WHOLE, 0, 0},        /* one malformed element: ignored whole */
    {"bytes=2000-,x", 1000, WHOLE, 0, 0},
    /* numbers past 64 bits */
    {"bytes=99999999999999999999999-", 1000, NONE, 0, 0},
    {"bytes=0-99999999999999999999999", 1000, ONE, 0, 999},
    {"bytes=-99999999999999999999999", 1000, ONE, 0, 999},
    {"bytes=18446744073709551614-18446744073709551615", MAX, ONE, MAX - 1, MAX - 1},
    {"bytes=0-18446744073709551615", MAX, ONE, 0, MAX - 1},
};

static void test_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(CASES) / sizeof(CASES[0]); i++) {
        uint64_t first = 12345, last = 12345;
        enum http_range got = http_range_parse(CASES[i].h, CASES[i].size, &first, &last);
        if (got != CASES[i].want)
            fail_msg("'%s' of %llu bytes: %d, want %d", CASES[i].h ? CASES[i].h : "(none)",
                     (unsigned long long)CASES[i].size, got, CASES[i].want);
        if (got == ONE && (first != CASES[i].first || last != CASES[i].last))
            fail_msg("'%s': %llu-%llu, want %llu-%llu", CASES[i].h,
                     (unsigned long long)first, (unsigned long long)last,
                     (unsigned long long)CASES[i].first, (unsigned long long)CASES[i].last);
        if (got != ONE && (first != 12345 || last != 12345))
            fail_msg("'%s': the range was written although none is answered", CASES[i].h);
    }
}

/* A header of many ranges is not walked past the limit: everything is sent. */
static void test_many_ranges(void **state)
{
    (void)state;
    static char h[16 + 8 * (HTTP_RANGE_MAX_ELEMENTS + 2)];
    strcpy(h, "bytes=");
    for (int i = 0; i < HTTP_RANGE_MAX_ELEMENTS + 1; i++)
        strcat(h, "5000-,");
    uint64_t a, b;
    assert_int_equal(http_range_parse(h, 1000, &a, &b), WHOLE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_many_ranges),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
