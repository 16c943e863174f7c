/* lease: take/renew/release/check, superseded and other-device tokens, expiry with an
 * injected clock, and a race of takes. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "server/lease.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

static const uint8_t KEY[32] = "lease-test-key-lease-test-key-00";
static const time_t T0 = 1790000000;

static void test_take_claims_and_busy(void **state)
{
    (void)state;
    struct lease_mgr *m;
    assert_int_equal(lease_mgr_create(&m, KEY, 300), 0);
    char tok[JWT_MAX], tok2[JWT_MAX];
    struct lease_info info;
    assert_int_equal(lease_take(m, "tone", "ipad", T0, tok, &info), 0);
    assert_int_equal(info.held, 1);
    assert_string_equal(info.client, "ipad");
    assert_int_equal(info.expires, T0 + 300);

    /* Claims: dev, cid, jti (128-bit hex), iat, exp in seconds. */
    json_t *c;
    assert_int_equal(jwt_verify_hs256(KEY, sizeof(KEY), tok, T0, &c), 0);
    assert_string_equal(json_string_value(json_object_get(c, "dev")), "tone");
    assert_string_equal(json_string_value(json_object_get(c, "cid")), "ipad");
    const char *jti = json_string_value(json_object_get(c, "jti"));
    assert_non_null(jti);
    assert_int_equal(strlen(jti), 32);
    assert_int_equal(strspn(jti, "0123456789abcdef"), 32);
    assert_int_equal(json_integer_value(json_object_get(c, "iat")), T0);
    assert_int_equal(json_integer_value(json_object_get(c, "exp")), T0 + 300);
    json_decref(c);

    /* Someone else: busy, and told who holds it until when. */
    memset(&info, 0, sizeof(info));
    assert_int_equal(lease_take(m, "tone", "phone", T0 + 10, tok2, &info), -EBUSY);
    assert_int_equal(info.held, 1);
    assert_string_equal(info.client, "ipad");
    assert_int_equal(info.expires, T0 + 300);
    /* Another device is independent. */
    assert_int_equal(lease_take(m, "yeti", "phone", T0 + 10, tok2, NULL), 0);
    /* A token is for its device only. */
    assert_int_equal(lease_check(m, "tone", tok, T0 + 20), 0);
    assert_int_equal(lease_check(m, "yeti", tok, T0 + 20), -EACCES);
    assert_int_equal(lease_check(m, "tone", tok2, T0 + 20), -EACCES);
    assert_int_equal(lease_release(m, "yeti", tok, T0 + 20), -EACCES);
    assert_int_equal(lease_check(m, "tone", "garbage", T0 + 20), -EACCES);
    assert_int_equal(lease_check(m, "tone", NULL, T0 + 20), -EACCES);

    lease_get(m, "tone", T0 + 20, &info);
    assert_int_equal(info.held, 1);
    lease_get(m, "nosuch", T0 + 20, &info);
    assert_int_equal(info.held, 0);
    lease_mgr_destroy(m);
}

static void test_renew_invalidates_old(void **state)
{
    (void)state;
    struct lease_mgr *m;
    assert_int_equal(lease_mgr_create(&m, KEY, 300), 0);
    char tok[JWT_MAX], tok2[JWT_MAX], tok3[JWT_MAX];
    struct lease_info info;
    assert_int_equal(lease_take(m, "tone", "ipad", T0, tok, NULL), 0);
    assert_int_equal(lease_renew(m, "tone", tok, T0 + 100, tok2, &info), 0);
    assert_int_equal(info.expires, T0 + 400);
    assert_string_not_equal(tok, tok2);
    /* The old token is superseded even though it is not expired. */
    assert_int_equal(lease_check(m, "tone", tok, T0 + 101), -EACCES);
    assert_int_equal(lease_renew(m, "tone", tok, T0 + 101, tok3, NULL), -EACCES);
    assert_int_equal(lease_release(m, "tone", tok, T0 + 101), -EACCES);
    assert_int_equal(lease_check(m, "tone", tok2, T0 + 399), 0);
    /* Renew on the wrong device. */
    assert_int_equal(lease_renew(m, "yeti", tok2, T0 + 101, tok3, NULL), -EACCES);
    /* Release: the token stops working and the device is free for anyone. */
    assert_int_equal(lease_release(m, "tone", tok2, T0 + 102), 0);
    assert_int_equal(lease_check(m, "tone", tok2, T0 + 102), -EACCES);
    assert_int_equal(lease_release(m, "tone", tok2, T0 + 102), -EACCES);
    lease_get(m, "tone", T0 + 102, &info);
    assert_int_equal(info.held, 0);
    assert_int_equal(lease_take(m, "tone", "phone", T0 + 103, tok3, NULL), 0);
    /* A token from an earlier lease of the same device (released) stays dead. */
    assert_int_equal(lease_check(m, "tone", tok, T0 + 104), -EACCES);
    lease_mgr_destroy(m);
}

struct expired_log {
    int n;
    char device[4][64], client[4][64];
};

static void on_expired(const char *device, const char *client, const char *lease, void *arg)
{
    (void)lease;
    struct expired_log *l = arg;
    if (l->n < 4) {
        snprintf(l->device[l->n], 64, "%s", device);
        snprintf(l->client[l->n], 64, "%s", client);
    }
    l->n++;
}

static void test_expiry(void **state)
{
    (void)state;
    struct lease_mgr *m;
    assert_int_equal(lease_mgr_create(&m, KEY, 60), 0);
    char tok[JWT_MAX], tok2[JWT_MAX], tok3[JWT_MAX];
    assert_int_equal(lease_take(m, "tone", "ipad", T0, tok, NULL), 0);
    assert_int_equal(lease_take(m, "yeti", "phone", T0 + 30, tok2, NULL), 0);
    struct expired_log log = {0};
    assert_int_equal(lease_expire(m, T0 + 59, on_expired, &log), 0);
    assert_int_equal(log.n, 0);
    assert_int_equal(lease_expire(m, T0 + 60, on_expired, &log), 1);
    assert_int_equal(log.n, 1);
    assert_string_equal(log.device[0], "tone");
    assert_string_equal(log.client[0], "ipad");
    /* Expired token: -ETIME; the other device's lease is untouched. */
    assert_int_equal(lease_check(m, "tone", tok, T0 + 60), -ETIME);
    assert_int_equal(lease_renew(m, "tone", tok, T0 + 61, tok3, NULL), -ETIME);
    assert_int_equal(lease_check(m, "yeti", tok2, T0 + 60), 0);
    /* Reported once only. */
    assert_int_equal(lease_expire(m, T0 + 61, on_expired, &log), 0);
    assert_int_equal(log.n, 1);
    /* Free for anyone now. */
    assert_int_equal(lease_take(m, "tone", "phone", T0 + 61, tok3, NULL), 0);
    /* Even before the timer ran, an expired lease does not block a take. */
    assert_int_equal(lease_take(m, "yeti", "pc", T0 + 90, tok3, NULL), 0);
    /* Drop (device gone). */
    lease_drop(m, "yeti");
    assert_int_equal(lease_check(m, "yeti", tok3, T0 + 91), -EACCES);
    lease_mgr_destroy(m);
}

#define RACERS 8
static struct lease_mgr *race_mgr;
static atomic_int race_wins, race_busy;
static pthread_barrier_t race_barrier;

/* A running take keeps the lease past its expiry; its end restarts the timer. */
static void test_kept_by_take(void **state)
{
    (void)state;
    struct lease_mgr *m = NULL;
    assert_int_equal(lease_mgr_create(&m, KEY, 60), 0);
    char tok[JWT_MAX], other[JWT_MAX], tok2[JWT_MAX];
    struct lease_info info;
    assert_int_equal(lease_take(m, "tone", "ipad", T0, tok, &info), 0);
    assert_string_equal(info.id, "L1");
    assert_int_equal(info.kept, 0);
    assert_int_equal(lease_keep(m, "tone", 1, T0 + 1, &info), 1);
    assert_int_equal(info.kept, 1);
    struct expired_log log = {0};
    assert_int_equal(lease_expire(m, T0 + 600, on_expired, &log), 0);
    assert_int_equal(lease_check(m, "tone", tok, T0 + 600), 0);
    assert_int_equal(lease_take(m, "tone", "phone", T0 + 600, other, &info), -EBUSY);
    assert_string_equal(info.client, "ipad");
    /* The take ends at T0 + 600: 60 s more from then, with the same token and name. */
    assert_int_equal(lease_keep(m, "tone", 0, T0 + 600, &info), 1);
    assert_int_equal(info.kept, 0);
    assert_int_equal(info.expires, T0 + 660);
    assert_string_equal(info.id, "L1");
    assert_int_equal(lease_check(m, "tone", tok, T0 + 659), 0);
    assert_int_equal(lease_renew(m, "tone", tok, T0 + 630, tok2, &info), 0);
    assert_string_equal(info.id, "L1");
    assert_int_equal(lease_check(m, "tone", tok, T0 + 630), -EACCES);
    assert_int_equal(lease_expire(m, T0 + 690, on_expired, &log), 1);
    /* A free device being recorded: the next lease is kept from its take on, named anew. */
    assert_int_equal(lease_keep(m, "tone", 1, T0 + 700, NULL), 0);
    assert_int_equal(lease_take(m, "tone", "phone", T0 + 700, other, &info), 0);
    assert_string_equal(info.id, "L2");
    assert_int_equal(info.kept, 1);
    lease_mgr_destroy(m);
}

/* Take-over: refused while the holder is present (a bound stream, or seen lately). */
static void test_takeover_and_presence(void **state)
{
    (void)state;
    struct lease_mgr *m = NULL;
    assert_int_equal(lease_mgr_create(&m, KEY, 300), 0);
    lease_set_takeover_after(m, 10);
    char a[JWT_MAX], b[JWT_MAX], prev[64];
    struct lease_info info;
    assert_int_equal(lease_takeover(m, "tone", "ipad", T0, a, &info, prev), 0);
    assert_string_equal(prev, "");    /* free: a plain take */
    assert_int_equal(lease_takeover(m, "tone", "phone", T0 + 5, b, &info, prev), -EBUSY);
    assert_true(info.present);
    assert_int_equal(info.takeover_at, T0 + 10);
    unsigned long serial;
    assert_int_equal(lease_bind(m, "tone", a, T0 + 6, &serial, &info), 1);
    assert_int_equal(lease_bind(m, "tone", a, T0 + 6, &serial, &info), 0);
    assert_int_equal(lease_takeover(m, "tone", "phone", T0 + 100, b, &info, prev), -EBUSY);
    assert_int_equal(info.takeover_at, 0);
    assert_int_equal(lease_unbind(m, "tone", serial, T0 + 100, &info), 0);
    assert_int_equal(lease_unbind(m, "tone", serial, T0 + 101, &info), 1);
    assert_false(info.present == 0);
    assert_int_equal(info.takeover_at, T0 + 111);
    assert_int_equal(lease_takeover(m, "tone", "phone", T0 + 110, b, &info, prev), -EBUSY);
    assert_int_equal(lease_takeover(m, "tone", "phone", T0 + 111, b, &info, prev), 0);
    assert_string_equal(prev, "ipad");
    assert_string_equal(info.client, "phone");
    assert_int_equal(lease_check(m, "tone", a, T0 + 112), -EOWNERDEAD);
    char by[64];
    lease_taken_over_by(m, "tone", by);
    assert_string_equal(by, "phone");
    assert_int_equal(lease_check(m, "tone", b, T0 + 112), 0);
    /* the old lease's stream closing later does not touch the new lease */
    assert_int_equal(lease_unbind(m, "tone", serial, T0 + 113, &info), -ENOENT);
    lease_mgr_destroy(m);
}

static void *racer(void *arg)
{
    char tok[JWT_MAX], client[16];
    snprintf(client, sizeof(client), "c%d", (int)(intptr_t)arg);
    pthread_barrier_wait(&race_barrier);
    int ret = lease_take(race_mgr, "tone", client, T0, tok, NULL);
    if (ret == 0)
        atomic_fetch_add(&race_wins, 1);
    else if (ret == -EBUSY)
        atomic_fetch_add(&race_busy, 1);
    return NULL;
}

static void test_race_exactly_one_wins(void **state)
{
    (void)state;
    for (int round = 0; round < 20; round++) {
        assert_int_equal(lease_mgr_create(&race_mgr, KEY, 300), 0);
        atomic_store(&race_wins, 0);
        atomic_store(&race_busy, 0);
        pthread_barrier_init(&race_barrier, NULL, RACERS);
        pthread_t t[RACERS];
        for (int i = 0; i < RACERS; i++)
            assert_int_equal(pthread_create(&t[i], NULL, racer, (void *)(intptr_t)i), 0);
        for (int i = 0; i < RACERS; i++)
            pthread_join(t[i], NULL);
        pthread_barrier_destroy(&race_barrier);
        assert_int_equal(atomic_load(&race_wins), 1);
        assert_int_equal(atomic_load(&race_busy), RACERS - 1);
        lease_mgr_destroy(race_mgr);
    }
}

static void test_bad_args(void **state)
{
    (void)state;
    struct lease_mgr *m;
    assert_int_equal(lease_mgr_create(&m, KEY, 0), -EINVAL);
    assert_int_equal(lease_mgr_create(&m, KEY, 10), 0);
    char tok[JWT_MAX];
    assert_int_equal(lease_take(m, "", "x", T0, tok, NULL), -EINVAL);
    assert_int_equal(lease_take(m, NULL, "x", T0, tok, NULL), -EINVAL);
    /* No client label: still works, with a placeholder. */
    struct lease_info info;
    assert_int_equal(lease_take(m, "tone", NULL, T0, tok, &info), 0);
    assert_string_equal(info.client, "anonymous");
    lease_mgr_destroy(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_take_claims_and_busy),
        cmocka_unit_test(test_renew_invalidates_old),
        cmocka_unit_test(test_expiry),
        cmocka_unit_test(test_kept_by_take),
        cmocka_unit_test(test_takeover_and_presence),
        cmocka_unit_test(test_race_exactly_one_wins),
        cmocka_unit_test(test_bad_args),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
