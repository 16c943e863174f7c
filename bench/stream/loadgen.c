/*
 * loadgen: N real-time record-module streams into one `pirec ingest`, for bench/stream/run.
 *
 * Each stream is one libwebsockets client connection (subprotocol pirec.resume.1, a stat
 * first, then one message `<name> NUL <2560 bytes>` every 80 ms in two fragments, like
 * pirec's record module sends 16 kHz 16-bit mono). All on one thread with one poll loop.
 * A stream whose backlog passes --max-backlog-ms (default 5 s; pirec's own client buffers
 * 8 MiB, minutes of such a stream) drops its oldest chunk: that is a loss. At the end every file is checked byte for byte.
 *
 *   loadgen --port P --dir DIR --streams N --seconds S --pid INGEST_PID [--first K]
 *
 * --first K numbers this process's streams from K, so that several loadgen processes can
 * share one load (libwebsockets 4.1's fd lookup grows with the connections of a context).
 *
 * Prints one JSON line with the counts, the ingest's CPU % and RSS over the steady part.
 */
#include <libwebsockets.h>

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define CHUNK 2560
#define PERIOD_US 80000

struct stream {
    struct lws *wsi;
    int idx;
    char name[16];
    size_t name_len;
    int connected, closed, failed, stat_sent;
    int64_t next_due;
    uint64_t produced, sent, dropped; /* chunk counters: produced = sent + dropped + backlog */
    int frag;                         /* 0: next write starts a message, 1: its second half */
    int closing;
    uint64_t max_backlog;
    uint64_t acks;
    unsigned char tail[CHUNK / 2]; /* the second half of the chunk whose first is on the wire */
};

static struct stream *streams;
static int nstreams, port, seconds, max_backlog_chunks;
static const char *dir;
static struct lws_context *ctx;
static lws_sorted_usec_list_t tick;
static int started, producing = 1, closing_all;
static int nconnected, nclosed, nfailed, next_connect;
static int64_t t_start, t_steady, t_end;

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Content of chunk k of stream i: a cheap pattern that differs per stream and chunk, made
 * a 32-bit word at a time (the generator must cost far less than the ingest it loads). */
static void fill(unsigned char *p, int i, uint64_t k)
{
    uint32_t x = (uint32_t)(i * 2654435761u) ^ (uint32_t)(k * 40503u) ^ 0x9e3779b9u;
    for (int j = 0; j < CHUNK; j += 4) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        memcpy(p + j, &x, 4);
    }
}

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                    size_t len)
{
    struct stream *s = user;
    switch (reason) {
    case LWS_CALLBACK_CLIENT_ESTABLISHED:
        s->connected = 1;
        nconnected++;
        lws_callback_on_writable(wsi);
        break;
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
        fprintf(stderr, "loadgen: stream %d: connection error: %s\n", s->idx,
                in ? (const char *)in : "?");
        s->failed = 1;
        s->wsi = NULL;
        nfailed++;
        break;
    case LWS_CALLBACK_CLIENT_RECEIVE:
        s->acks++;
        break;
    case LWS_CALLBACK_CLIENT_WRITEABLE: {
        static unsigned char buf[LWS_PRE + 32 + CHUNK];
        if (!s->stat_sent) {
            int n = snprintf((char *)buf + LWS_PRE, 64, "{\"op\":\"stat\",\"name\":\"%s\"}",
                             s->name);
            s->stat_sent = 1;
            if (lws_write(wsi, buf + LWS_PRE, (size_t)n, LWS_WRITE_TEXT) < 0)
                return -1;
        } else if (s->frag == 0 && s->produced > s->sent + s->dropped) {
            uint64_t k = s->sent + s->dropped; /* chunk index = file position / CHUNK */
            unsigned char *p = buf + LWS_PRE;
            memcpy(p, s->name, s->name_len + 1);
            fill(p + s->name_len + 1, s->idx, k);
            memcpy(s->tail, p + s->name_len + 1 + CHUNK / 2, CHUNK / 2);
            s->frag = 1;
            if (lws_write(wsi, p, s->name_len + 1 + CHUNK / 2,
                          LWS_WRITE_BINARY | LWS_WRITE_NO_FIN) < 0)
                return -1;
        } else if (s->frag == 1) {
            unsigned char *p = buf + LWS_PRE;
            memcpy(p, s->tail, CHUNK / 2);
            s->frag = 0;
            s->sent++;
            if (lws_write(wsi, p, CHUNK / 2, LWS_WRITE_CONTINUATION) < 0)
                return -1;
        } else if (s->closing) {
            lws_close_reason(wsi, LWS_CLOSE_STATUS_NORMAL, NULL, 0);
            return -1;
        }
        if (s->frag || s->produced > s->sent + s->dropped || s->closing)
            lws_callback_on_writable(wsi);
        break;
    }
    case LWS_CALLBACK_CLIENT_CLOSED:
        if (!s->closing)
            fprintf(stderr, "loadgen: stream %d closed by the server\n", s->idx);
        s->closed = 1;
        s->wsi = NULL;
        nclosed++;
        break;
    default:
        break;
    }
    return 0;
}

static const struct lws_protocols protocols[] = {
    {"gen", callback, 0, 4096, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

static void connect_one(struct stream *s)
{
    struct lws_client_connect_info ci;
    memset(&ci, 0, sizeof ci);
    ci.context = ctx;
    ci.address = "127.0.0.1";
    ci.port = port;
    ci.path = "/bench";
    ci.host = ci.address;
    ci.origin = ci.address;
    ci.protocol = "pirec.resume.1";
    ci.local_protocol_name = "gen";
    ci.userdata = s;
    ci.pwsi = &s->wsi;
    if (!lws_client_connect_via_info(&ci)) {
        s->failed = 1;
        nfailed++;
    }
}

static void on_tick(lws_sorted_usec_list_t *sul)
{
    int64_t now = now_us();
    /* Connect in batches so the listen backlog is never the problem measured. */
    for (int b = 0; b < 50 && next_connect < nstreams; b++)
        connect_one(&streams[next_connect++]);
    if (!started && nconnected + nfailed == nstreams) {
        started = 1;
        t_start = now;
        t_steady = now + 2000000; /* CPU is measured after 2 s of warm-up */
        t_end = now + (int64_t)seconds * 1000000;
        for (int i = 0; i < nstreams; i++) /* spread the streams over the period */
            streams[i].next_due = now + (int64_t)i * PERIOD_US / nstreams;
    }
    if (started && producing) {
        if (now >= t_end)
            producing = 0;
        for (int i = 0; i < nstreams && producing; i++) {
            struct stream *s = &streams[i];
            if (!s->connected || s->closed)
                continue;
            int more = 0;
            while (now >= s->next_due) {
                s->produced++;
                s->next_due += PERIOD_US;
                more = 1;
            }
            uint64_t backlog = s->produced - s->sent - s->dropped;
            if (backlog > s->max_backlog)
                s->max_backlog = backlog;
            while (backlog > (uint64_t)max_backlog_chunks + (s->frag ? 1 : 0)) {
                /* Never drop the chunk whose first half is on the wire. */
                if (s->frag)
                    break;
                s->dropped++;
                backlog--;
            }
            if (more)
                lws_callback_on_writable(s->wsi);
        }
    }
    if (started && !producing && !closing_all) {
        int pending = 0;
        for (int i = 0; i < nstreams; i++) {
            struct stream *s = &streams[i];
            if (s->connected && !s->closed && (s->frag || s->produced > s->sent + s->dropped))
                pending = 1;
        }
        if (!pending) {
            closing_all = 1;
            for (int i = 0; i < nstreams; i++)
                if (streams[i].wsi && !streams[i].closed) {
                    streams[i].closing = 1;
                    lws_callback_on_writable(streams[i].wsi);
                }
        }
    }
    lws_sul_schedule(ctx, 0, &tick, on_tick, 5000);
}

static int proc_cpu_ticks(int pid, unsigned long long *ticks)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return -errno;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return -EIO;
    buf[n] = '\0';
    char *p = strrchr(buf, ')');
    unsigned long long ut = 0, st = 0;
    /* after ") ": state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt
     * utime stime */
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut,
                     &st) != 2)
        return -EINVAL;
    *ticks = ut + st;
    return 0;
}

static long proc_status_kib(int pid, const char *key)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    long v = -1;
    size_t kl = strlen(key);
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, key, kl) && line[kl] == ':')
            v = atol(line + kl + 1);
    fclose(f);
    return v;
}

static int verify(struct stream *s)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, s->name);
    /* lws hangs up after sending its close without waiting for the answer, so the ingest
     * may still be writing the last messages: wait (bounded) for the file to be whole. */
    int64_t until = now_us() + 10000000;
    struct stat stt;
    while (stat(path, &stt) == 0 && stt.st_size < (off_t)(s->sent * CHUNK) && now_us() < until)
        usleep(10000);
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return -errno;
    unsigned char got[CHUNK], want[CHUNK];
    int rc = 0;
    /* With drops the chunk indices in the file have holes: only the size is checked. */
    for (uint64_t k = 0; k < s->sent && !s->dropped; k++) {
        if (pread(fd, got, CHUNK, (off_t)(k * CHUNK)) != CHUNK) {
            rc = -EIO;
            break;
        }
        fill(want, s->idx, k);
        if (memcmp(got, want, CHUNK)) {
            rc = -EBADMSG;
            break;
        }
    }
    off_t size = lseek(fd, 0, SEEK_END);
    close(fd);
    if (rc == 0 && size != (off_t)(s->sent * CHUNK))
        rc = -ERANGE;
    return rc;
}

int main(int argc, char **argv)
{
    int pid = 0;
    int max_backlog_ms = 5000;
    int first = 0;
    static const struct option opts[] = {
        {"port", required_argument, NULL, 'p'},   {"dir", required_argument, NULL, 'd'},
        {"streams", required_argument, NULL, 'n'}, {"seconds", required_argument, NULL, 's'},
        {"pid", required_argument, NULL, 'i'},
        {"max-backlog-ms", required_argument, NULL, 'b'}, {"first", required_argument, NULL, 'f'},
        {NULL, 0, NULL, 0},
    };
    int c;
    seconds = 10;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'p': port = atoi(optarg); break;
        case 'd': dir = optarg; break;
        case 'n': nstreams = atoi(optarg); break;
        case 's': seconds = atoi(optarg); break;
        case 'i': pid = atoi(optarg); break;
        case 'b': max_backlog_ms = atoi(optarg); break;
        case 'f': first = atoi(optarg); break;
        default: return 2;
        }
    }
    if (!port || !dir || nstreams <= 0 || seconds < 3) {
        fprintf(stderr, "usage: loadgen --port P --dir DIR --streams N --seconds S(>=3) "
                        "[--pid PID] [--max-backlog-ms MS]\n");
        return 2;
    }
    max_backlog_chunks = max_backlog_ms * 1000 / PERIOD_US;
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);

    streams = calloc((size_t)nstreams, sizeof *streams);
    for (int i = 0; i < nstreams; i++) {
        streams[i].idx = first + i;
        snprintf(streams[i].name, sizeof streams[i].name, "rt%05d", first + i);
        streams[i].name_len = strlen(streams[i].name);
    }
    lws_set_log_level(LLL_ERR, NULL);
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.protocols = protocols;
    info.fd_limit_per_thread = (unsigned)(nstreams + 64);
    info.gid = (gid_t)-1;
    info.uid = (uid_t)-1;
    ctx = lws_create_context(&info);
    if (!ctx) {
        fprintf(stderr, "loadgen: no lws context\n");
        return 1;
    }
    lws_sul_schedule(ctx, 0, &tick, on_tick, 1000);

    unsigned long long c0 = 0, c1 = 0;
    struct rusage r0, r1;
    int64_t steady0 = 0, steady1 = 0;
    long rss = -1, hwm = -1;
    int64_t deadline = now_us() + (int64_t)(seconds + 60) * 1000000;
    while (now_us() < deadline) {
        lws_service(ctx, 0);
        int64_t now = now_us();
        if (started && !steady0 && now >= t_steady) {
            steady0 = now;
            if (pid)
                proc_cpu_ticks(pid, &c0);
            getrusage(RUSAGE_SELF, &r0);
        }
        if (started && steady0 && !steady1 && !producing) {
            steady1 = now;
            if (pid) {
                proc_cpu_ticks(pid, &c1);
                rss = proc_status_kib(pid, "VmRSS");
                hwm = proc_status_kib(pid, "VmHWM");
            }
            getrusage(RUSAGE_SELF, &r1);
        }
        if (closing_all && nclosed + nfailed >= nstreams)
            break;
        if (!started && nfailed == nstreams)
            break;
    }
    lws_sul_cancel(&tick);
    lws_context_destroy(ctx);

    uint64_t sent = 0, dropped = 0, maxb = 0, acks = 0;
    int ok = 0, bad = 0;
    for (int i = 0; i < nstreams; i++) {
        struct stream *s = &streams[i];
        sent += s->sent;
        dropped += s->dropped;
        acks += s->acks;
        if (s->max_backlog > maxb)
            maxb = s->max_backlog;
        int vr = s->connected ? verify(s) : -ENOTCONN;
        if (vr == 0) {
            ok++;
        } else {
            if (bad < 5)
                fprintf(stderr, "loadgen: stream %s: %s (sent %llu chunks, dropped %llu, "
                        "closed %d, failed %d)\n", s->name, strerror(-vr),
                        (unsigned long long)s->sent, (unsigned long long)s->dropped,
                        s->closed, s->failed);
            bad++;
        }
    }
    double secs = steady1 > steady0 ? (double)(steady1 - steady0) / 1e6 : 0;
    double icpu = secs > 0 ? (double)(c1 - c0) / (double)sysconf(_SC_CLK_TCK) / secs * 100 : -1;
    double gcpu = -1;
    if (secs > 0) {
        double u = (double)(r1.ru_utime.tv_sec - r0.ru_utime.tv_sec) +
                   (double)(r1.ru_utime.tv_usec - r0.ru_utime.tv_usec) / 1e6 +
                   (double)(r1.ru_stime.tv_sec - r0.ru_stime.tv_sec) +
                   (double)(r1.ru_stime.tv_usec - r0.ru_stime.tv_usec) / 1e6;
        gcpu = u / secs * 100;
    }
    printf("{\"streams\":%d,\"connected\":%d,\"failed\":%d,\"chunks_sent\":%llu,"
           "\"chunks_dropped\":%llu,\"max_backlog_ms\":%llu,\"acks\":%llu,\"verified\":%d,"
           "\"bad\":%d,\"ingest_cpu_pct\":%.1f,\"ingest_rss_kib\":%ld,\"ingest_hwm_kib\":%ld,"
           "\"loadgen_cpu_pct\":%.1f,\"steady_seconds\":%.1f}\n",
           nstreams, nconnected, nfailed, (unsigned long long)sent, (unsigned long long)dropped,
           (unsigned long long)(maxb * PERIOD_US / 1000), (unsigned long long)acks, ok, bad,
           icpu, rss, hwm, gcpu, secs);
    free(streams);
    return (bad == 0 && dropped == 0 && nfailed == 0) ? 0 : 1;
}
