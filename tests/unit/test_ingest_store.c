/* Unit tests of src/ingest/store.c: append, LRU reopen, failed writes undone, symlinks,
 * losses file, directory checks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "ingest/store.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[256];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "%s/ingest-store-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR")
                                                                       : "/tmp");
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static long file_size(const char *name)
{
    char p[512];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    struct stat sb;
    return stat(p, &sb) == 0 ? (long)sb.st_size : -1;
}

static size_t read_file(const char *name, char *buf, size_t cap)
{
    char p[512];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "rb");
    if (!f)
        return 0;
    size_t n = fread(buf, 1, cap, f);
    fclose(f);
    return n;
}

static struct ingest_store *open_store(int max_open, int64_t fault)
{
    struct ingest_store_config cfg = {.dir = dir, .max_open = max_open, .sync_ms = 1,
                                      .fault_enospc_after = fault};
    struct ingest_store *st;
    char err[256];
    assert_int_equal(ingest_store_open(&st, &cfg, err, sizeof err), 0);
    return st;
}

static void test_append_and_lru(void **state)
{
    (void)state;
    struct ingest_store *st = open_store(2, -1);
    struct ingest_stream *s[5];
    char name[16];
    for (int i = 0; i < 5; i++) {
        snprintf(name, sizeof name, "s%d", i);
        assert_int_equal(ingest_store_get(st, name, strlen(name), &s[i]), 0);
        assert_true(ingest_store_open_fds(st) <= 2);
    }
    /* Round-robin over more streams than open fds: every append reopens. */
    for (int round = 0; round < 3; round++)
        for (int i = 0; i < 5; i++) {
            char msg[16];
            int n = snprintf(msg, sizeof msg, "%d.%d;", i, round);
            assert_int_equal(ingest_store_append(st, s[i], msg, (size_t)n), 0);
            assert_true(ingest_store_open_fds(st) <= 2);
            ingest_store_tick(st, (int64_t)(round * 5 + i) * 10000);
        }
    assert_int_equal(ingest_store_count(st), 5);
    struct ingest_stream *again;
    assert_int_equal(ingest_store_get(st, "s3", 2, &again), 0);
    assert_ptr_equal(again, s[3]);
    assert_int_equal(s[3]->size, 12);
    assert_int_equal(s[3]->messages, 3);
    ingest_store_close(st);
    char buf[64];
    size_t n = read_file("s3", buf, sizeof buf);
    assert_int_equal(n, 12);
    assert_memory_equal(buf, "3.0;3.1;3.2;", 12);

    /* A new store appends to what is there and reports the existing size. */
    st = open_store(0, -1);
    struct ingest_stream *x;
    assert_int_equal(ingest_store_get(st, "s3", 2, &x), 0);
    assert_int_equal(x->size, 12);
    assert_int_equal(ingest_store_append(st, x, "!", 1), 0);
    ingest_store_release(st, x);
    assert_int_equal(ingest_store_count(st), 0);
    ingest_store_close(st);
    assert_int_equal(file_size("s3"), 13);
}

static void test_failed_write_is_undone(void **state)
{
    (void)state;
    /* The disk "fills" after 10 bytes: a 6-byte message fits, the next one is cut after 4
     * bytes by the kernel-like short write, fails with ENOSPC and leaves nothing. Small
     * messages are buffered: the flush writes them. */
    struct ingest_store *st = open_store(0, 10);
    struct ingest_stream *s;
    assert_int_equal(ingest_store_get(st, "full", 4, &s), 0);
    assert_int_equal(ingest_store_append(st, s, "first;", 6), 0);
    assert_int_equal(file_size("full"), 0);   /* buffered */
    assert_int_equal(ingest_store_flush(st, s), 0);
    assert_int_equal(file_size("full"), 6);
    assert_int_equal(ingest_store_append(st, s, "second;", 7), 0);
    assert_int_equal(s->size, 13);
    assert_int_equal(ingest_store_flush(st, s), -ENOSPC);
    assert_int_equal(s->size, 6);
    assert_int_equal(file_size("full"), 6);
    /* The space comes back with the truncation: a small message still fits. */
    assert_int_equal(ingest_store_append(st, s, "ok", 2), 0);
    assert_int_equal(ingest_store_flush(st, s), 0);
    assert_int_equal(file_size("full"), 8);
    /* A large message skips the buffer and fails at once, leaving nothing. */
    static char big[40000];
    memset(big, 'x', sizeof big);
    assert_int_equal(ingest_store_append(st, s, big, sizeof big), -ENOSPC);
    assert_int_equal(s->size, 8);
    assert_int_equal(file_size("full"), 8);
    ingest_store_close(st);
    char buf[16];
    assert_int_equal(read_file("full", buf, sizeof buf), 8);
    assert_memory_equal(buf, "first;ok", 8);
}

static void test_refuses_links_and_specials(void **state)
{
    (void)state;
    char p[512], target[512];
    snprintf(target, sizeof target, "%s/target", dir);
    FILE *f = fopen(target, "w");
    fputs("keep", f);
    fclose(f);
    snprintf(p, sizeof p, "%s/link", dir);
    assert_int_equal(symlink(target, p), 0);
    snprintf(p, sizeof p, "%s/sub", dir);
    assert_int_equal(mkdir(p, 0755), 0);
    snprintf(p, sizeof p, "%s/fifo", dir);
    assert_int_equal(mkfifo(p, 0644), 0);

    struct ingest_store *st = open_store(0, -1);
    struct ingest_stream *s;
    assert_int_equal(ingest_store_get(st, "link", 4, &s), -ELOOP);
    assert_int_equal(ingest_store_get(st, "sub", 3, &s), -EISDIR);
    assert_int_equal(ingest_store_get(st, "fifo", 4, &s), -EINVAL); /* and no hang */
    assert_int_equal(ingest_store_count(st), 0);
    ingest_store_close(st);
    assert_int_equal(file_size("target"), 4);
}

static void test_losses(void **state)
{
    (void)state;
    struct ingest_store *st = open_store(0, -1);
    struct ingest_stream *s;
    assert_int_equal(ingest_store_get(st, "mic", 3, &s), 0);
    assert_int_equal(ingest_store_loss(st, s, 5120, 2560, "127.0.0.1#1"), 0);
    assert_int_equal(ingest_store_loss(st, s, 9000, 1, "127.0.0.1#2"), 0);
    ingest_store_close(st);
    char buf[256] = {0};
    read_file("mic.losses", buf, sizeof buf - 1);
    assert_non_null(strstr(buf, "at=5120 bytes=2560 from=127.0.0.1#1\n"));
    assert_non_null(strstr(buf, "at=9000 bytes=1 from=127.0.0.1#2\n"));

    /* <name>.losses would be longer than a file name may be. */
    st = open_store(0, -1);
    char longname[250];
    memset(longname, 'L', sizeof longname);
    assert_int_equal(ingest_store_get(st, longname, sizeof longname, &s), 0);
    assert_int_equal(ingest_store_loss(st, s, 0, 1, NULL), -ENAMETOOLONG);
    ingest_store_close(st);
}

static void test_bad_dirs(void **state)
{
    (void)state;
    char p[512], err[512];
    struct ingest_store *st;
    snprintf(p, sizeof p, "%s/plain", dir);
    fclose(fopen(p, "w"));
    struct ingest_store_config cfg = {.dir = p, .fault_enospc_after = -1};
    assert_int_equal(ingest_store_open(&st, &cfg, err, sizeof err), -ENOTDIR);
    assert_non_null(strstr(err, p));
    snprintf(p, sizeof p, "%s/plain/sub", dir);
    cfg.dir = p;
    assert_true(ingest_store_open(&st, &cfg, err, sizeof err) < 0);
    assert_non_null(strstr(err, "cannot create directory"));
    /* A missing directory is created. */
    snprintf(p, sizeof p, "%s/new", dir);
    cfg.dir = p;
    assert_int_equal(ingest_store_open(&st, &cfg, err, sizeof err), 0);
    ingest_store_close(st);
    struct stat sb;
    assert_int_equal(stat(p, &sb), 0);
    assert_true(S_ISDIR(sb.st_mode));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_append_and_lru, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed_write_is_undone, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refuses_links_and_specials, setup, teardown),
        cmocka_unit_test_setup_teardown(test_losses, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_dirs, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
