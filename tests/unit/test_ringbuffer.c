/* Unit tests of pirec/ringbuffer.h: edge cases, wrap-around, and a two-thread stress run
 * that checks every byte of a known sequence arrives in order and dropped + taken = offered. */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <pirec/ringbuffer.h>

static void test_create_rejects(void **state)
{
    (void)state;
    dev_ringbuf_t rb;
    char buf[8];
    assert_int_equal(ringbuffer_create(NULL, buf, 8), -EINVAL);
    assert_int_equal(ringbuffer_create(&rb, NULL, 8), -EINVAL);
    assert_int_equal(ringbuffer_create(&rb, buf, 1), -EINVAL);
    assert_int_equal(ringbuffer_create(&rb, buf, -5), -EINVAL);
    assert_int_equal(ringbuffer_create(&rb, buf, 2), 0);
    assert_int_equal(ringbuffer_available_write_space(&rb), 1);
    assert_int_equal(ringbuffer_read(NULL, (uint8_t *)buf, 1), -EINVAL);
    assert_int_equal(ringbuffer_write(NULL, (uint8_t *)buf, 1), -EINVAL);
}

static void test_capacity_and_drop_count(void **state)
{
    (void)state;
    dev_ringbuf_t rb;
    char mem[10];
    assert_int_equal(ringbuffer_create(&rb, mem, 10), 0);
    assert_true(ringbuffer_empty(&rb));
    assert_false(ringbuffer_full(&rb));
    uint8_t in[20], out[20];
    for (int i = 0; i < 20; i++)
        in[i] = (uint8_t)(i + 1);
    /* holds length - 1 = 9 bytes; the other 11 are counted, not silently lost */
    assert_int_equal(ringbuffer_write(&rb, in, 20), 9);
    assert_int_equal((int)rb.dropped, 11);
    assert_true(ringbuffer_full(&rb));
    assert_int_equal(ringbuffer_available_read_space(&rb), 9);
    assert_int_equal(ringbuffer_available_write_space(&rb), 0);
    assert_int_equal(ringbuffer_write(&rb, in, 3), 0);
    assert_int_equal((int)rb.dropped, 14);
    assert_int_equal(ringbuffer_read(&rb, out, 4), 4);
    assert_memory_equal(out, in, 4);
    /* wrap around: 4 more go in, split across the end */
    assert_int_equal(ringbuffer_write(&rb, in + 10, 4), 4);
    assert_int_equal(ringbuffer_read(&rb, out, 20), 9);
    assert_memory_equal(out, in + 4, 5);
    assert_memory_equal(out + 5, in + 10, 4);
    assert_int_equal(ringbuffer_read(&rb, out, 20), 0);
    assert_true(ringbuffer_empty(&rb));
    assert_int_equal(ringbuffer_read(&rb, out, 0), 0);
    ringbuffer_write(&rb, in, 5);
    ringbuffer_clear(&rb);
    assert_true(ringbuffer_empty(&rb));
    ringbuffer_destroy(&rb);
    assert_null(rb.buffer);
}

/* ---- stress: one producer, one consumer ---------------------------------------- */

#define STRESS_BYTES (8u * 1024 * 1024)

struct stress {
    dev_ringbuf_t rb;
    uint64_t offered, taken;
    uint64_t received;
    int producer_done;
    int mismatch;
    uint64_t mismatch_at;
    /* Byte k of what the ring accepted is pattern(k): the producer advances k only by what
     * the ring took, so the consumer can check order even though some bytes were dropped. */
};

static uint8_t pattern(uint64_t k) { return (uint8_t)((k * 131) ^ (k >> 11)); }

static void *producer(void *arg)
{
    struct stress *s = arg;
    uint8_t chunk[4096];
    uint64_t k = 0; /* next accepted byte */
    unsigned seed = 12345;
    /* Offer at least STRESS_BYTES and keep going until half of that went through, so the
     * amount checked does not depend on how the two threads happen to be scheduled. */
    while (s->offered < STRESS_BYTES || s->taken < STRESS_BYTES / 2) {
        uint32_t n = (uint32_t)(rand_r(&seed) % sizeof chunk) + 1;
        for (uint32_t i = 0; i < n; i++)
            chunk[i] = pattern(k + i);
        int w = ringbuffer_write(&s->rb, chunk, n);
        s->offered += n;
        s->taken += (uint64_t)w;
        k += (uint64_t)w; /* what did not fit is gone: the stream continues after w */
        if (w == 0)
            sched_yield(); /* full: let the consumer run */
    }
    __atomic_store_n(&s->producer_done, 1, __ATOMIC_RELEASE);
    return NULL;
}

static void *consumer(void *arg)
{
    struct stress *s = arg;
    uint8_t chunk[3000];
    unsigned seed = 999;
    for (;;) {
        int done = __atomic_load_n(&s->producer_done, __ATOMIC_ACQUIRE);
        uint32_t want = (uint32_t)(rand_r(&seed) % sizeof chunk) + 1;
        int n = ringbuffer_read(&s->rb, chunk, want);
        for (int i = 0; i < n; i++) {
            if (!s->mismatch && chunk[i] != pattern(s->received + (uint64_t)i)) {
                s->mismatch = 1;
                s->mismatch_at = s->received + (uint64_t)i;
            }
        }
        s->received += (uint64_t)(n > 0 ? n : 0);
        if (n == 0 && done && ringbuffer_empty(&s->rb))
            break;
    }
    return NULL;
}

static void test_spsc_stress(void **state)
{
    (void)state;
    static char mem[4099]; /* odd size: wrap points move around */
    struct stress s;
    memset(&s, 0, sizeof s);
    assert_int_equal(ringbuffer_create(&s.rb, mem, sizeof mem), 0);
    pthread_t p, c;
    assert_int_equal(pthread_create(&c, NULL, consumer, &s), 0);
    assert_int_equal(pthread_create(&p, NULL, producer, &s), 0);
    pthread_join(p, NULL);
    pthread_join(c, NULL);
    assert_false(s.mismatch);
    assert_true(s.offered >= STRESS_BYTES);
    assert_int_equal(s.received, s.taken);
    assert_int_equal(s.rb.dropped + s.taken, s.offered);
    assert_true(s.taken >= STRESS_BYTES / 2);
    print_message("stress: offered %llu, taken %llu, dropped %llu\n",
                  (unsigned long long)s.offered, (unsigned long long)s.taken,
                  (unsigned long long)s.rb.dropped);
}

/* Lossless variant: the producer waits for room, so every one of the bytes must arrive. */
struct lossless {
    dev_ringbuf_t rb;
    uint64_t total;
    uint64_t received;
    int bad;
};

static void *lossless_producer(void *arg)
{
    struct lossless *s = arg;
    uint8_t chunk[777];
    uint64_t k = 0;
    while (k < s->total) {
        uint32_t n = sizeof chunk;
        if (s->total - k < n)
            n = (uint32_t)(s->total - k);
        int space = ringbuffer_available_write_space(&s->rb);
        if (space <= 0) {
            sched_yield();
            continue;
        }
        if ((uint32_t)space < n)
            n = (uint32_t)space;
        for (uint32_t i = 0; i < n; i++)
            chunk[i] = pattern(k + i);
        int w = ringbuffer_write(&s->rb, chunk, n);
        k += (uint64_t)w;
    }
    return NULL;
}

static void test_spsc_lossless(void **state)
{
    (void)state;
    static char mem[1001];
    struct lossless s;
    memset(&s, 0, sizeof s);
    s.total = 4u * 1024 * 1024;
    assert_int_equal(ringbuffer_create(&s.rb, mem, sizeof mem), 0);
    pthread_t p;
    assert_int_equal(pthread_create(&p, NULL, lossless_producer, &s), 0);
    uint8_t chunk[512];
    while (s.received < s.total) {
        int n = ringbuffer_read(&s.rb, chunk, sizeof chunk);
        if (n == 0) {
            sched_yield();
            continue;
        }
        for (int i = 0; i < n; i++)
            if (chunk[i] != pattern(s.received + (uint64_t)i))
                s.bad++;
        s.received += (uint64_t)n;
    }
    pthread_join(p, NULL);
    assert_int_equal(s.bad, 0);
    assert_int_equal(s.received, s.total);
    assert_int_equal(s.rb.dropped, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_create_rejects),
        cmocka_unit_test(test_capacity_and_drop_count),
        cmocka_unit_test(test_spsc_stress),
        cmocka_unit_test(test_spsc_lossless),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
