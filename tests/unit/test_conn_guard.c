/* conn_guard and workers: admission limits (global, per address, IPv4-mapped addresses
 * counted as the same client), the event-stream budget, the header deadline answered 408
 * on the socket itself, a request that began has no deadline; workers run jobs in order
 * and drain the queue before they stop. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "server/conn_guard.h"
#include "server/workers.h"

#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static struct sockaddr_in v4(const char *a)
{
    struct sockaddr_in s = {.sin_family = AF_INET};
    inet_pton(AF_INET, a, &s.sin_addr);
    return s;
}

static int admit(struct conn_guard *g, int fd, const char *addr, struct guard_conn **c)
{
    struct sockaddr_in s = v4(addr);
    return guard_admit(g, fd, (struct sockaddr *)&s, sizeof s, c);
}

static void test_limits(void **state)
{
    (void)state;
    struct conn_limits lim = {.max_connections = 5, .max_per_client = 3, .max_streams = 2,
                              .max_streams_per_client = 1, .header_timeout_ms = 60000};
    struct conn_guard *g;
    assert_int_equal(guard_create(&g, &lim), 0);
    struct guard_conn *c[8] = {0};
    /* fds are only keys here: nothing is written before the (long) deadline */
    assert_int_equal(admit(g, 100, "10.0.0.1", &c[0]), 0);
    assert_int_equal(admit(g, 101, "10.0.0.1", &c[1]), 0);
    struct sockaddr_in6 m = {.sin6_family = AF_INET6};
    inet_pton(AF_INET6, "::ffff:10.0.0.1", &m.sin6_addr);
    assert_int_equal(guard_admit(g, 102, (struct sockaddr *)&m, sizeof m, &c[2]), 0);
    assert_string_equal(guard_conn_address(c[2]), "10.0.0.1");
    assert_int_equal(admit(g, 103, "10.0.0.1", &c[3]), -EUSERS);   /* its share is 3 */
    assert_int_equal(admit(g, 103, "10.0.0.2", &c[3]), 0);
    assert_int_equal(admit(g, 104, "10.0.0.3", &c[4]), 0);
    assert_int_equal(admit(g, 105, "10.0.0.4", &c[5]), -EMFILE);   /* 5 in all */
    assert_ptr_equal(guard_find(g, 101), c[1]);
    guard_closed(g, c[1]);
    assert_null(guard_find(g, 101));
    assert_int_equal(admit(g, 105, "10.0.0.1", &c[5]), 0);        /* a slot again */

    assert_int_equal(guard_stream_open(g, c[0]), 0);
    assert_int_equal(guard_stream_open(g, c[2]), -EUSERS);          /* 1 per address */
    assert_int_equal(guard_stream_open(g, c[3]), 0);
    assert_int_equal(guard_stream_open(g, c[4]), -EMFILE);          /* 2 in all */
    guard_stream_close(g, c[0]);
    assert_int_equal(guard_stream_open(g, c[4]), 0);
    assert_non_null(strstr(guard_refusal_response(g, -EUSERS), "503"));
    assert_non_null(strstr(guard_refusal_response(g, -EBADMSG), "400 Bad Request"));
    guard_closed(g, c[0]);
    guard_closed(g, c[2]);
    guard_closed(g, c[3]);
    guard_closed(g, c[4]);
    guard_closed(g, c[5]);
    guard_destroy(g);
}

/* The slow request gets 408 on its socket; the one whose headers arrived does not. */
static void test_header_deadline(void **state)
{
    (void)state;
    struct conn_limits lim = {.header_timeout_ms = 300};
    struct conn_guard *g;
    assert_int_equal(guard_create(&g, &lim), 0);
    int slow[2], quick[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, slow), 0);
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, quick), 0);
    struct guard_conn *cs, *cq;
    assert_int_equal(admit(g, slow[0], "10.0.0.9", &cs), 0);
    assert_int_equal(admit(g, quick[0], "10.0.0.9", &cq), 0);
    assert_int_equal(guard_request_began(g, cq), 0);
    struct pollfd p = {slow[1], POLLIN, 0};
    assert_int_equal(poll(&p, 1, 10000), 1);
    char buf[512] = "";
    assert_true(read(slow[1], buf, sizeof buf - 1) > 0);
    assert_non_null(strstr(buf, "HTTP/1.1 408 Request Timeout"));
    assert_int_equal(guard_request_began(g, cs), -ETIMEDOUT);   /* too late: send nothing */
    /* the active one is untouched well past its deadline */
    struct pollfd q = {quick[1], POLLIN, 0};
    assert_int_equal(poll(&q, 1, 700), 0);
    guard_closed(g, cs);
    guard_closed(g, cq);
    guard_destroy(g);
    close(slow[0]);
    close(slow[1]);
    close(quick[0]);
    close(quick[1]);
}

static pthread_mutex_t order_lock = PTHREAD_MUTEX_INITIALIZER;
static int order[64], n_order;

static void job(void *arg)
{
    pthread_mutex_lock(&order_lock);
    order[n_order++] = (int)(intptr_t)arg;
    pthread_mutex_unlock(&order_lock);
}

static void test_workers(void **state)
{
    (void)state;
    struct workers *w;
    assert_int_equal(workers_create(&w, 0, "x"), -EINVAL);
    assert_int_equal(workers_create(&w, 1, "test"), 0);
    for (int i = 0; i < 50; i++)
        assert_int_equal(workers_submit(w, job, (void *)(intptr_t)i), 0);
    workers_stop(w);      /* runs all 50 first */
    assert_int_equal(n_order, 50);
    assert_int_equal(workers_submit(w, job, NULL), -ESHUTDOWN);   /* still safe to ask */
    workers_destroy(w);
    for (int i = 0; i < 50; i++)
        assert_int_equal(order[i], i);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_header_deadline),
        cmocka_unit_test(test_workers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
