/*
 * ingest server internals, shared by listener.c (threads, accept, ticks, shutdown),
 * conn.c (one connection: handshake, frames, output, close) and dispatch.c (complete
 * messages: stream ownership, writes, stat/loss, acks).
 *
 * Owner: "C" (pirec ingest). Threads:
 * - N service threads ("loops"; loop 0 runs on the thread of ingest_run). Each owns its
 *   epoll set and its connections: a struct conn is only ever touched by its loop's
 *   thread, except `taken_over`, which another loop sets (under the store lock) and then
 *   wakes the owner's loop through its eventfd.
 * - Loop 0 also accepts (one listening socket) and hands each new socket to the loops in
 *   turn through their inbox (mutex + eventfd): an even spread whatever the peers'
 *   addresses, and one bind even for port 0. It also runs the store-wide ticks (sync
 *   rounds, flushing old buffers, forwarded heads).
 * - The store (store.h) is shared; every use holds the store lock. A stream's `owner` is
 *   read and written only under that lock; a connection disowns its streams under it before
 *   it is freed, so a pointer read from `owner` under the lock is always alive.
 * - The signal handler only sets `stop` and writes to every loop's eventfd.
 */
#ifndef PIREC_INGEST_SERVER_H
#define PIREC_INGEST_SERVER_H

#include "ingest/ingest.h"
#include "ingest/store.h"
#include "ingest/wsframe.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define ACK_BYTES (256 * 1024)
#define ACK_US (250 * 1000)        /* time-based acks: protocol.md allows one per 100 ms */
#define FLUSH_AGE_US (100 * 1000)   /* a legacy stream's buffer waits at most this long */
#define TICK_US (50 * 1000)
#define MAX_TEXT 4096               /* control messages are tiny */
#define OUT_MAX (64 * 1024)         /* unread replies before a connection is refused */
#define READ_BUF (256 * 1024)

enum { K_CONN = 1, K_WAKE, K_LISTEN };
enum conn_state { C_HANDSHAKE, C_OPEN, C_CLOSING, C_HANGUP };

struct loop;

struct conn {
    int kind;                       /* K_CONN: first, for epoll's data pointer */
    int fd;
    struct loop *lp;
    uint64_t id;
    char peer[64];
    enum conn_state state;
    int resume;                     /* pirec.resume.1 */
    int counted;                    /* counted in server.nconns */
    int discard;                    /* input no longer parsed (after a protocol error) */
    int gone;                       /* hang up without flushing (peer gone or not reading) */
    atomic_int taken_over;          /* set by the loop of the newer owner */
    int64_t last_rx_us, ping_us, deadline_us;

    char *hs;                       /* request head while in C_HANDSHAKE */
    size_t hs_len;

    uint8_t hdr[WSFRAME_HDR_MAX];   /* a frame header split across reads */
    size_t hdr_have;
    int in_frame;
    struct wsframe_hdr fh;
    uint64_t frame_off;             /* payload bytes of fh consumed */
    uint8_t ctl[125];               /* a control frame's payload */

    int in_msg, msg_binary;         /* a fragmented message being gathered */
    unsigned char *buf;
    size_t len, cap;

    unsigned char *out;             /* frames not yet written */
    size_t out_len, out_off, out_cap;
    int epollout;

    struct ingest_stream **streams; /* streams this connection holds a ref on */
    size_t nstreams, capstreams;
    struct ingest_stream *last;     /* the stream of the last message (a cache) */

    struct conn *prev, *next;
};

struct server;

struct loop {
    int kind;                       /* K_WAKE */
    struct server *srv;
    int idx;
    pthread_t thread;
    int ep, evfd;
    pthread_mutex_t mu;             /* guards inbox */
    int *inbox;
    size_t ninbox, capinbox;
    atomic_int takeover;            /* some conn of this loop was taken over */
    struct conn *conns;
    int nconns;
    unsigned char *rbuf;
    size_t round_bytes;             /* read in this epoll round (the largest read) */
    int64_t next_tick_us, last_tick_us, last_stall_log_us;
    int stop_seen;
    int64_t stop_deadline_us;
};

struct server {
    const struct ingest_config *cfg;
    struct ingest_store *store;
    size_t max_message;
    uint64_t max_memory;
    int max_connections;
    unsigned ping_secs;
    int lfd;
    struct loop *loops;
    int nloops;                     /* loops set up (their eventfds are woken at a stop) */
    int nrunning;                   /* loops running: the ones accept hands sockets to */
    unsigned rr;                    /* next loop for an accepted socket (loop 0 only) */
    atomic_int nconns;              /* established connections */
    atomic_ullong next_id;
    atomic_ullong mem_used;         /* unfinished messages of every connection */
    int64_t last_slow_log_us;       /* under the store lock */
};

int64_t ingest_now_us(void);

/* conn.c (the connection's loop thread) */
struct conn *conn_new(struct loop *lp, int fd);
void conn_on_event(struct conn *c, uint32_t events);
void conn_tick(struct conn *c, int64_t now);
/* Logs why (with #id and peer) and sends a close frame with code; the connection is then
 * read and discarded until the peer answers or 5 s pass. Returns 0. */
int conn_fail(struct conn *c, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int conn_send(struct conn *c, int opcode, const void *p, size_t n);
void conn_free(struct conn *c);

/* dispatch.c (the connection's loop thread) */
int dispatch_binary(struct conn *c, const unsigned char *p, size_t n);
int dispatch_text(struct conn *c, const unsigned char *p, size_t n);
void dispatch_acks(struct conn *c, int64_t now);   /* from the tick */
/* The peer closes: writes out every stream c owns, because a client counts what it sent as
 * delivered once its close is answered (docs/protocol.md). 0, or -1 when a write failed and
 * c was failed with 1011 instead. */
int dispatch_flush_owned(struct conn *c);
void dispatch_conn_gone(struct conn *c, int stopping);

#endif
