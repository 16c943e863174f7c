/*
 * conn_guard: who may hold a connection to `pirec serve`, and for how long, so that no
 * client can lock the others out (issue: 128 slow partial requests froze everyone).
 *
 * - Admission (the accept thread): a global and a per-client-address limit. Past either
 *   the caller answers 503 and closes at once, so the listen backlog never fills and no
 *   socket waits in CLOSE_WAIT for a slot.
 * - Header deadline (the guard's reaper thread): a connection must complete its first
 *   request's headers within header_timeout_ms of being accepted, or it is answered 408
 *   and shut down; between requests of a kept-alive connection the same time is allowed,
 *   then it is closed quietly. A request whose headers are in (its handler runs) has no
 *   deadline here: libmicrohttpd's idle timeout covers it.
 * - Event streams (SSE) have their own budget, global and per client address. A parked
 *   stream's socket is not read by libmicrohttpd; the reaper watches them and shuts down
 *   the socket of a client that hung up, which makes libmicrohttpd close it at once
 *   instead of leaving it in CLOSE-WAIT until the next heartbeat.
 * - Refusals are counted and logged at most once a minute (no log flood).
 *
 * Threads: guard_admit from the accept thread; the connection calls from libmicrohttpd's
 * thread; the reaper is private. A struct guard_conn lives from guard_admit until
 * guard_closed (or guard_forget) and belongs to the guard.
 */
#ifndef PIREC_SERVER_CONN_GUARD_H
#define PIREC_SERVER_CONN_GUARD_H

#include <sys/socket.h>

struct conn_limits {
    unsigned max_connections;          /* 0 = 256 */
    unsigned max_per_client;           /* 0 = 32 */
    unsigned max_streams;              /* 0 = 64 */
    unsigned max_streams_per_client;   /* 0 = 8 */
    unsigned header_timeout_ms;        /* 0 = 10000 */
};

struct conn_guard;
struct guard_conn;

int  guard_create(struct conn_guard **out, const struct conn_limits *lim);
/* Stops the reaper and frees; every connection must have been closed. */
void guard_destroy(struct conn_guard *g);

/* A newly accepted socket. 0 and *out; -EMFILE (the server is full) or -EUSERS (this
 * address holds its share): answer 503 and close. */
int  guard_admit(struct conn_guard *g, int fd, const struct sockaddr *addr, socklen_t len,
                 struct guard_conn **out);
/* The connection of fd (after guard_admit, for libmicrohttpd's start notification). */
struct guard_conn *guard_find(struct conn_guard *g, int fd);
/* The socket is gone (closed by libmicrohttpd, or it refused to take it); call before
 * the fd is closed. */
void guard_closed(struct conn_guard *g, struct guard_conn *c);

/* A request's headers are complete: 0, or -ETIMEDOUT when the reaper was first (the
 * caller sends nothing: a 408 is already on its way). */
int  guard_request_began(struct conn_guard *g, struct guard_conn *c);
/* The request is answered: the next one's deadline starts. */
void guard_request_ended(struct conn_guard *g, struct guard_conn *c);

/* An event stream on c: 0, -EMFILE (server-wide budget) or -EUSERS (this address's). */
int  guard_stream_open(struct conn_guard *g, struct guard_conn *c);
void guard_stream_close(struct conn_guard *g, struct guard_conn *c);

/* A whole HTTP answer for a socket pirec will not serve, by reason: -EMFILE / -EUSERS
 * (503), -EBADMSG (400, not an HTTP request line). */
const char *guard_refusal_response(struct conn_guard *g, int reason);
/* The client's address as text ("127.0.0.1", "::1"). */
const char *guard_conn_address(const struct guard_conn *c);

#endif
