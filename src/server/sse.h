/*
 * sse: Server-Sent Events over libmicrohttpd, one stream per subscriber of the event hub.
 *
 * Each stream is a response from MHD_create_response_from_callback whose reader copies
 * whole events from the stream's hub cursor (event_sub_read). When nothing is pending it
 * suspends the connection (MHD_suspend_connection from the reader, returning 0: a parked
 * stream costs no CPU) and the hub's wake callback resumes it. MHD_resume_connection is
 * safe from any thread with MHD_USE_ITC; the wake callback runs under the hub's lock and
 * only takes the stream's own small lock, so lock order is always
 * registry -> hub -> stream -> MHD (never the other way round).
 *
 * On connect: "retry: 2000", then a `status` event for a new client (or for one whose
 * Last-Event-ID is older than the hub remembers or from before a restart); a client that
 * sends a known Last-Event-ID gets exactly the missed non-volatile events and no extra
 * status. The initial status carries `id:` = the hub's last id before subscribing, so ids
 * on a stream always increase and a reconnect replays from there.
 * A heartbeat thread marks every stream and resumes it every heartbeat_ms; the reader then
 * sends ": heartbeat" (keeps proxies and iPad Safari from dropping an idle stream, and
 * lets MHD notice clients that vanished while parked).
 *
 * Threads: sse_stream_response() from MHD's access handler; the rest from the
 * thread that owns the HTTP server. sse_close_all() must run after event_hub_shutdown()
 * and before MHD_stop_daemon() (MHD refuses to stop with suspended connections).
 */
#ifndef PIREC_SERVER_SSE_H
#define PIREC_SERVER_SSE_H

#include "server/events.h"

#include <jansson.h>
#include <microhttpd.h>
#include <stdint.h>

#define SSE_RETRY_MS 2000
#define SSE_HEARTBEAT_MS_DEFAULT 15000

struct sse_server;

/* The status object sent to a new subscriber (new reference), or NULL. */
typedef json_t *(*sse_status_func)(void *arg);

int  sse_server_create(struct sse_server **out, struct event_hub *hub, unsigned heartbeat_ms);
/* 0 and a response to queue (caller destroys its reference after queueing), or -errno. */
int  sse_stream_response(struct sse_server *s, struct MHD_Connection *conn,
                         uint64_t last_event_id, sse_status_func status, void *status_arg,
                         struct MHD_Response **out);
/* Streams open now. */
unsigned sse_stream_count(struct sse_server *s);
/* No stream parks again; every parked one is resumed so it can read the hub's `close` and
 * end. Waits up to timeout_ms for them to finish. */
void sse_close_all(struct sse_server *s, unsigned timeout_ms);
/* Stops the heartbeat thread and frees; call after MHD_stop_daemon(). */
void sse_server_destroy(struct sse_server *s);

#endif
