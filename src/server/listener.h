/*
 * listener: the listening socket of `pirec serve` and the thread that accepts on it.
 * pirec accepts itself (libmicrohttpd gets each socket through MHD_add_connection) so
 * that every connection is accepted at once and then either served or answered 503 by
 * the caller: a full server never leaves clients waiting in the backlog. The listener
 * also holds each admitted socket until its first line is in (peeked, not read), so that
 * a garbage request line can be answered 400 (libmicrohttpd just hangs up on one).
 *
 * Threads: open/start/close from the owner; the callback runs on the accept thread.
 */
#ifndef PIREC_SERVER_LISTENER_H
#define PIREC_SERVER_LISTENER_H

#include <netinet/in.h>
#include <stdint.h>
#include <sys/socket.h>

struct listener;

/* A new socket (non-blocking, close-on-exec). Return 0 to have the listener hold it
 * until its first line has arrived (then listener_line_func gets it), or a negative
 * number when the callback disposed of it (refused and closed). */
typedef int (*listener_accept_func)(int fd, const struct sockaddr *addr, socklen_t len,
                                    void *arg);
/* The first line of a held socket has arrived: `line` (len bytes, ending in '\n', after
 * any leading empty lines) is only peeked, still unread in the socket. line NULL: the
 * client went away (or was shut down) first; too_long: no line end in the first
 * LISTENER_LINE_MAX bytes. The callback owns fd from now on. */
#define LISTENER_LINE_MAX 8192
typedef void (*listener_line_func)(int fd, const char *line, size_t len, int too_long,
                                   void *arg);

/* Binds host:port (port 0 = any free) and listens. The error is logged with the address
 * and port asked for. 0, -EINVAL (cannot resolve), -EADDRINUSE, -EACCES, ... */
int  listener_open(struct listener **out, const char *host, unsigned port);
/* Sockets still held at listener_close are passed to on_line with line NULL. */
int  listener_start(struct listener *l, listener_accept_func on_accept,
                    listener_line_func on_line, void *arg);
uint16_t listener_port(const struct listener *l);
const char *listener_address(const struct listener *l);
/* Stops accepting (joins the thread), closes the socket, frees. */
void listener_close(struct listener *l);

#endif
