/*
 * loadgen: N real-time record-module streams into one `pirec ingest`, for bench/stream/run.
 *
 * Each stream is one WebSocket client connection (subprotocol pirec.resume.1, a stat
 * first, then one message `<name> NUL <2560 bytes>` every 80 ms in two fragments, like
 * pirec's record module sends 16 kHz 16-bit mono), the chunks of all streams spread evenly
 * over the period. One thread, one epoll set (edge-triggered), nonblocking sockets. A
 * stream whose backlog (chunks due but not wholly sent) passes --max-backlog-ms (default
 * 5 s; pirec's own client buffers 8 MiB, minutes of such a stream) drops its oldest chunk
 * not yet on the wire: that is a loss. At the end each stream closes with a close
 * handshake (the ingest answers once that stream's data is in the files) and every file is
 * checked byte for byte.
 *
 *   loadgen --port P --dir DIR --streams N --seconds S --pid INGEST_PID [--first K]
 *           [--max-backlog-ms MS]
 *
 * --first K numbers this process's streams from K, so that several loadgen processes can
 * share one load (and both cores).
 *
 * Prints one JSON line with the counts, the largest backlog over the whole run and over its
 * last 2 s (final_backlog_ms: whether the generator kept up), the same for the ack lag
 * (chunks due but not yet acknowledged by the ingest: whether the ingest kept up; the
 * kernel's socket buffers can hold seconds of a stream that the backlog does not see),
 * and the CPU % of the ingest and of this process and the ingest's RSS over the steady
 * part.
 *
 * Why not libwebsockets: the generator must cost far less than the ingest it loads, and
 * with lws 4.1 it did not. Its poll() loop scans every connection on each service call,
 * and each chunk costs a callback_on_writable, a service round and two lws_write()s (one
 * per fragment, each a send(), the payload masked a byte at a time). At 4000 streams the
 * two lws generators used 110-140 % of this 2-core machine while the ingest used 40-70 %
 * of one core, and over 30 s their backlog grew past 5 s (14000 chunks dropped): the
 * benchmark measured its load generator. Here a chunk is one mask-copy pass of its two
 * frames into the stream's out buffer and one send(), the due chunks are found without a
 * scan, and an ack costs one recv(). The frames are the record module's own
 * (src/record/ws_frame.c); the upgrade is a few lines of HTTP checked by hand. Same
 * machine, 30 s steps: at 3000 streams the lws generators used 60-120 % CPU, up to 5.4 s
 * behind (two runs of five dropped chunks), these 41-47 % with no chunk ever behind; at
 * 4000, 70-114 % and 4.4-6.6 s behind against 52-61 %. About three quarters of what
 * remains is the kernel's (loopback TCP is charged to the sender).
 */
#include "record/ws_frame.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define CHUNK 2560
#define HALF (CHUNK / 2)
#define PERIOD_US 80000
#define BATCH 4                      /* chunks of a backlog handed to one send() */
#define CHUNK_WIRE (2 * WS_FRAME_HDR_MAX + 16 + CHUNK)
#define OUT_CAP (BATCH * CHUNK_WIRE + 512)
#define IN_CAP 2048                  /* the ingest's frames to us are small: acks, pings */
#define CONNECT_BATCH 50             /* connections opened per CONNECT_EVERY_US */
#define CONNECT_EVERY_US 5000
#define HANDSHAKE_US 10000000        /* a stream not open after this has failed */
#define FINAL_WINDOW_US 2000000      /* final_backlog_ms: the last 2 s of producing */
#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#define PROTO "pirec.resume.1"

enum state {
    S_NEW,        /* not connected yet */
    S_CONNECTING, /* TCP connect under way */
    S_UPGRADING,  /* request written (or queued), waiting for the 101 */
    S_OPEN,       /* sending stat and chunks */
    S_CLOSING,    /* our close frame queued, waiting for the ingest's */
    S_DONE,       /* close handshake complete */
    S_FAILED,     /* never opened */
    S_LOST,       /* opened, then ended without a close handshake */
};

struct stream {
    int fd, idx;
    enum state st;
    int writable;                    /* no EAGAIN since the last EPOLLOUT edge */
    char name[16];
    size_t name_len;
    char key[32];                    /* Sec-WebSocket-Key, base64 of 16 random bytes */
    int64_t t_connect;
    /* chunk ordinals: produced = due so far; next_k = the next one to frame (those below
     * are sent, dropped or in `out`); produced - sent - dropped = the backlog */
    uint64_t produced, next_k, sent, dropped;
    uint64_t max_backlog, final_backlog, acks;
    /* what the ingest says it stored: base = the file's size at our stat, acked = the
     * size in its last ack; the ack lag = chunks produced, not dropped, not yet acked */
    uint64_t base, acked;
    int have_base;
    uint64_t max_ack_lag, final_ack_lag;
    unsigned char *out;              /* OUT_CAP bytes of frames not yet sent */
    size_t out_off, out_len;
    size_t ends[BATCH];              /* where the chunks in `out` end (ascending) */
    int nends;
    unsigned char in[IN_CAP];        /* received bytes not yet parsed */
    size_t in_len;
    char why[160];                   /* why it failed or was lost */
};

static struct stream *streams;
static int nstreams, port, seconds, max_backlog_chunks, epfd;
static const char *dir;
static struct ws_keys keys;
static int started, producing, ending;
static int nconnected, nfailed, nterminal, next_connect, nmsgs;
static uint64_t due_g;               /* the next due chunk over all streams, in order */
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

static void next_key(unsigned char key[4])
{
    if (ws_keys_next(&keys, key) < 0) {
        fprintf(stderr, "loadgen: OpenSSL's RAND_bytes failed: no mask key\n");
        exit(1);
    }
}

static int terminal(const struct stream *s)
{
    return s->st == S_DONE || s->st == S_FAILED || s->st == S_LOST;
}

/* Ends stream s: st is S_DONE, S_FAILED or S_LOST; for the last two, why says why (the
 * first few are printed, all of them are counted at the end). */
static void finish(struct stream *s, enum state st, const char *fmt, ...)
{
    if (terminal(s))
        return;
    if (fmt) {
        char why[sizeof s->why];   /* an argument may be s->why itself */
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(why, sizeof why, fmt, ap);
        va_end(ap);
        memcpy(s->why, why, sizeof why);
        if (nmsgs++ < 5)
            fprintf(stderr, "loadgen: stream %s: %s\n", s->name, s->why);
    }
    if (s->fd >= 0)
        close(s->fd);   /* also leaves the epoll set */
    s->fd = -1;
    s->st = st;
    if (st == S_FAILED)
        nfailed++;
    nterminal++;
}

static void lose(struct stream *s, const char *fmt, ...)
{
    char buf[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    finish(s, s->st == S_OPEN || s->st == S_CLOSING ? S_LOST : S_FAILED, "%s", buf);
}

/* Room for n more bytes at the end of out (moves what is left to the front). */
static unsigned char *out_room(struct stream *s, size_t n)
{
    if (s->out_len + n > OUT_CAP && s->out_off) {
        memmove(s->out, s->out + s->out_off, s->out_len - s->out_off);
        for (int j = 0; j < s->nends; j++)
            s->ends[j] -= s->out_off;
        s->out_len -= s->out_off;
        s->out_off = 0;
    }
    return s->out_len + n <= OUT_CAP ? s->out + s->out_len : NULL;
}

/* Queues one masked control or text frame (payload <= 125 bytes). */
static int queue_frame(struct stream *s, int opcode, const void *payload, size_t n)
{
    unsigned char *p = out_room(s, WS_FRAME_HDR_MAX + n);
    if (!p)
        return -ENOBUFS;
    unsigned char key[4];
    next_key(key);
    size_t h = ws_frame_header(p, opcode, 1, n, key);
    ws_frame_mask_copy(p + h, payload, n, key, 0);
    s->out_len += h + n;
    return 0;
}

/* Frames chunk ordinal k of s (its two fragments, each with a fresh mask key) into out. */
static void queue_chunk(struct stream *s, uint64_t k)
{
    static unsigned char plain[16 + CHUNK];
    size_t first = s->name_len + 1 + HALF;
    memcpy(plain, s->name, s->name_len + 1);
    fill(plain + s->name_len + 1, s->idx, k);
    unsigned char *p = s->out + s->out_len, key[4];
    size_t n = 0;
    next_key(key);
    n += ws_frame_header(p, WS_OP_BINARY, 0, first, key);
    ws_frame_mask_copy(p + n, plain, first, key, 0);
    n += first;
    next_key(key);
    n += ws_frame_header(p + n, WS_OP_CONT, 1, HALF, key);
    ws_frame_mask_copy(p + n, plain + first, HALF, key, 0);
    n += HALF;
    s->out_len += n;
    s->ends[s->nends++] = s->out_len;
}

/* Sends what s has queued and frames more (chunks due, then the close) while the socket
 * takes it. A short send means the socket buffer is full: the next EPOLLOUT edge resumes. */
static void pump(struct stream *s)
{
    for (;;) {
        if (s->out_off < s->out_len) {
            if (!s->writable)
                return;
            size_t want = s->out_len - s->out_off;
            ssize_t n = send(s->fd, s->out + s->out_off, want, MSG_NOSIGNAL);
            if (n < 0) {
                if (errno == EAGAIN || errno == EWOULDBLOCK) {
                    s->writable = 0;
                    return;
                }
                if (errno == EINTR)
                    continue;
                lose(s, "send: %s", strerror(errno));
                return;
            }
            s->out_off += (size_t)n;
            int k = 0;
            while (k < s->nends && s->ends[k] <= s->out_off)
                k++;
            if (k) {
                s->sent += (uint64_t)k;
                memmove(s->ends, s->ends + k, (size_t)(s->nends - k) * sizeof s->ends[0]);
                s->nends -= k;
            }
            if (s->out_off == s->out_len)
                s->out_off = s->out_len = 0;
            if ((size_t)n < want) {
                s->writable = 0;
                return;
            }
            continue;
        }
        if (s->st != S_OPEN)
            return;
        if (s->next_k < s->produced) {
            for (int b = 0; b < BATCH && s->next_k < s->produced; b++)
                queue_chunk(s, s->next_k++);
            continue;
        }
        if (ending) {    /* every chunk is on the wire: close (1000) */
            static const unsigned char normal[2] = {0x03, 0xe8};
            queue_frame(s, 0x8, normal, 2);
            s->st = S_CLOSING;
            continue;
        }
        return;
    }
}

static void start_connect(struct stream *s)
{
    s->t_connect = now_us();
    s->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (s->fd < 0) {
        finish(s, S_FAILED, "socket: %s", strerror(errno));
        return;
    }
    int one = 1;   /* as pirec's client: a chunk goes out when written */
    setsockopt(s->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(s->fd, (struct sockaddr *)&a, sizeof a) < 0 && errno != EINPROGRESS) {
        finish(s, S_FAILED, "connect to 127.0.0.1:%d: %s", port, strerror(errno));
        return;
    }
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET,
                             .data.u32 = (uint32_t)(s - streams)};
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, s->fd, &ev) < 0) {
        finish(s, S_FAILED, "epoll_ctl: %s", strerror(errno));
        return;
    }
    s->st = S_CONNECTING;
}

/* The connect finished: queue the upgrade request. */
static void on_connected(struct stream *s)
{
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
        err = errno;
    if (err) {
        finish(s, S_FAILED, "connect to 127.0.0.1:%d: %s", port, strerror(err));
        return;
    }
    unsigned char raw[16];
    if (RAND_bytes(raw, sizeof raw) != 1) {
        finish(s, S_FAILED, "RAND_bytes failed: no Sec-WebSocket-Key");
        return;
    }
    EVP_EncodeBlock((unsigned char *)s->key, raw, sizeof raw);
    int n = snprintf((char *)s->out, OUT_CAP,
                     "GET /bench HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                     "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: " PROTO "\r\n\r\n",
                     port, s->key);
    s->out_off = 0;
    s->out_len = (size_t)n;
    s->st = S_UPGRADING;
}

/* Value of header `name` in the response head (lines after the status line), trimmed;
 * NULL when absent. */
static const char *header(char *head, const char *name, size_t *vlen)
{
    size_t nl = strlen(name);
    for (char *line = strstr(head, "\r\n"); line && line[2]; line = strstr(line + 2, "\r\n")) {
        char *l = line + 2;
        if (strncasecmp(l, name, nl) || l[nl] != ':')
            continue;
        char *v = l + nl + 1, *e = strstr(v, "\r\n");
        while (*v == ' ' || *v == '\t')
            v++;
        while (e > v && (e[-1] == ' ' || e[-1] == '\t'))
            e--;
        *vlen = (size_t)(e - v);
        return v;
    }
    return NULL;
}

static int value_is(const char *v, size_t n, const char *want)
{
    return v && n == strlen(want) && !strncmp(v, want, n);
}

/* Checks the 101 answer at the start of s->in (its head NUL-terminated in place); 0 or
 * -EPROTO with s->why set. */
static int check_upgrade(struct stream *s)
{
    char *head = (char *)s->in, *eol = strstr(head, "\r\n");
    const char *v;
    size_t n;
    if (strncmp(head, "HTTP/1.1 101", 12)) {
        snprintf(s->why, sizeof s->why, "upgrade refused: %.*s", (int)(eol - head), head);
        return -EPROTO;
    }
    v = header(head, "Upgrade", &n);
    if (!v || n != 9 || strncasecmp(v, "websocket", 9)) {
        snprintf(s->why, sizeof s->why, "101 without Upgrade: websocket");
        return -EPROTO;
    }
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned mdlen = 0;
    char both[64], accept[64];
    int bn = snprintf(both, sizeof both, "%s" WS_GUID, s->key);
    if (!EVP_Digest(both, (size_t)bn, md, &mdlen, EVP_sha1(), NULL)) {
        snprintf(s->why, sizeof s->why, "EVP_Digest(SHA-1) failed");
        return -EPROTO;
    }
    EVP_EncodeBlock((unsigned char *)accept, md, (int)mdlen);
    v = header(head, "Sec-WebSocket-Accept", &n);
    if (!value_is(v, n, accept)) {
        snprintf(s->why, sizeof s->why, "Sec-WebSocket-Accept is %.*s, not %s",
                 v ? (int)(n > 40 ? 40 : n) : 6, v ? v : "absent", accept);
        return -EPROTO;
    }
    v = header(head, "Sec-WebSocket-Protocol", &n);
    if (!value_is(v, n, PROTO)) {
        snprintf(s->why, sizeof s->why, "the server did not answer the subprotocol " PROTO
                 " (Sec-WebSocket-Protocol: %.*s)", v ? (int)(n > 40 ? 40 : n) : 6,
                 v ? v : "absent");
        return -EPROTO;
    }
    return 0;
}

/* One whole frame from the ingest (unmasked, payload p[0, n)). */
static void on_frame(struct stream *s, int opcode, const unsigned char *p, size_t n)
{
    switch (opcode) {
    case 0x1: { /* text: pirec.resume.1 control messages: the stat's answer, acks */
        const unsigned char *sz = memmem(p, n, "\"size\":", 7);
        uint64_t size = 0;
        for (size_t j = sz ? (size_t)(sz - p) + 7 : n; j < n && p[j] >= '0' && p[j] <= '9'; j++)
            size = size * 10 + (uint64_t)(p[j] - '0');
        if (memmem(p, n, "\"op\":\"ack\"", 10)) {
            s->acks++;
            s->acked = size;
        } else if (memmem(p, n, "\"op\":\"stat\"", 11) && !s->have_base) {
            s->base = s->acked = size;
            s->have_base = 1;
        }
        break;
    }
    case 0x8: { /* close */
        unsigned code = n >= 2 ? (unsigned)p[0] << 8 | p[1] : 1005;
        if (s->st == S_CLOSING) {
            finish(s, S_DONE, NULL);
            break;
        }
        /* The ingest closed first: answer (RFC 6455 5.5.1), then count the stream lost. */
        if (queue_frame(s, 0x8, p, n >= 2 ? 2 : 0) == 0) {
            s->st = S_CLOSING;   /* nothing more is framed */
            pump(s);
        }
        lose(s, "the ingest closed the connection (code %u%s%.*s)", code, n > 2 ? ": " : "",
             n > 2 ? (int)(n - 2) : 0, n > 2 ? (const char *)p + 2 : "");
        break;
    }
    case 0x9: /* ping */
        if (queue_frame(s, 0xA, p, n) == 0)
            pump(s);
        else
            lose(s, "no room for a pong");
        break;
    default: /* pong, binary, continuation of a text: nothing to do */
        break;
    }
}

/* Parses what s->in holds: the 101 while upgrading, then frames. */
static void parse(struct stream *s)
{
    size_t off = 0;
    if (s->st == S_UPGRADING) {
        unsigned char *e = memmem(s->in, s->in_len, "\r\n\r\n", 4);
        if (!e) {
            if (s->in_len == IN_CAP)
                finish(s, S_FAILED, "the upgrade answer is longer than %d bytes", IN_CAP);
            return;
        }
        size_t hlen = (size_t)(e - s->in) + 4;
        e[2] = '\0';
        if (check_upgrade(s) < 0) {
            finish(s, S_FAILED, "%s", s->why);
            return;
        }
        s->st = S_OPEN;
        nconnected++;
        char stat[64];
        int n = snprintf(stat, sizeof stat, "{\"op\":\"stat\",\"name\":\"%s\"}", s->name);
        queue_frame(s, 0x1, stat, (size_t)n);
        off = hlen;
    }
    while (!terminal(s)) {
        const unsigned char *p = s->in + off;
        size_t avail = s->in_len - off;
        if (avail < 2)
            break;
        if (p[1] & 0x80) {
            lose(s, "masked frame from the server (RFC 6455 forbids it)");
            return;
        }
        uint64_t len = p[1] & 0x7f;
        size_t h = 2;
        if (len == 126) {
            if (avail < 4)
                break;
            len = (uint64_t)p[2] << 8 | p[3];
            h = 4;
        } else if (len == 127) {
            if (avail < 10)
                break;
            len = 0;
            for (int j = 0; j < 8; j++)
                len = len << 8 | p[2 + j];
            h = 10;
        }
        if (len > IN_CAP - 10) {
            lose(s, "a %llu-byte frame from the ingest (opcode %d): only small control "
                 "messages are expected", (unsigned long long)len, p[0] & 0x0f);
            return;
        }
        if (avail < h + len)
            break;
        on_frame(s, p[0] & 0x0f, p + h, (size_t)len);
        off += h + (size_t)len;
    }
    if (terminal(s))
        return;
    memmove(s->in, s->in + off, s->in_len - off);
    s->in_len -= off;
}

static void on_readable(struct stream *s)
{
    while (!terminal(s)) {
        size_t room = IN_CAP - s->in_len;
        ssize_t n = recv(s->fd, s->in + s->in_len, room, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                lose(s, "recv: %s", strerror(errno));
            return;
        }
        if (n == 0) {
            lose(s, "the ingest hung up without a close frame");
            return;
        }
        s->in_len += (size_t)n;
        parse(s);
        if ((size_t)n < room)   /* a short read drained the socket: the next edge resumes */
            return;
    }
}

static void on_event(struct stream *s, uint32_t ev)
{
    if (terminal(s))
        return;
    if (ev & (EPOLLOUT | EPOLLERR | EPOLLHUP))
        s->writable = 1;
    if (s->st == S_CONNECTING) {
        if (!(ev & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
            return;
        on_connected(s);
        if (terminal(s))
            return;
    }
    if (ev & (EPOLLIN | EPOLLRDHUP | EPOLLERR | EPOLLHUP))
        on_readable(s);
    if (!terminal(s))
        pump(s);
}

static int64_t due_time(uint64_t g)
{
    return t_start + (int64_t)(g * PERIOD_US / (uint64_t)nstreams);
}

static void note_backlog(struct stream *s, int64_t when)
{
    int final = when >= t_end - FINAL_WINDOW_US;
    uint64_t b = s->produced - s->sent - s->dropped;
    if (b > s->max_backlog)
        s->max_backlog = b;
    if (final && b > s->final_backlog)
        s->final_backlog = b;
    /* Bytes on our socket are not yet at the ingest (the kernel buffers megabytes of a
     * stream): the ack lag says whether the ingest itself keeps up. */
    uint64_t stored = s->acked > s->base ? (s->acked - s->base) / CHUNK : 0;
    uint64_t lag = s->produced - s->dropped > stored ? s->produced - s->dropped - stored : 0;
    if (s->have_base && lag > s->max_ack_lag)
        s->max_ack_lag = lag;
    if (s->have_base && final && lag > s->final_ack_lag)
        s->final_ack_lag = lag;
}

/* Produces every chunk due by now, in due order over the streams, and sends each at once
 * when its socket takes it. */
static void produce(int64_t now)
{
    for (;;) {
        int64_t due = due_time(due_g);
        if (due > now || due >= t_end)
            break;
        struct stream *s = &streams[due_g % (uint64_t)nstreams];
        due_g++;
        if (s->st != S_OPEN)
            continue;
        s->produced++;
        note_backlog(s, due);
        /* drop the oldest chunk not yet framed (never one partly on the wire) */
        while (s->produced - s->sent - s->dropped > (uint64_t)max_backlog_chunks &&
               s->next_k < s->produced) {
            s->next_k++;
            s->dropped++;
        }
        pump(s);
    }
    if (now >= t_end) {
        producing = 0;
        ending = 1;
        for (int i = 0; i < nstreams; i++) {
            note_backlog(&streams[i], t_end);
            if (streams[i].st == S_OPEN)
                pump(&streams[i]);
        }
    }
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

/* 0 when stream s ended with a close handshake and its file holds exactly what it sent;
 * else -EPROTO with s->why saying what. */
static int verify(struct stream *s)
{
    if (s->st != S_DONE) {
        if (!s->why[0])
            snprintf(s->why, sizeof s->why, "%s", s->st == S_CLOSING
                     ? "no close answer from the ingest before the deadline"
                     : s->st == S_OPEN ? "its backlog was not sent before the deadline"
                                       : "not connected before the deadline");
        return -EPROTO;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, s->name);
    /* The ingest answers the close only once the stream's data is in the file. */
    int fd = open(path, O_RDONLY);
    if (fd < 0) {
        snprintf(s->why, sizeof s->why, "file %s: %s", s->name, strerror(errno));
        return -EPROTO;
    }
    unsigned char got[CHUNK], want[CHUNK];
    int rc = 0;
    /* With drops the chunk ordinals in the file have holes: only the size is checked. */
    for (uint64_t k = 0; k < s->sent && !s->dropped; k++) {
        if (pread(fd, got, CHUNK, (off_t)(k * CHUNK)) != CHUNK) {
            snprintf(s->why, sizeof s->why, "file %s: chunk %llu cannot be read", s->name,
                     (unsigned long long)k);
            rc = -EPROTO;
            break;
        }
        fill(want, s->idx, k);
        if (memcmp(got, want, CHUNK)) {
            snprintf(s->why, sizeof s->why, "file %s: chunk %llu differs from what was sent",
                     s->name, (unsigned long long)k);
            rc = -EPROTO;
            break;
        }
    }
    off_t size = lseek(fd, 0, SEEK_END);
    close(fd);
    if (rc == 0 && size != (off_t)(s->sent * CHUNK)) {
        snprintf(s->why, sizeof s->why, "file %s has %lld bytes, %llu were sent", s->name,
                 (long long)size, (unsigned long long)(s->sent * CHUNK));
        rc = -EPROTO;
    }
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
    if (port <= 0 || port > 65535 || !dir || nstreams <= 0 || seconds < 3 || first < 0 ||
        max_backlog_ms < PERIOD_US / 1000) {
        fprintf(stderr, "usage: loadgen --port P --dir DIR --streams N --seconds S(>=3) "
                        "[--pid PID] [--first K] [--max-backlog-ms MS(>=80)]\n");
        return 2;
    }
    max_backlog_chunks = max_backlog_ms * 1000 / PERIOD_US;
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    signal(SIGPIPE, SIG_IGN);
    ws_keys_init(&keys);
    epfd = epoll_create1(EPOLL_CLOEXEC);
    if (epfd < 0) {
        perror("loadgen: epoll_create1");
        return 1;
    }

    streams = calloc((size_t)nstreams, sizeof *streams);
    if (!streams) {
        fprintf(stderr, "loadgen: out of memory for %d streams\n", nstreams);
        return 1;
    }
    for (int i = 0; i < nstreams; i++) {
        struct stream *s = &streams[i];
        s->fd = -1;
        s->idx = first + i;
        snprintf(s->name, sizeof s->name, "rt%05d", first + i);
        s->name_len = strlen(s->name);
        s->out = malloc(OUT_CAP);
        if (!s->out) {
            fprintf(stderr, "loadgen: out of memory for %d streams\n", nstreams);
            return 1;
        }
    }

    unsigned long long c0 = 0, c1 = 0;
    struct rusage r0, r1;
    int64_t steady0 = 0, steady1 = 0, next_batch = 0;
    long rss = -1, hwm = -1;
    int64_t deadline = now_us() + (int64_t)(seconds + 60) * 1000000;
    struct epoll_event evs[512];
    for (;;) {
        int64_t now = now_us();
        if (now >= deadline)
            break;
        /* Connect in batches so the listen backlog is never the problem measured. */
        if (next_connect < nstreams && now >= next_batch) {
            for (int b = 0; b < CONNECT_BATCH && next_connect < nstreams; b++)
                start_connect(&streams[next_connect++]);
            next_batch = now + CONNECT_EVERY_US;
        }
        if (!started) {
            int pending = next_connect < nstreams;
            for (int i = 0; i < next_connect; i++) {
                struct stream *s = &streams[i];
                if (s->st == S_CONNECTING || s->st == S_UPGRADING) {
                    if (now - s->t_connect > HANDSHAKE_US)
                        finish(s, S_FAILED, "no WebSocket upgrade within %d s",
                               HANDSHAKE_US / 1000000);
                    else
                        pending = 1;
                }
            }
            if (!pending) {
                started = producing = 1;
                t_start = now;
                t_steady = now + 2000000; /* CPU is measured after 2 s of warm-up */
                t_end = now + (int64_t)seconds * 1000000;
            }
        }
        if (producing)
            produce(now);
        if (started && !steady0 && now >= t_steady) {
            steady0 = now;
            if (pid)
                proc_cpu_ticks(pid, &c0);
            getrusage(RUSAGE_SELF, &r0);
        }
        if (steady0 && !steady1 && !producing) {
            steady1 = now;
            if (pid) {
                proc_cpu_ticks(pid, &c1);
                rss = proc_status_kib(pid, "VmRSS");
                hwm = proc_status_kib(pid, "VmHWM");
            }
            getrusage(RUSAGE_SELF, &r1);
        }
        if ((started || next_connect == nstreams) && nterminal == nstreams)
            break;
        /* Sleep until the next due chunk (ms granularity: chunks of a millisecond go out
         * together), the next connect batch or a socket event. */
        int timeout = 100;
        if (producing) {
            int64_t d = due_time(due_g) - now_us();
            timeout = d <= 0 ? 0 : (int)((d + 999) / 1000);
        } else if (next_connect < nstreams || !started) {
            timeout = 5;
        }
        int n = epoll_wait(epfd, evs, (int)(sizeof evs / sizeof evs[0]), timeout);
        if (n < 0 && errno != EINTR) {
            perror("loadgen: epoll_wait");
            return 1;
        }
        for (int j = 0; j < n; j++)
            on_event(&streams[evs[j].data.u32], evs[j].events);
    }

    uint64_t sent = 0, dropped = 0, maxb = 0, finalb = 0, maxlag = 0, finallag = 0, acks = 0;
    int ok = 0, bad = 0;
    const char *first_bad = NULL, *first_why = NULL;
    for (int i = 0; i < nstreams; i++) {
        struct stream *s = &streams[i];
        if (s->fd >= 0)
            close(s->fd);
        sent += s->sent;
        dropped += s->dropped;
        acks += s->acks;
        if (s->max_backlog > maxb)
            maxb = s->max_backlog;
        if (s->final_backlog > finalb)
            finalb = s->final_backlog;
        if (s->max_ack_lag > maxlag)
            maxlag = s->max_ack_lag;
        if (s->final_ack_lag > finallag)
            finallag = s->final_ack_lag;
        int vr = verify(s);
        if (vr == 0) {
            ok++;
            continue;
        }
        const char *why = s->why;
        if (bad < 5)
            fprintf(stderr, "loadgen: stream %s: %s (sent %llu chunks, dropped %llu)\n",
                    s->name, why, (unsigned long long)s->sent, (unsigned long long)s->dropped);
        if (!first_bad) {
            first_bad = s->name;
            first_why = why;
        }
        bad++;
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
    if (bad || dropped)
        fprintf(stderr, "loadgen: streams %d-%d: %d of %d failed the check (first: %s: %s; "
                "files in %s), %llu chunks dropped\n", first, first + nstreams - 1, bad,
                nstreams, first_bad ? first_bad : "-", first_why ? first_why : "-", dir,
                (unsigned long long)dropped);
    printf("{\"streams\":%d,\"connected\":%d,\"failed\":%d,\"chunks_sent\":%llu,"
           "\"chunks_dropped\":%llu,\"max_backlog_ms\":%llu,\"final_backlog_ms\":%llu,"
           "\"max_ack_lag_ms\":%llu,\"final_ack_lag_ms\":%llu,"
           "\"acks\":%llu,\"verified\":%d,\"bad\":%d,\"ingest_cpu_pct\":%.1f,"
           "\"ingest_rss_kib\":%ld,\"ingest_hwm_kib\":%ld,\"loadgen_cpu_pct\":%.1f,"
           "\"steady_seconds\":%.1f}\n",
           nstreams, nconnected, nfailed, (unsigned long long)sent, (unsigned long long)dropped,
           (unsigned long long)(maxb * PERIOD_US / 1000),
           (unsigned long long)(finalb * PERIOD_US / 1000),
           (unsigned long long)(maxlag * PERIOD_US / 1000),
           (unsigned long long)(finallag * PERIOD_US / 1000), (unsigned long long)acks, ok, bad,
           icpu, rss, hwm, gcpu, secs);
    for (int i = 0; i < nstreams; i++)
        free(streams[i].out);
    free(streams);
    close(epfd);
    return (bad == 0 && dropped == 0 && nfailed == 0) ? 0 : 1;
}
