/*
 * events: the hub that every Server-Sent-Events subscriber reads from.
 *
 * publish() stores one event (type + JSON data) with the next id in a bounded ring and
 * wakes subscribers. Each subscriber has its own cursor into the ring, so a slow or
 * vanished subscriber never delays the publisher or the others: when it falls further
 * behind than the ring holds, it is told so (-EPIPE) and the transport closes it; the
 * client reconnects with Last-Event-ID.
 * "Volatile" events (level meters, 25/s per device) are delivered live but skipped when
 * replaying history to a reconnecting client.
 *
 * Threads: publish from any thread (short mutex; never blocks on a subscriber; the wake
 * callback must only signal, e.g. MHD_resume_connection via a flag). A subscriber is used
 * by one thread at a time. Ownership: the hub copies data; subscribers are freed with
 * event_sub_close() before event_hub_destroy().
 */
#ifndef PIREC_SERVER_EVENTS_H
#define PIREC_SERVER_EVENTS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct event_hub;
struct event_sub;

/* Longest data a publish accepts (-EMSGSIZE beyond). A read buffer of EVENT_READ_MIN
 * bytes always holds at least one whole event. */
#define EVENT_DATA_MAX (60 * 1024)
#define EVENT_READ_MIN (EVENT_DATA_MAX + 128)

/* capacity: events kept (default 4096 if 0). */
int  event_hub_create(struct event_hub **out, size_t capacity);
/* Sends `close` to every subscriber, then they read -EPIPE once drained. */
void event_hub_shutdown(struct event_hub *h);
void event_hub_destroy(struct event_hub *h);

/* Returns the event's id (> 0) or a negative errno: -EINVAL (type empty, longer than 31
 * or with ':' / newline; data with a newline), -EMSGSIZE, -EPIPE after shutdown.
 * data must be one line of JSON. */
int64_t event_hub_publish(struct event_hub *h, const char *type, const char *json_data,
                          int is_volatile);
uint64_t event_hub_last_id(struct event_hub *h);

/* last_event_id: 0 for a new client; otherwise replay what came after it (non-volatile
 * only). *replay_gap is set to 1 when that id is older than the ring holds (the client
 * should be sent a full status). wake(arg) is called when new events arrive. */
int event_hub_subscribe(struct event_hub *h, uint64_t last_event_id,
                        void (*wake)(void *arg), void *arg, struct event_sub **out,
                        int *replay_gap);
/* Copies as many whole events as fit into buf, formatted for SSE
 * ("id: N\nevent: TYPE\ndata: JSON\n\n"). Returns bytes (0 when nothing is pending),
 * -EPIPE when the subscriber fell behind the ring or the hub shut down and all was read,
 * -EMSGSIZE when len is too small for the next event (use >= EVENT_READ_MIN). */
ssize_t event_sub_read(struct event_sub *s, char *buf, size_t len);
void event_sub_close(struct event_sub *s);

#endif
