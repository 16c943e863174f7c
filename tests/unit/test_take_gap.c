/* take_gap: the order in which a writer writes silence owed, frames held after a gap and
 * the ring; the start-time comment's format. (Where gaps are found is driven through the
 * real capture by tests/integration/test_gap_fill.py.) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "store/take_gap.h"

#include <string.h>

static void test_order_silence_then_held_then_ring(void **st)
{
    (void)st;
    struct take_gap g;
    take_gap_init(&g, NULL, 1, 0);
    size_t n = 0, off = 0;
    assert_int_equal(take_gap_next(&g, 4096, &n, &off), TAKE_GAP_READ);
    assert_false(take_gap_pending(&g));
    /* the writer fell behind: 5000 frames lost, 3000 read after the jump */
    take_gap_owe(&g, 5000);
    take_gap_hold(&g, 3000);
    assert_true(take_gap_pending(&g));
    assert_int_equal(take_gap_next(&g, 4096, &n, &off), TAKE_GAP_SILENCE);
    assert_int_equal(n, 4096);
    assert_int_equal(take_gap_next(&g, 4096, &n, &off), TAKE_GAP_SILENCE);
    assert_int_equal(n, 904);
    /* a split or a limit may ask for fewer: the held frames come in pieces, in order */
    assert_int_equal(take_gap_next(&g, 1000, &n, &off), TAKE_GAP_HELD);
    assert_int_equal(n, 1000);
    assert_int_equal(off, 0);
    assert_int_equal(take_gap_next(&g, 4096, &n, &off), TAKE_GAP_HELD);
    assert_int_equal(n, 2000);
    assert_int_equal(off, 1000);
    assert_false(take_gap_pending(&g));
    assert_int_equal(take_gap_next(&g, 4096, &n, &off), TAKE_GAP_READ);
}

static void test_without_fill_nothing_is_owed(void **st)
{
    (void)st;
    struct take_gap g;
    take_gap_init(&g, NULL, 0, 100);
    take_gap_owe(&g, 5000);
    assert_false(take_gap_pending(&g));
    size_t n = 0, off = 0;
    assert_int_equal(take_gap_next(&g, 4096, &n, &off), TAKE_GAP_READ);
    assert_int_equal(take_gap_limit(&g, 100, 4096), 4096);
}

static void test_time_comment(void **st)
{
    (void)st;
    char c[80];
    take_gap_time_comment(c, sizeof c, 1796125512345678901LL);
    assert_string_equal(c, "PIREC_START_TIME=2026-12-01T11:45:12.345Z");
    take_gap_time_comment(c, sizeof c, 1796125512000999999LL);
    assert_string_equal(c, "PIREC_START_TIME=2026-12-01T11:45:12.000Z");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_order_silence_then_held_then_ring),
        cmocka_unit_test(test_without_fill_nothing_is_owed),
        cmocka_unit_test(test_time_comment),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
