/*
 * ws_link against independent peers: tests/support/ws_peer.py (Debian's python3-websockets,
 * legacy like the original record_server/server.py, or speaking pirec.resume.1) and, when
 * the build has it, the real `pirec ingest`. Real loopback sockets, real files.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "record/ws_link.h"

static char tmpdir[512];
static int san;

/* ---- helpers ---------------------------------------------------------------------- */

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void nap(void)
{
    struct timespec ts = {0, 20 * 1000000L};
    nanosleep(&ts, NULL);
}

static unsigned char pattern(int seed, uint64_t i)
{
    uint64_t x = (i + 1) * 0x9E3779B97F4A7C15ull ^ (uint64_t)seed * 0xBF58476D1CE4E5B9ull;
    return (unsigned char)(x >> 29);
}

static unsigned char *make_data(int seed, size_t n)
{
    unsigned char *p = malloc(n);
    assert_non_null(p);
    for (size_t i = 0; i < n; i++)
        p[i] = pattern(seed, i);
    return p;
}

static unsigned char *slurp(const char *path, size_t *len)
{
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *p = malloc(n > 0 ? (size_t)n : 1);
    if (p && n > 0 && fread(p, 1, (size_t)n, f) != (size_t)n) {
        free(p);
        p = NULL;
    }
    fclose(f);
    *len = p ? (size_t)n : 0;
    return p;
}

static long file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

static void mkdir_fmt(char *out, size_t cap, const char *name)
{
    snprintf(out, cap, "%s/%s", tmpdir, name);
    mkdir(out, 0755);
}

/* Waits for the file to reach `expect` bytes, then compares it with `want`. */
static void assert_file_equals(const char *path, const unsigned char *want, size_t expect)
{
    int64_t end = now_ms() + 20000;
    while (file_size(path) < (long)expect && now_ms() < end)
        nap();
    size_t n;
    unsigned char *got = slurp(path, &n);
    if (!got || n != expect)
        fail_msg("%s: %zu bytes, expected %zu", path, got ? n : 0, expect);
    size_t i = 0;
    while (i < n && got[i] == want[i])
        i++;
    if (i != n)
        fail_msg("%s: first difference at byte %zu of %zu", path, i, n);
    free(got);
}

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t l = sizeof a;
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &l), 0);
    close(fd);
    return ntohs(a.sin_port);
}

/* Every child still running, so that a failed test does not leave servers behind. */
static pid_t live[32];

static void live_add(pid_t pid)
{
    for (int i = 0; i < 32; i++)
        if (!live[i]) {
            live[i] = pid;
            return;
        }
}

static void live_del(pid_t pid)
{
    for (int i = 0; i < 32; i++)
        if (live[i] == pid)
            live[i] = 0;
}

static int kill_all(void **state)
{
    (void)state;
    for (int i = 0; i < 32; i++)
        if (live[i]) {
            kill(live[i], SIGKILL);
            waitpid(live[i], NULL, 0);
            live[i] = 0;
        }
    return 0;
}

/* A child process whose stdout we read for its port line. */
struct peer {
    pid_t pid;
    int port;
};

/* Reads stdout of the child until a line contains `marker`, then parses the number after
 * the last ':' or ' ' of that line as the port. */
static int spawn(struct peer *p, char *const argv[], const char *marker, const char *log)
{
    int fds[2];
    if (pipe(fds) < 0)
        return -errno;
    pid_t pid = fork();
    if (pid < 0)
        return -errno;
    if (pid == 0) {
        dup2(fds[1], 1);
        int lf = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (lf >= 0)
            dup2(lf, 2);
        close(fds[0]);
        execv(argv[0], argv);
        _exit(127);
    }
    close(fds[1]);
    live_add(pid);
    char buf[4096];
    size_t n = 0;
    int64_t end = now_ms() + 20000;
    p->pid = pid;
    p->port = 0;
    while (now_ms() < end && n < sizeof buf - 1) {
        struct pollfd pf = {.fd = fds[0], .events = POLLIN};
        if (poll(&pf, 1, 100) <= 0)
            continue;
        ssize_t r = read(fds[0], buf + n, sizeof buf - 1 - n);
        if (r <= 0)
            break;
        n += (size_t)r;
        buf[n] = '\0';
        char *m = strstr(buf, marker);
        char *nl = m ? strchr(m, '\n') : NULL;
        if (nl) {
            *nl = '\0';
            char *q = strrchr(m, ':');
            char *sp = strrchr(m, ' ');
            if (!q || (sp && sp > q))
                q = sp;
            p->port = atoi(q + 1);
            break;
        }
    }
    close(fds[0]);   /* the child may get SIGPIPE if it prints more: our peers do not */
    if (!p->port) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        live_del(pid);
        return -ETIMEDOUT;
    }
    return 0;
}

static void peer_kill(struct peer *p)
{
    if (p->pid > 0) {
        kill(p->pid, SIGKILL);
        waitpid(p->pid, NULL, 0);
        live_del(p->pid);
        p->pid = 0;
    }
}

static void peer_start(struct peer *p, const char *mode, const char *dir, int port,
                       const char *events)
{
    const char *src = getenv("PIREC_SRC");
    char script[1024], portbuf[16], log[1024];
    snprintf(script, sizeof script, "%s/tests/support/ws_peer.py", src ? src : ".");
    snprintf(portbuf, sizeof portbuf, "%d", port);
    snprintf(log, sizeof log, "%s/peer.log", tmpdir);
    char *argv[] = {"/usr/bin/python3", script, "--mode", (char *)mode, "--dir", (char *)dir,
                    "--port", portbuf, "--events", (char *)events, NULL};
    int rc = spawn(p, argv, "PORT ", log);
    if (rc)
        fail_msg("ws_peer.py did not start (see %s)", log);
}

/* The real server; skips (returns 0) when this build has no ingest. */
static int ingest_start(struct peer *p, const char *dir, int port)
{
    const char *bin = getenv("PIREC_BIN");
    if (!bin || access(bin, X_OK) != 0)
        return 0;
    char listen[64], log[1024];
    snprintf(listen, sizeof listen, "127.0.0.1:%d", port);
    snprintf(log, sizeof log, "%s/ingest.log", tmpdir);
    char *argv[] = {(char *)bin, "ingest", "--listen", listen, "--dir", (char *)dir, NULL};
    return spawn(p, argv, "listening on", log) == 0;
}

static int count_events(const char *events, const char *ev, const char *name, int min_frames)
{
    FILE *f = fopen(events, "r");
    if (!f)
        return 0;
    char line[4096];
    int n = 0;
    while (fgets(line, sizeof line, f)) {
        json_t *j = json_loads(line, 0, NULL);
        if (!j)
            continue;
        const char *e = json_string_value(json_object_get(j, "ev"));
        const char *nm = json_string_value(json_object_get(j, "name"));
        json_int_t fr = json_integer_value(json_object_get(j, "frames"));
        if (e && !strcmp(e, ev) && (!name || (nm && !strcmp(nm, name))) &&
            (min_frames <= 0 || fr < min_frames))
            n++;
        json_decref(j);
    }
    fclose(f);
    return n;
}

static struct ws_target target(int port, const char *path, const char *name)
{
    struct ws_target t;
    memset(&t, 0, sizeof t);
    snprintf(t.host, sizeof t.host, "127.0.0.1");
    t.port = port;
    snprintf(t.path, sizeof t.path, "%s", path);
    snprintf(t.name, sizeof t.name, "%s", name);
    return t;
}

static void wait_stats(struct ws_stream *s, int want_connected)
{
    int64_t end = now_ms() + 20000;
    struct ws_stream_stats st;
    do {
        ws_stream_get_stats(s, &st);
        if (st.connected == want_connected)
            return;
        nap();
    } while (now_ms() < end);
    fail_msg("stream never became %s", want_connected ? "connected" : "disconnected");
}

/* Log lines captured from plog, to check what a user would read. */
static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;
static char logbuf[65536];
static size_t loglen;

static void log_sink(int level, const char *line, void *arg)
{
    (void)arg;
    (void)level;
    pthread_mutex_lock(&log_mu);
    size_t n = strlen(line);
    if (loglen + n + 2 < sizeof logbuf) {
        memcpy(logbuf + loglen, line, n);
        loglen += n;
        logbuf[loglen++] = '\n';
        logbuf[loglen] = '\0';
    }
    pthread_mutex_unlock(&log_mu);
    fprintf(stderr, "%s\n", line);
}

static int log_count(const char *needle)
{
    pthread_mutex_lock(&log_mu);
    int n = 0;
    for (const char *p = logbuf; (p = strstr(p, needle)); p += strlen(needle))
        n++;
    pthread_mutex_unlock(&log_mu);
    return n;
}

static void log_reset(void)
{
    pthread_mutex_lock(&log_mu);
    loglen = 0;
    logbuf[0] = '\0';
    pthread_mutex_unlock(&log_mu);
}

/* ---- 1. legacy server: fragments, path, Host, bytes --------------------------------- */

static void test_legacy_fragments_path_bytes(void **state)
{
    (void)state;
    char dir[600], events[700];
    mkdir_fmt(dir, sizeof dir, "legacy");
    snprintf(events, sizeof events, "%s/events", dir);
    struct peer srv;
    peer_start(&srv, "legacy", dir, 0, events);

    size_t n = san ? 200000 : 1000000;
    unsigned char *data = make_data(1, n);
    struct ws_target t = target(srv.port, "/rec/mic.raw", "mic.raw");
    struct ws_options o = {.buffer_bytes = 256 * 1024, .reconnect_max_ms = 1000};
    struct ws_stream *s;
    assert_int_equal(ws_stream_open(&t, &o, &s), 0);
    /* odd write sizes, including 1-byte messages */
    size_t off = 0, step = 1;
    while (off < n) {
        size_t k = n - off < step ? n - off : step;
        assert_int_equal(ws_stream_write(s, data + off, k, -1), 0);
        off += k;
        step = step * 3 + 1;
        if (step > 70000)
            step = 1;
    }
    assert_int_equal(ws_stream_drain(s, 20000), 0);
    struct ws_stream_stats st;
    ws_stream_get_stats(s, &st);
    assert_int_equal(st.queued, n);
    assert_int_equal(st.sent, n);
    assert_int_equal(st.acked, n);
    assert_int_equal(st.lost, 0);
    assert_int_equal(st.pending, 0);
    assert_false(st.resumable);
    ws_stream_close(s);

    char file[700];
    snprintf(file, sizeof file, "%s/mic.raw", dir);
    assert_file_equals(file, data, n);
    peer_kill(&srv);

    assert_int_equal(count_events(events, "conn", NULL, 0), 1);
    assert_int_equal(count_events(events, "unfragmented", NULL, 0), 0);
    /* messages carry at most 256 KiB of data (WS_MSG_MAX) */
    assert_true(count_events(events, "msg", "mic.raw", 0) >= (int)((n + 262143) / 262144));
    assert_int_equal(count_events(events, "msg", NULL, 2), 0);   /* none with < 2 frames */
    /* the handshake's path and Host header */
    size_t el;
    char *ev = (char *)slurp(events, &el);
    assert_non_null(ev);
    char want[128];
    snprintf(want, sizeof want, "\"path\": \"/rec/mic.raw\", \"host\": \"127.0.0.1:%d\"",
             srv.port);
    assert_non_null(memmem(ev, el, want, strlen(want)));
    free(ev);
    free(data);
}

/* legacy server restarted: what the old socket never took is sent on the new one, and what
 * the old socket took is counted as lost (the original server deletes the file on a new
 * connection; this peer appends, so the file still has both halves) */
static void test_legacy_reconnect_resends_unsent(void **state)
{
    (void)state;
    char dir[600], events[700], file[700];
    mkdir_fmt(dir, sizeof dir, "legacy-restart");
    snprintf(events, sizeof events, "%s/events", dir);
    snprintf(file, sizeof file, "%s/l.raw", dir);
    struct peer srv;
    peer_start(&srv, "legacy", dir, 0, events);
    size_t n = 200000;
    unsigned char *data = make_data(8, 2 * n);
    struct ws_target t = target(srv.port, "/l.raw", "l.raw");
    struct ws_options o = {.buffer_bytes = 1 << 20, .reconnect_max_ms = 300};
    struct ws_stream *s;
    assert_int_equal(ws_stream_open(&t, &o, &s), 0);
    assert_int_equal(ws_stream_write(s, data, n, -1), 0);
    assert_int_equal(ws_stream_drain(s, 20000), 0);
    assert_file_equals(file, data, n);   /* the server has it all before it dies */
    peer_kill(&srv);
    wait_stats(s, 0);
    assert_int_equal(ws_stream_write(s, data + n, n, 0), 0);   /* buffered meanwhile */
    struct ws_stream_stats st;
    ws_stream_get_stats(s, &st);
    assert_int_equal(st.pending, n);
    peer_start(&srv, "legacy", dir, t.port, events);
    assert_int_equal(ws_stream_drain(s, 20000), 0);
    ws_stream_get_stats(s, &st);
    assert_int_equal(st.acked, n);
    assert_int_equal(st.lost, n);
    assert_int_equal(st.reconnects, 1);
    assert_int_equal(st.stalls, 0);
    assert_false(st.resumable);
    ws_stream_close(s);
    assert_file_equals(file, data, 2 * n);
    assert_int_equal(count_events(events, "conn", NULL, 0), 2);
    peer_kill(&srv);
    free(data);
}

/* ---- 2. three streams, one connection, fair interleaving ----------------------------- */

static void test_three_streams_one_connection(void **state)
{
    (void)state;
    char dir[600], events[700];
    mkdir_fmt(dir, sizeof dir, "three");
    snprintf(events, sizeof events, "%s/events", dir);
    int port = free_port();
    const char *names[3] = {"mic", "ref", "proc"};
    size_t n = san ? 150000 : 600000;
    unsigned char *data[3];
    struct ws_stream *s[3];
    struct ws_options o = {.buffer_bytes = 1 << 20, .reconnect_max_ms = 300};
    /* the server is not up yet: all three buffers hold data when the link connects */
    for (int i = 0; i < 3; i++) {
        data[i] = make_data(10 + i, n);
        struct ws_target t = target(port, "/", names[i]);
        assert_int_equal(ws_stream_open(&t, &o, &s[i]), 0);
    }
    struct ws_target dup = target(port, "/", "mic");
    struct ws_stream *d = NULL;
    assert_int_equal(ws_stream_open(&dup, &o, &d), -EEXIST);
    for (size_t off = 0; off < n; off += 4096)
        for (int i = 0; i < 3; i++)
            assert_int_equal(ws_stream_write(s[i], data[i] + off, n - off < 4096 ? n - off : 4096,
                                             -1), 0);
    struct peer srv;
    peer_start(&srv, "legacy", dir, port, events);
    for (int i = 0; i < 3; i++)
        assert_int_equal(ws_stream_drain(s[i], 20000), 0);
    for (int i = 0; i < 3; i++) {
        char file[700];
        snprintf(file, sizeof file, "%s/%s", dir, names[i]);
        assert_file_equals(file, data[i], n);
    }
    assert_int_equal(count_events(events, "conn", NULL, 0), 1);
    assert_int_equal(count_events(events, "msg", NULL, 2), 0);

    /* fairness: the first three messages come from three different streams */
    FILE *f = fopen(events, "r");
    assert_non_null(f);
    char line[1024], first[3][16] = {"", "", ""};
    int k = 0;
    while (k < 3 && fgets(line, sizeof line, f)) {
        json_t *j = json_loads(line, 0, NULL);
        const char *e = json_string_value(json_object_get(j, "ev"));
        if (e && !strcmp(e, "msg"))
            snprintf(first[k++], sizeof first[0], "%s",
                     json_string_value(json_object_get(j, "name")));
        json_decref(j);
    }
    fclose(f);
    assert_int_equal(k, 3);
    assert_string_not_equal(first[0], first[1]);
    assert_string_not_equal(first[1], first[2]);
    assert_string_not_equal(first[0], first[2]);

    for (int i = 0; i < 3; i++) {
        ws_stream_close(s[i]);
        free(data[i]);
    }
    peer_kill(&srv);
}

/* ---- 3. server killed and restarted mid-stream: resume without gap or duplicate ------ */

struct feeder {
    struct ws_stream *s;
    const unsigned char *data;
    size_t n;
    int rc;
    atomic_int go;   /* quarter k waits for go >= k: the restarts happen mid-stream */
};

static void *feed(void *arg)
{
    struct feeder *f = arg;
    for (size_t off = 0; off < f->n && !f->rc; off += 3000) {
        while ((size_t)atomic_load(&f->go) < off / (f->n / 4))
            nap();
        f->rc = ws_stream_write(f->s, f->data + off, f->n - off < 3000 ? f->n - off : 3000, -1);
    }
    return NULL;
}

static void kill_restart(int use_ingest)
{
    char dir[600], events[700];
    mkdir_fmt(dir, sizeof dir, use_ingest ? "resume-ingest" : "resume-py");
    snprintf(events, sizeof events, "%s/events", dir);
    /* the file already has content: the stream appends after it (base = stat size) */
    char file[700];
    snprintf(file, sizeof file, "%s/take.raw", dir);
    FILE *pre = fopen(file, "wb");
    assert_non_null(pre);
    fputs("HEADER", pre);
    fclose(pre);

    struct peer srv;
    if (use_ingest) {
        if (!ingest_start(&srv, dir, 0)) {
            print_message("no working `pirec ingest` in this build: real-ingest case not run\n");
            skip();
        }
    } else {
        peer_start(&srv, "resume", dir, 0, events);
    }
    int port = srv.port;
    size_t n = san ? 3000000 : 12000000;
    unsigned char *data = make_data(3, n);
    struct ws_target t = target(port, "/take.raw", "take.raw");
    struct ws_options o = {.buffer_bytes = 512 * 1024, .reconnect_max_ms = 400};
    struct ws_stream *s;
    assert_int_equal(ws_stream_open(&t, &o, &s), 0);
    struct feeder f = {s, data, n, 0, 0};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, feed, &f), 0);

    struct ws_stream_stats st;
    for (int round = 0; round < 2; round++) {
        /* kill while data is flowing: some of it is sent but not yet acknowledged */
        uint64_t at = n / 4 * (uint64_t)round + n / 8;
        wait_stats(s, 1);
        int64_t end = now_ms() + 30000;
        do {
            ws_stream_get_stats(s, &st);
            nap();
        } while (st.acked < at && now_ms() < end);
        assert_true(st.acked >= at);
        assert_true(st.resumable);
        peer_kill(&srv);
        wait_stats(s, 0);
        if (use_ingest)
            assert_true(ingest_start(&srv, dir, port));
        else
            peer_start(&srv, "resume", dir, port, events);
        assert_int_equal(srv.port, port);
        atomic_store(&f.go, round + 1);
    }
    atomic_store(&f.go, 3);
    pthread_join(th, NULL);
    assert_int_equal(f.rc, 0);
    assert_int_equal(ws_stream_drain(s, 30000), 0);
    ws_stream_get_stats(s, &st);
    assert_int_equal(st.queued, n);
    assert_int_equal(st.lost, 0);
    assert_int_equal(st.acked, n);
    assert_int_equal(st.pending, 0);
    assert_true(st.reconnects >= 2);
    ws_stream_close(s);
    peer_kill(&srv);

    unsigned char *want = malloc(n + 6);
    memcpy(want, "HEADER", 6);
    memcpy(want + 6, data, n);
    assert_file_equals(file, want, n + 6);
    if (!use_ingest)
        assert_int_equal(count_events(events, "msg", NULL, 2), 0);
    free(want);
    free(data);
}

static void test_resume_kill_restart_python(void **state) { (void)state; kill_restart(0); }
static void test_resume_kill_restart_ingest(void **state) { (void)state; kill_restart(1); }

/* ---- 4. outage longer than the buffer: loss counted, logged, on record --------------- */

static void test_outage_longer_than_buffer(void **state)
{
    (void)state;
    char dir[600], events[700];
    mkdir_fmt(dir, sizeof dir, "outage");
    snprintf(events, sizeof events, "%s/events", dir);
    struct peer srv;
    peer_start(&srv, "resume", dir, 0, events);
    int port = srv.port;
    const size_t cap = 64 * 1024, first = 32 * 1024, second = 200 * 1024;
    unsigned char *data = make_data(4, first + second);
    struct ws_target t = target(port, "/x/cap.raw", "cap.raw");
    struct ws_options o = {.buffer_bytes = cap, .reconnect_max_ms = 300};
    struct ws_stream *s;
    assert_int_equal(ws_stream_open(&t, &o, &s), 0);
    assert_int_equal(ws_stream_write(s, data, first, 0), 0);
    assert_int_equal(ws_stream_drain(s, 20000), 0);

    log_reset();
    peer_kill(&srv);
    wait_stats(s, 0);
    /* a real-time source: never waits, the oldest bytes go */
    for (size_t off = 0; off < second; off += 2560)
        assert_int_equal(ws_stream_write(s, data + first + off,
                                         second - off < 2560 ? second - off : 2560, 0), 0);
    struct ws_stream_stats st;
    ws_stream_get_stats(s, &st);
    assert_int_equal(st.lost, second - cap);
    assert_int_equal(st.pending, cap);

    peer_start(&srv, "resume", dir, port, events);
    assert_int_equal(ws_stream_drain(s, 20000), 0);
    ws_stream_get_stats(s, &st);
    assert_int_equal(st.queued, first + second);
    assert_int_equal(st.lost, second - cap);
    assert_int_equal(st.acked, first + cap);
    assert_int_equal(st.pending, 0);
    assert_int_equal(st.reconnects, 1);

    /* the file: the first part, then the newest `cap` bytes, no hole */
    char file[700];
    snprintf(file, sizeof file, "%s/cap.raw", dir);
    unsigned char *want = malloc(first + cap);
    memcpy(want, data, first);
    memcpy(want + first, data + first + second - cap, cap);
    assert_file_equals(file, want, first + cap);
    /* the loss is on record at the server, once, where it happened */
    char losses[700];
    snprintf(losses, sizeof losses, "%s/cap.raw.losses", dir);
    size_t ll;
    char *lt = (char *)slurp(losses, &ll);
    assert_non_null(lt);
    char wantl[128];
    snprintf(wantl, sizeof wantl, "at %zu bytes %zu\n", first, second - cap);
    assert_int_equal(ll, strlen(wantl));
    assert_memory_equal(lt, wantl, ll);
    /* and in the log: once for the outage, with the byte count */
    char wantlog[128];
    snprintf(wantlog, sizeof wantlog, "%zu bytes lost", second - cap);
    assert_int_equal(log_count(wantlog), 1);
    assert_int_equal(log_count("bytes lost"), 1);

    /* streaming goes on after the outage */
    assert_int_equal(ws_stream_write(s, data, 1000, 0), 0);
    assert_int_equal(ws_stream_drain(s, 20000), 0);
    assert_int_equal(file_size(file), (long)(first + cap + 1000));
    ws_stream_close(s);
    peer_kill(&srv);
    free(lt);
    free(want);
    free(data);
}

/* ---- 5. closing one stream keeps the other streaming -------------------------------- */

/* Streams "a" and "b" on one link, n bytes queued on each. */
static void open_two(int port, const struct ws_options *o, const unsigned char *a,
                     const unsigned char *b, size_t n, struct ws_stream **sa,
                     struct ws_stream **sb)
{
    struct ws_target ta = target(port, "/a", "a"), tb = target(port, "/b", "b");
    assert_int_equal(ws_stream_open(&ta, o, sa), 0);
    assert_int_equal(ws_stream_open(&tb, o, sb), 0);
    assert_int_equal(ws_stream_write(*sa, a, n, -1), 0);
    assert_int_equal(ws_stream_write(*sb, b, n, -1), 0);
}

static void test_close_one_keeps_other(void **state)
{
    (void)state;
    char dir[600], events[700];
    mkdir_fmt(dir, sizeof dir, "closeone");
    snprintf(events, sizeof events, "%s/events", dir);
    struct peer srv;
    peer_start(&srv, "resume", dir, 0, events);
    size_t n = san ? 100000 : 400000;
    unsigned char *a = make_data(5, n), *b = make_data(6, 2 * n);
    struct ws_options o = {.buffer_bytes = 256 * 1024, .reconnect_max_ms = 300};
    struct ws_stream *sa, *sb;
    open_two(srv.port, &o, a, b, n, &sa, &sb);
    assert_int_equal(ws_stream_drain(sa, 20000), 0);
    ws_stream_close(sa);
    assert_int_equal(ws_stream_write(sb, b + n, n, -1), 0);
    assert_int_equal(ws_stream_drain(sb, 20000), 0);
    struct ws_stream_stats st;
    ws_stream_get_stats(sb, &st);
    assert_int_equal(st.acked, 2 * n);
    assert_int_equal(st.reconnects, 0);
    assert_true(st.connected);
    ws_stream_close(sb);
    char file[700];
    snprintf(file, sizeof file, "%s/a", dir);
    assert_file_equals(file, a, n);
    snprintf(file, sizeof file, "%s/b", dir);
    assert_file_equals(file, b, 2 * n);
    assert_int_equal(count_events(events, "conn", NULL, 0), 1);
    peer_kill(&srv);
    free(a);
    free(b);
}

/* ---- a stream that ends on a shared legacy link ----------------------------------- */

/* Waits until the fate of a closed stream is decided (or 20 s pass). */
static void wait_fate(struct ws_fate *f, struct ws_fate_stats *st)
{
    for (int i = 0; i < 2000; i++) {
        ws_fate_get(f, st);
        if (!st->unconfirmed)
            return;
        struct timespec ts = {0, 10000000L};
        nanosleep(&ts, NULL);
    }
}

/* Stream a ends while b still uses the link: a's bytes are on the socket but unconfirmed
 * (pending, not acked) until the link closes cleanly (drop = 0: b finishes, confirmed) or
 * drops (drop = 1: the peer dies, counted lost and logged, never claimed delivered). */
static void legacy_shared_end(int drop)
{
    char dir[600], events[700];
    mkdir_fmt(dir, sizeof dir, drop ? "sharedend-drop" : "sharedend");
    snprintf(events, sizeof events, "%s/events", dir);
    struct peer srv;
    peer_start(&srv, "legacy", dir, 0, events);
    log_reset();
    size_t n = san ? 60000 : 300000;
    unsigned char *a = make_data(21, n), *b = make_data(22, 2 * n);
    struct ws_options o = {.buffer_bytes = 1 << 20, .reconnect_max_ms = 300};
    struct ws_stream *sa, *sb;
    open_two(srv.port, &o, a, b, n, &sa, &sb);
    assert_int_equal(ws_stream_finish(sa, 20000), 0);
    struct ws_stream_stats st;
    ws_stream_get_stats(sa, &st);
    assert_int_equal(st.lost, 0);
    assert_int_equal(st.unconfirmed, n);
    assert_int_equal(st.pending, n);
    assert_int_equal(st.acked, 0);
    struct ws_fate *f = NULL;
    ws_stream_close_fate(sa, &f);
    assert_non_null(f);
    struct ws_fate_stats fs;
    ws_fate_get(f, &fs);
    assert_int_equal(fs.unconfirmed, n);
    if (drop) {
        peer_kill(&srv);
        wait_fate(f, &fs);
        assert_int_equal(fs.unconfirmed, 0);
        assert_int_equal(fs.lost, n);
        assert_int_equal(fs.confirmed, 0);
        assert_int_equal(log_count("stream a (closed): the connection dropped before the legacy "
                                   "server confirmed"), 1);
        ws_stream_close(sb);
    } else {
        assert_int_equal(ws_stream_write(sb, b + n, n, -1), 0);
        assert_int_equal(ws_stream_finish(sb, 20000), 0);   /* the last: closes the link */
        ws_fate_get(f, &fs);
        assert_int_equal(fs.unconfirmed, 0);
        assert_int_equal(fs.confirmed, n);
        assert_int_equal(fs.lost, 0);
        ws_stream_get_stats(sb, &st);
        assert_int_equal(st.acked, 2 * n);
        assert_int_equal(st.pending, 0);
        ws_stream_close(sb);
        char file[700];
        snprintf(file, sizeof file, "%s/a", dir);
        assert_file_equals(file, a, n);
        snprintf(file, sizeof file, "%s/b", dir);
        assert_file_equals(file, b, 2 * n);
        peer_kill(&srv);
    }
    ws_fate_put(f);
    free(a);
    free(b);
}

static void test_legacy_shared_end_confirmed(void **state) { (void)state; legacy_shared_end(0); }
static void test_legacy_shared_end_dropped(void **state) { (void)state; legacy_shared_end(1); }

/* ---- wss:// with a self-signed certificate ---------------------------------------- */

static void test_wss_ca_file(void **state)
{
    (void)state;
    char dir[600], cmd[2048], cert[700], key[700], events[700];
    mkdir_fmt(dir, sizeof dir, "wss");
    snprintf(cert, sizeof cert, "%s/cert.pem", dir);
    snprintf(key, sizeof key, "%s/key.pem", dir);
    snprintf(events, sizeof events, "%s/events", dir);
    snprintf(cmd, sizeof cmd,
             "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
             "-keyout '%s' -out '%s' -days 2 -subj /CN=127.0.0.1 "
             "-addext subjectAltName=IP:127.0.0.1,DNS:localhost >/dev/null 2>&1", key, cert);
    if (system(cmd) != 0) {
        print_message("openssl CLI cannot make a certificate here: wss case not run\n");
        skip();
    }
    const char *src = getenv("PIREC_SRC");
    char script[1024], log[1024];
    snprintf(script, sizeof script, "%s/tests/support/ws_peer.py", src ? src : ".");
    snprintf(log, sizeof log, "%s/peer.log", tmpdir);
    char *argv[] = {"/usr/bin/python3", script, "--mode", "resume", "--dir", dir, "--port", "0",
                    "--events", events, "--ssl-cert", cert, "--ssl-key", key, NULL};
    struct peer srv;
    assert_int_equal(spawn(&srv, argv, "PORT ", log), 0);

    size_t n = 300000;
    unsigned char *data = make_data(7, n);
    struct ws_options o = {.buffer_bytes = 1 << 20, .reconnect_max_ms = 300};

    /* without the CA the certificate is refused and nothing is delivered */
    log_reset();
    struct ws_target t = target(srv.port, "/untrusted", "untrusted");
    t.tls = 1;
    struct ws_stream *s;
    unsetenv("PIREC_WS_CA_FILE");
    assert_int_equal(ws_stream_open(&t, &o, &s), 0);
    assert_int_equal(ws_stream_write(s, data, 1000, 0), 0);
    int64_t end = now_ms() + 20000;
    while (log_count("cannot connect") == 0 && now_ms() < end)
        nap();
    assert_int_equal(log_count("cannot connect"), 1);
    struct ws_stream_stats st;
    ws_stream_get_stats(s, &st);
    assert_false(st.connected);
    assert_int_equal(st.acked, 0);
    ws_stream_close(s);

    /* with PIREC_WS_CA_FILE it verifies and streams */
    setenv("PIREC_WS_CA_FILE", cert, 1);
    t = target(srv.port, "/secure.raw", "secure.raw");
    t.tls = 1;
    assert_int_equal(ws_stream_open(&t, &o, &s), 0);
    assert_int_equal(ws_stream_write(s, data, n, -1), 0);
    assert_int_equal(ws_stream_drain(s, 20000), 0);
    ws_stream_get_stats(s, &st);
    assert_true(st.resumable);
    assert_int_equal(st.acked, n);
    ws_stream_close(s);
    unsetenv("PIREC_WS_CA_FILE");
    char file[700];
    snprintf(file, sizeof file, "%s/secure.raw", dir);
    assert_file_equals(file, data, n);
    assert_int_equal(count_events(events, "msg", NULL, 2), 0);
    peer_kill(&srv);
    free(data);
}

/* ---- bad input --------------------------------------------------------------------- */

static void test_bad_targets(void **state)
{
    (void)state;
    struct ws_options o = {.buffer_bytes = 4096, .reconnect_max_ms = 300};
    struct ws_stream *s = (void *)1;
    struct ws_target t = target(1, "/../x", "..");
    assert_int_equal(ws_stream_open(&t, &o, &s), -EINVAL);
    assert_null(s);
    t = target(1, "/", "");
    assert_int_equal(ws_stream_open(&t, &o, &s), -EINVAL);
    t = target(0, "/a", "a");
    assert_int_equal(ws_stream_open(&t, &o, &s), -EINVAL);
    /* nobody listens: open works, data waits, drain times out, abort releases a writer */
    t = target(free_port(), "/a", "a");
    assert_int_equal(ws_stream_open(&t, &o, &s), 0);
    unsigned char buf[4096] = {0};
    assert_int_equal(ws_stream_write(s, buf, sizeof buf, 0), 0);
    assert_int_equal(ws_stream_drain(s, 100), -ETIMEDOUT);
    ws_stream_abort(s);
    assert_int_equal(ws_stream_write(s, buf, sizeof buf, -1), -ECANCELED);
    ws_stream_close(s);
}

static int setup(void **state)
{
    (void)state;
    const char *t = getenv("TEST_TMP");
    if (t && *t) {
        snprintf(tmpdir, sizeof tmpdir, "%s", t);
        mkdir(tmpdir, 0755);
    } else {
        snprintf(tmpdir, sizeof tmpdir, "/tmp/test_ws_link.XXXXXX");
        if (!mkdtemp(tmpdir))
            return -1;
    }
    const char *sv = getenv("PIREC_SAN");
    san = sv && sv[0] == '1';
    signal(SIGPIPE, SIG_IGN);
    plog_set_sink(log_sink, NULL);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_bad_targets, kill_all),
        cmocka_unit_test_teardown(test_legacy_fragments_path_bytes, kill_all),
        cmocka_unit_test_teardown(test_legacy_reconnect_resends_unsent, kill_all),
        cmocka_unit_test_teardown(test_three_streams_one_connection, kill_all),
        cmocka_unit_test_teardown(test_resume_kill_restart_python, kill_all),
        cmocka_unit_test_teardown(test_resume_kill_restart_ingest, kill_all),
        cmocka_unit_test_teardown(test_outage_longer_than_buffer, kill_all),
        cmocka_unit_test_teardown(test_close_one_keeps_other, kill_all),
        cmocka_unit_test_teardown(test_legacy_shared_end_confirmed, kill_all),
        cmocka_unit_test_teardown(test_legacy_shared_end_dropped, kill_all),
        cmocka_unit_test_teardown(test_wss_ca_file, kill_all),
    };
    return cmocka_run_group_tests(tests, setup, kill_all);
}
