/*
 * ws_link: the WebSocket sink of the record module.
 *
 * One link (one TCP/TLS connection) per scheme://host:port, shared by every stream to
 * that server; a link exists while at least one stream uses it. Each stream has a name
 * (the last path segment of its URL) and its own bounded buffer of bytes not yet
 * delivered. Each chunk goes out as one binary message "<name> NUL <data>" in at least
 * two fragments. After a drop the link reconnects with exponential backoff and jitter;
 * with `pirec ingest` it resumes exactly at the end of the stored file (docs/protocol.md).
 *
 * Threads: the link runs its own service thread (libwebsockets is not thread-safe; other
 * threads only queue data under a mutex and wake it with lws_cancel_service()). Every
 * function here may be called from any thread; one stream is used by one thread at a time.
 *
 * Ownership: ws_stream_open() returns a stream owned by the caller until ws_stream_close().
 * ws_stream_write() copies the data.
 *
 * Owner: "B" (ws_link.c). Callers: the record module's ws endpoint (ep_ws.c).
 *
 * Legacy servers (no pirec.resume.1): a message counts as acked once it is handed to the
 * socket, until the stream ends: then only the link's clean close confirms it (see
 * ws_stream_finish; "unconfirmed" in the stats). They get no WebSocket ping (the original server never answers
 * one); TCP keep-alive and TCP_USER_TIMEOUT detect a dead peer. When a connection to a
 * legacy server drops anyway, everything handed to that socket is moved from acked to lost
 * (the original server deletes the stream's file on the next connection): never a success
 * over a truncated file. Resumable servers (pirec ingest) lose nothing but evictions.
 *
 * Reconnect: every failed attempt schedules the next (backoff with jitter); a watchdog on
 * the service thread checks every second that an attempt or a retry is pending and counts
 * any stall it repairs in ws_stream_stats.stalls.
 *
 * TLS (wss://): the server certificate and its name are verified against the system CAs,
 * or against ws_options.ca_file (else the CA file named by PIREC_WS_CA_FILE); a CA file
 * that cannot be read or holds no certificate fails ws_stream_open() with a message. With
 * a pin, the leaf certificate must also match it. A failed verification is logged with
 * OpenSSL's reason (e.g. "Hostname mismatch", "unable to get local issuer certificate")
 * and a hint. PIREC_WS_TLS_INSECURE_FOR_TESTS=1 turns verification off (logged as a
 * warning); it exists for tests with self-signed certificates only.
 * libwebsockets' own log lines go to plog at warning level and above.
 */
#ifndef PIREC_WS_LINK_H
#define PIREC_WS_LINK_H

#include <stddef.h>
#include <stdint.h>

struct ws_target {
    int tls;            /* wss:// */
    char host[256];
    int port;
    char path[1024];    /* request path of the upgrade, e.g. "/mic.pcm" */
    char name[256];     /* stream name: last path segment */
};

struct ws_options {
    uint64_t buffer_bytes;     /* bound of the per-stream buffer (0: 4 MiB) */
    int reconnect_max_ms;      /* longest backoff (<= 0: 5000) */
    /* wss:// only. Streams share a link only when these are equal too. */
    char ca_file[4097];        /* PEM CA bundle to verify the server with ("": the system
                                  CAs, or PIREC_WS_CA_FILE) */
    int has_pin;
    unsigned char pin[32];     /* SHA-256 of the server certificate's SPKI or of the whole
                                  certificate (DER); either matches */
};

struct ws_stream_stats {
    uint64_t queued;       /* bytes accepted by ws_stream_write() */
    uint64_t sent;         /* bytes written onto the socket */
    uint64_t acked;        /* bytes the server confirmed stored (= sent for a legacy server) */
    uint64_t pending;      /* queued - acked - lost: accepted, fate not yet known */
    uint64_t lost;         /* evicted from a full buffer, never delivered */
    uint32_t reconnects;
    uint32_t stalls;       /* the link's watchdog found it with no attempt and no retry
                              scheduled (should stay 0; tests assert it) */
    int connected;
    uint64_t unconfirmed;  /* part of pending: on a legacy server's socket, waiting for the
                              link's clean close (see ws_stream_finish) */
    int resumable;         /* the server speaks pirec.resume.1 */
    int error;             /* last error, negative errno */
    int have_server_size;  /* a resuming server answered this stream's stat */
    uint64_t server_size;  /* the stream's file size it last confirmed (stat or ack) */
    char last_failure[200]; /* why the link's last attempt failed or it was lost ("" while
                               connected) */
};

struct ws_stream;

/* 0 or a negative errno: -EINVAL for a bad target (the name must be 1-255 bytes, no '/',
 * no control character, not starting with '.'), -EEXIST when the link already has a stream
 * of that name, -ENOMEM. Does not wait for the connection: a server that is down now is
 * retried in the background (data is buffered meanwhile). The reason is logged. */
int ws_stream_open(const struct ws_target *target, const struct ws_options *opt,
                   struct ws_stream **out);

/* Queues len bytes. If the buffer would exceed its bound, waits up to wait_ms (< 0:
 * forever, until ws_stream_abort()) for room; then, if still full, evicts the oldest
 * bytes not yet sent and counts them as lost (real-time sources call with wait_ms = 0,
 * finite sources with wait_ms < 0 so that they never lose). Returns 0, or -ECANCELED after
 * ws_stream_abort(). */
int ws_stream_write(struct ws_stream *s, const void *data, size_t len, int wait_ms);

/* Waits until everything queued is acknowledged (legacy server: written to the socket),
 * at most timeout_ms. Returns 0 or -ETIMEDOUT. */
int ws_stream_drain(struct ws_stream *s, int timeout_ms);

/* ws_stream_drain(), for the end of a stream (ws_stream_close() comes next). On a legacy
 * server only the link's clean close proves that bytes on the socket reached it: the
 * client sends a close frame and the server answers after reading every message before
 * it. So when every stream of the link has finished, this closes the connection and waits
 * for that answer; if the connection dies instead, what it carried is counted as lost.
 * When other streams still use the link, it cannot be closed for this one (the original
 * server would delete a file on the reconnect): this returns once the bytes are on the
 * socket, and they stay *unconfirmed* (stats: pending, not acked) until the link closes
 * cleanly (then acked) or drops (then lost); ws_stream_close_fate() follows them past the
 * close. (Data written after a close reconnects; the original server would then delete
 * the stream's file.) 0, -ETIMEDOUT or -ECANCELED. */
int ws_stream_finish(struct ws_stream *s, int timeout_ms);

/* Makes any blocked ws_stream_write()/ws_stream_drain() return -ECANCELED. */
void ws_stream_abort(struct ws_stream *s);

void ws_stream_get_stats(struct ws_stream *s, struct ws_stream_stats *st);

/* Detaches the stream; what is still pending is dropped and counted as lost (drain first),
 * except unconfirmed bytes, whose fate the link still decides (logged if they are lost).
 * The link closes when its last stream closes. */
void ws_stream_close(struct ws_stream *s);

/* The fate of a closed stream's unconfirmed bytes: decided when its link closes cleanly
 * (confirmed), or drops or stops without that close (lost). Shared by the link and the
 * caller of ws_stream_close_fate(); any thread. */
struct ws_fate;
struct ws_fate_stats {
    uint64_t unconfirmed, confirmed, lost;
};

/* ws_stream_close(), handing back the fate of the stream's unconfirmed bytes in *fate
 * (NULL when there are none); the caller releases it with ws_fate_put(). */
void ws_stream_close_fate(struct ws_stream *s, struct ws_fate **fate);
void ws_fate_get(struct ws_fate *f, struct ws_fate_stats *st);
void ws_fate_put(struct ws_fate *f);

#endif
