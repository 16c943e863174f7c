/* Addresses in ringbuffer:// and mem:// URLs are checked against what the process
 * registered (rings from ringbuffer_create, blocks from record_register_memory): the
 * SDK's %u-formatted (truncated) ring addresses resolve when unambiguous; unknown,
 * destroyed, unregistered or ambiguous ones give NULL / an error, never a dereference. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <cmocka.h>

#include <pirec/record.h>
#include <pirec/ringbuffer.h>

static char logbuf[8192];
static void capture(int level, const char *msg, void *arg)
{
    (void)level;
    (void)arg;
    size_t n = strlen(logbuf);
    snprintf(logbuf + n, sizeof logbuf - n, "%s\n", msg);
}

static void test_u32_formatted_ring_resolves(void **state)
{
    (void)state;
    static char mem[4096];
    dev_ringbuf_t *rb = malloc(sizeof *rb);
    assert_int_equal(ringbuffer_create(rb, mem, sizeof mem), 0);
    char from[64];
    snprintf(from, sizeof from, "ringbuffer://handle=%u", (uint32_t)(uintptr_t)rb);
    rec_hdl_t h = record_register(from, "file:///dev/null");
    assert_non_null(h);   /* truncated on 64-bit, still the one ring that matches */
    uint8_t data[100] = {7};
    assert_int_equal(ringbuffer_write(rb, data, sizeof data), (int)sizeof data);
    assert_int_equal(record_start(h), 0);
    assert_int_equal(record_stop(h), 0);
    record_stats_t s;
    assert_int_equal(record_get_stats(h, &s), 0);
    assert_int_equal(s.read_bytes, sizeof data);
    assert_int_equal(record_unregister(h), 0);

    /* destroyed between register and start: the start fails, nothing is read */
    h = record_register(from, "file:///dev/null");
    assert_non_null(h);
    ringbuffer_destroy(rb);
    logbuf[0] = 0;
    assert_int_equal(record_start(h), -ENOENT);
    assert_non_null(strstr(logbuf, "names no ring"));
    assert_int_equal(record_unregister(h), 0);
    free(rb);
}

static void test_unknown_addresses_refused(void **state)
{
    (void)state;
    static dev_ringbuf_t never_created;
    char from[64];
    logbuf[0] = 0;
    snprintf(from, sizeof from, "ringbuffer://handle=%p", (void *)&never_created);
    assert_null(record_register(from, "file:///dev/null"));
    assert_non_null(strstr(logbuf, "ringbuffer_create"));
    assert_null(record_register("ringbuffer://handle=4096", "file:///dev/null"));

    static uint8_t block[1000];
    logbuf[0] = 0;
    snprintf(from, sizeof from, "mem://address=%p&size=10", (void *)block);
    assert_null(record_register(from, "file:///dev/null"));   /* not registered */
    assert_non_null(strstr(logbuf, "record_register_memory"));
    assert_int_equal(record_register_memory(block, sizeof block), 0);
    rec_hdl_t h = record_register(from, "file:///dev/null");
    assert_non_null(h);
    assert_int_equal(record_unregister(h), 0);
    /* inside the block is fine; running past its end is not */
    snprintf(from, sizeof from, "mem://address=%p&size=10", (void *)(block + 990));
    h = record_register(from, "file:///dev/null");
    assert_non_null(h);
    assert_int_equal(record_unregister(h), 0);
    snprintf(from, sizeof from, "mem://address=%p&size=11", (void *)(block + 990));
    assert_null(record_register(from, "file:///dev/null"));
    /* the %u form of a registered block resolves too */
    snprintf(from, sizeof from, "mem://address=%u&size=10", (uint32_t)(uintptr_t)block);
    h = record_register(from, "file:///dev/null");
    assert_non_null(h);
    assert_int_equal(record_unregister(h), 0);
    assert_int_equal(record_unregister_memory(block), 0);
    assert_int_equal(record_unregister_memory(block), -ENOENT);
    assert_int_equal(record_register_memory(NULL, 1), -EINVAL);
}

/* Two rings whose addresses share their low 32 bits: the truncated form is ambiguous. */
static void test_ambiguous_low32_refused(void **state)
{
    (void)state;
    if (sizeof(void *) < 8) {
        print_message("two addresses equal in their low 32 bits need a 64-bit address space\n");
        skip();
    }
    size_t pg = 4096;
    /* above ASan's shadow (which ends at 0x10007fff8000 on x86-64), below 2^47 */
    void *a = mmap((void *)0x300000010000ull, pg, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    void *b = mmap((void *)0x400000010000ull, pg, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    if (a == MAP_FAILED || b == MAP_FAILED ||
        ((uintptr_t)a & 0xffffffffu) != ((uintptr_t)b & 0xffffffffu)) {
        if (a != MAP_FAILED)
            munmap(a, pg);
        if (b != MAP_FAILED)
            munmap(b, pg);
        print_message("cannot map two pages whose addresses share their low 32 bits\n");
        skip();
    }
    static char m1[64], m2[64];
    dev_ringbuf_t *ra = a, *rb = b;
    assert_int_equal(ringbuffer_create(ra, m1, sizeof m1), 0);
    assert_int_equal(ringbuffer_create(rb, m2, sizeof m2), 0);
    char from[64];
    snprintf(from, sizeof from, "ringbuffer://handle=%u", (uint32_t)(uintptr_t)ra);
    logbuf[0] = 0;
    assert_null(record_register(from, "file:///dev/null"));
    assert_non_null(strstr(logbuf, "ambiguous"));
    /* the full address still works */
    snprintf(from, sizeof from, "ringbuffer://handle=0x%llx", (unsigned long long)(uintptr_t)rb);
    rec_hdl_t h = record_register(from, "file:///dev/null");
    assert_non_null(h);
    assert_int_equal(record_unregister(h), 0);
    ringbuffer_destroy(ra);
    ringbuffer_destroy(rb);
    munmap(a, pg);
    munmap(b, pg);
}

int main(void)
{
    record_set_log_cb(capture, NULL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_u32_formatted_ring_resolves),
        cmocka_unit_test(test_unknown_addresses_refused),
        cmocka_unit_test(test_ambiguous_low32_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
