/* events: ids, SSE framing, replay with Last-Event-ID, gaps, slow subscribers, shutdown,
 * concurrent publishers. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "server/events.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char rbuf[EVENT_READ_MIN * 2];

/* Reads everything pending into rbuf (NUL-terminated); returns the bytes or the error. */
static ssize_t drain(struct event_sub *s)
{
    size_t used = 0;
    for (;;) {
        ssize_t n = event_sub_read(s, rbuf + used, sizeof(rbuf) - 1 - used);
        if (n < 0)
            return used ? (ssize_t)used : n;
        if (n == 0)
            break;
        used += (size_t)n;
    }
    rbuf[used] = 0;
    return (ssize_t)used;
}

/* Parses the ids of the SSE text in buf into ids[]; returns the count. */
static size_t parse_ids(const char *buf, uint64_t *ids, size_t max)
{
    size_t n = 0;
    const char *p = buf;
    while ((p = strstr(p, "id: ")) && n < max) {
        ids[n++] = strtoull(p + 4, NULL, 10);
        p += 4;
    }
    return n;
}

static void test_ids_increase_and_format(void **state)
{
    (void)state;
    struct event_hub *h;
    struct event_sub *s;
    assert_int_equal(event_hub_create(&h, 16), 0);
    assert_int_equal(event_hub_last_id(h), 0);
    assert_int_equal(event_hub_subscribe(h, 0, NULL, NULL, &s, NULL), 0);
    int64_t a = event_hub_publish(h, "take", "{\"id\":\"tone\"}", 0);
    int64_t b = event_hub_publish(h, "level", "{\"id\":\"tone\",\"t\":1}", 1);
    assert_true(a > 0);
    assert_int_equal(b, a + 1);
    assert_int_equal(event_hub_last_id(h), (uint64_t)b);
    assert_true(drain(s) > 0);
    char want[256];
    snprintf(want, sizeof(want),
             "id: %" PRId64 "\nevent: take\ndata: {\"id\":\"tone\"}\n\n"
             "id: %" PRId64 "\nevent: level\ndata: {\"id\":\"tone\",\"t\":1}\n\n", a, b);
    assert_string_equal(rbuf, want);
    /* Nothing pending: 0, not an error. */
    assert_int_equal(event_sub_read(s, rbuf, sizeof(rbuf)), 0);
    event_sub_close(s);
    event_hub_destroy(h);
}

static void test_bad_publish(void **state)
{
    (void)state;
    struct event_hub *h;
    assert_int_equal(event_hub_create(&h, 0), 0);
    assert_int_equal(event_hub_publish(h, "x", "{\n}", 0), -EINVAL);
    assert_int_equal(event_hub_publish(h, "", "{}", 0), -EINVAL);
    assert_int_equal(event_hub_publish(h, "a\nb", "{}", 0), -EINVAL);
    assert_int_equal(event_hub_publish(h, "x", NULL, 0), -EINVAL);
    char *big = malloc(EVENT_DATA_MAX + 2);
    memset(big, 'a', EVENT_DATA_MAX + 1);
    big[EVENT_DATA_MAX + 1] = 0;
    assert_int_equal(event_hub_publish(h, "x", big, 0), -EMSGSIZE);
    free(big);
    assert_int_equal(event_hub_last_id(h), 0);
    /* A buffer too small for one event is told so, and the event is not lost. */
    struct event_sub *s;
    assert_int_equal(event_hub_subscribe(h, 0, NULL, NULL, &s, NULL), 0);
    assert_true(event_hub_publish(h, "status", "{\"devices\":[]}", 0) > 0);
    char small[8];
    assert_int_equal(event_sub_read(s, small, sizeof(small)), -EMSGSIZE);
    assert_true(drain(s) > 0);
    assert_non_null(strstr(rbuf, "event: status"));
    event_sub_close(s);
    event_hub_destroy(h);
}

static int wakes;
static void count_wake(void *arg)
{
    (void)arg;
    wakes++;
}

static void test_two_subscribers_same_sequence(void **state)
{
    (void)state;
    struct event_hub *h;
    struct event_sub *s1, *s2;
    assert_int_equal(event_hub_create(&h, 64), 0);
    wakes = 0;
    assert_int_equal(event_hub_subscribe(h, 0, count_wake, NULL, &s1, NULL), 0);
    assert_int_equal(event_hub_subscribe(h, 0, count_wake, NULL, &s2, NULL), 0);
    for (int i = 0; i < 10; i++)
        assert_true(event_hub_publish(h, i % 2 ? "level" : "take", "{}", i % 2) > 0);
    assert_int_equal(wakes, 20);
    assert_true(drain(s1) > 0);
    char *first = strdup(rbuf);
    assert_true(drain(s2) > 0);
    assert_string_equal(first, rbuf);
    uint64_t ids[32];
    assert_int_equal(parse_ids(first, ids, 32), 10);   /* live: volatile ones too */
    free(first);
    event_sub_close(s1);
    event_sub_close(s2);
    event_hub_destroy(h);
}

static void test_replay_after_id(void **state)
{
    (void)state;
    struct event_hub *h;
    struct event_sub *s;
    assert_int_equal(event_hub_create(&h, 64), 0);
    for (int i = 1; i <= 20; i++)
        assert_int_equal(event_hub_publish(h, i % 3 == 0 ? "level" : "take", "{}", i % 3 == 0), i);
    int gap = -1;
    assert_int_equal(event_hub_subscribe(h, 10, NULL, NULL, &s, &gap), 0);
    assert_int_equal(gap, 0);
    assert_true(event_hub_publish(h, "level", "{}", 1) == 21);   /* live volatile: delivered */
    assert_true(drain(s) > 0);
    uint64_t ids[64];
    size_t n = parse_ids(rbuf, ids, 64);
    uint64_t want[] = {11, 13, 14, 16, 17, 19, 20, 21};
    assert_int_equal(n, sizeof(want) / sizeof(want[0]));
    for (size_t i = 0; i < n; i++)
        assert_int_equal(ids[i], want[i]);
    assert_null(strstr(rbuf, "id: 12\n"));
    event_sub_close(s);

    /* Replay from the last id: nothing but what comes next. */
    assert_int_equal(event_hub_subscribe(h, 21, NULL, NULL, &s, &gap), 0);
    assert_int_equal(gap, 0);
    assert_int_equal(event_sub_read(s, rbuf, sizeof(rbuf)), 0);
    event_sub_close(s);
    event_hub_destroy(h);
}

static void test_replay_gap(void **state)
{
    (void)state;
    struct event_hub *h;
    struct event_sub *s;
    assert_int_equal(event_hub_create(&h, 8), 0);
    for (int i = 1; i <= 20; i++)
        assert_int_equal(event_hub_publish(h, "take", "{}", 0), i);
    /* The ring holds 13..20; a client that saw 5 missed 6..12. */
    int gap = 0;
    assert_int_equal(event_hub_subscribe(h, 5, NULL, NULL, &s, &gap), 0);
    assert_int_equal(gap, 1);
    assert_true(drain(s) > 0);
    uint64_t ids[16];
    assert_int_equal(parse_ids(rbuf, ids, 16), 8);
    assert_int_equal(ids[0], 13);
    event_sub_close(s);
    /* Exactly at the edge (saw 12, ring starts at 13): no gap. */
    assert_int_equal(event_hub_subscribe(h, 12, NULL, NULL, &s, &gap), 0);
    assert_int_equal(gap, 0);
    event_sub_close(s);
    /* An id from a previous server run (larger than ours): gap, live only. */
    assert_int_equal(event_hub_subscribe(h, 999, NULL, NULL, &s, &gap), 0);
    assert_int_equal(gap, 1);
    assert_int_equal(event_sub_read(s, rbuf, sizeof(rbuf)), 0);
    event_sub_close(s);
    event_hub_destroy(h);
}

static void test_slow_subscriber_epipe(void **state)
{
    (void)state;
    struct event_hub *h;
    struct event_sub *slow, *fast;
    assert_int_equal(event_hub_create(&h, 8), 0);
    assert_int_equal(event_hub_subscribe(h, 0, NULL, NULL, &slow, NULL), 0);
    assert_int_equal(event_hub_subscribe(h, 0, NULL, NULL, &fast, NULL), 0);
    for (int i = 0; i < 30; i++) {
        assert_true(event_hub_publish(h, "level", "{}", 1) > 0);
        assert_true(drain(fast) > 0);
    }
    assert_int_equal(event_sub_read(slow, rbuf, sizeof(rbuf)), -EPIPE);
    assert_int_equal(event_sub_read(slow, rbuf, sizeof(rbuf)), -EPIPE);   /* stays closed */
    assert_true(event_hub_publish(h, "take", "{}", 0) > 0);
    assert_true(drain(fast) > 0);
    assert_non_null(strstr(rbuf, "id: 31\nevent: take"));
    event_sub_close(slow);
    event_sub_close(fast);
    event_hub_destroy(h);
}

static void test_shutdown(void **state)
{
    (void)state;
    struct event_hub *h;
    struct event_sub *s;
    assert_int_equal(event_hub_create(&h, 8), 0);
    assert_int_equal(event_hub_subscribe(h, 0, NULL, NULL, &s, NULL), 0);
    assert_true(event_hub_publish(h, "take", "{}", 0) > 0);
    event_hub_shutdown(h);
    assert_int_equal(event_hub_publish(h, "take", "{}", 0), -EPIPE);
    assert_true(drain(s) > 0);
    assert_non_null(strstr(rbuf, "event: take"));
    assert_non_null(strstr(rbuf, "id: 2\nevent: close\ndata: {}\n\n"));
    assert_int_equal(event_sub_read(s, rbuf, sizeof(rbuf)), -EPIPE);
    event_sub_close(s);
    event_hub_destroy(h);
}

#define PUBLISHERS 4
#define PER_PUBLISHER 2000

static struct event_hub *conc_hub;
static atomic_int conc_done;

static void *publisher(void *arg)
{
    int who = (int)(intptr_t)arg;
    char data[64];
    for (int i = 0; i < PER_PUBLISHER; i++) {
        snprintf(data, sizeof(data), "{\"p\":%d,\"n\":%d}", who, i);
        if (event_hub_publish(conc_hub, "level", data, 0) <= 0)
            return (void *)1;
    }
    atomic_fetch_add(&conc_done, 1);
    return NULL;
}

static void test_concurrent_publishers(void **state)
{
    (void)state;
    struct event_sub *s;
    /* Big enough that the reader cannot fall behind. */
    assert_int_equal(event_hub_create(&conc_hub, PUBLISHERS * PER_PUBLISHER + 8), 0);
    assert_int_equal(event_hub_subscribe(conc_hub, 0, NULL, NULL, &s, NULL), 0);
    atomic_store(&conc_done, 0);
    pthread_t t[PUBLISHERS];
    for (int i = 0; i < PUBLISHERS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, publisher, (void *)(intptr_t)i), 0);
    uint64_t expect_id = 1;
    int next_n[PUBLISHERS] = {0};
    char buf[4096];
    for (;;) {
        int done = atomic_load(&conc_done) == PUBLISHERS;
        ssize_t n = event_sub_read(s, buf, sizeof(buf) - 1);
        assert_true(n >= 0);
        buf[n] = 0;
        /* Ids are consecutive and each publisher's events arrive in its own order. */
        for (char *p = buf; (p = strstr(p, "id: ")); p++) {
            uint64_t id = strtoull(p + 4, &p, 10);
            assert_int_equal(id, expect_id);
            expect_id++;
            char *d = strstr(p, "data: ");
            int who, num;
            assert_int_equal(sscanf(d, "data: {\"p\":%d,\"n\":%d}", &who, &num), 2);
            assert_int_equal(num, next_n[who]);
            next_n[who]++;
        }
        if (done && n == 0)
            break;
    }
    for (int i = 0; i < PUBLISHERS; i++) {
        void *ret;
        pthread_join(t[i], &ret);
        assert_null(ret);
        assert_int_equal(next_n[i], PER_PUBLISHER);
    }
    assert_int_equal(expect_id, PUBLISHERS * PER_PUBLISHER + 1);
    event_sub_close(s);
    event_hub_destroy(conc_hub);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ids_increase_and_format),
        cmocka_unit_test(test_bad_publish),
        cmocka_unit_test(test_two_subscribers_same_sequence),
        cmocka_unit_test(test_replay_after_id),
        cmocka_unit_test(test_replay_gap),
        cmocka_unit_test(test_slow_subscriber_epipe),
        cmocka_unit_test(test_shutdown),
        cmocka_unit_test(test_concurrent_publishers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
