/* record_get_server_size() and record_get_link_failure() (include/pirec/record.h) where no
 * server answers: a file sink cannot say (-ENOTSUP), a ws:// sink with nobody listening has
 * no answer yet (-EAGAIN) and says why its link is down; bad arguments are refused. The
 * answer of a real `pirec ingest` is tested end to end by test_forward_restart.py. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <cmocka.h>

#include <pirec/record.h>
#include <pirec/ringbuffer.h>

static char block[4096];

/* A loopback port with nobody listening (bound, then closed). */
static int dead_port(void)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    assert_int_equal(bind(s, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(getsockname(s, (struct sockaddr *)&a, &len), 0);
    close(s);
    return ntohs(a.sin_port);
}

static void test_file_sink_cannot_say(void **state)
{
    (void)state;
    char from[96], to[64];
    assert_int_equal(record_register_memory(block, sizeof block), 0);
    snprintf(from, sizeof from, "mem://address=%p&size=%zu", (void *)block, sizeof block);
    snprintf(to, sizeof to, "file:///tmp/pirec-srvsize-%d", (int)getpid());
    rec_hdl_t h = record_register(from, to);
    assert_non_null(h);
    uint64_t size = 7;
    assert_int_equal(record_get_server_size(h, &size), -ENOTSUP);
    assert_int_equal(size, 7);
    char why[64] = "x";
    assert_int_equal(record_get_link_failure(h, why, sizeof why), 0);
    assert_string_equal(why, "");
    assert_int_equal(record_get_server_size(h, NULL), -EINVAL);
    assert_int_equal(record_get_link_failure(h, NULL, 0), -EINVAL);
    record_unregister(h);
    unlink(to + 7);
    record_unregister_memory(block);
    assert_int_equal(record_get_server_size(NULL, &size), -EINVAL);
}

static void test_ws_nobody_listening(void **state)
{
    (void)state;
    static dev_ringbuf_t ring;
    static char mem[65536];
    assert_int_equal(ringbuffer_create(&ring, mem, sizeof mem), 0);
    char from[64], to[96];
    snprintf(from, sizeof from, "ringbuffer://handle=%p", (void *)&ring);
    snprintf(to, sizeof to, "ws://127.0.0.1:%d/probe", dead_port());
    rec_hdl_t h = record_register(from, to);
    assert_non_null(h);
    record_set_option(h, RECORD_OPT_RECONNECT_MAX_MS, 200);
    uint64_t size;
    assert_int_equal(record_get_server_size(h, &size), -EAGAIN);   /* not started */
    assert_int_equal(record_start(h), 0);
    char why[200] = "";
    for (int i = 0; i < 200 && !why[0]; i++) {   /* the first attempt fails at once */
        struct timespec ts = {0, 20 * 1000000L};
        nanosleep(&ts, NULL);
        assert_int_equal(record_get_link_failure(h, why, sizeof why), 0);
    }
    print_message("link failure: %s\n", why);
    assert_true(why[0] != 0);
    assert_int_equal(record_get_server_size(h, &size), -EAGAIN);
    record_set_option(h, RECORD_OPT_STOP_TIMEOUT_MS, 100);
    record_unregister(h);
    ringbuffer_destroy(&ring);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_file_sink_cannot_say),
        cmocka_unit_test(test_ws_nobody_listening),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
