/*
 * pirec/record.h: stream a ring buffer, a block of memory or a file to a WebSocket
 * server, a file or another ring.
 *
 * A drop-in for the embedded SDK's record module: the first block of declarations keeps
 * its names and signatures. The second block adds what the original lacked: 64-bit
 * counts, a finished/failed state, a way to wait for the end, options and a log hook.
 *
 * URLs (strict: anything malformed or unknown makes record_register() return NULL and
 * log why; addresses are decimal or 0x-hex, full 64-bit):
 *   sources  ringbuffer://handle=<address of a dev_ringbuf_t>
 *            mem://address=<address>&size=<bytes>
 *            file://<path>            (also the original's sdbuffer://handle=<path>)
 *   sinks    ws://host[:port]/name    wss://host[:port]/name   (port defaults 80 / 443;
 *                                     host may be an IPv6 literal "[::1]"; no user:pass@)
 *            file://<path>            created or truncated like cp, fsynced when the run
 *                                     ends; a failed sync or close fails the handle
 *            ringbuffer://handle=<address>   (a full ring is waited on, never dropped)
 *
 * Streams to the same ws://host:port share one connection. Each chunk is one binary
 * message "<name> NUL <data>" sent in at least two fragments (what the original's server
 * expects). The connection reconnects with backoff after a drop; meanwhile up to
 * RECORD_OPT_BUFFER_BYTES per stream are kept. Against `pirec ingest` a reconnect resumes
 * exactly where the stored file ends; against the original's server (which cannot resume
 * and deletes a stream's file on a new connection) it gets no ping, and a drop counts
 * what that connection carried as lost. Bytes that do not fit the buffer during an outage
 * are lost, counted in record_stats_t.lost_bytes and logged: never silently.
 *
 * Finite sources (mem://, file://) end by themselves once all their bytes were delivered:
 * the handle's state becomes RECORD_FINISHED (or RECORD_FAILED), the finish callback runs
 * and record_wait() returns. A ringbuffer:// source runs until record_stop().
 *
 * Threads: every function may be called from any thread, except that a handle must not be
 * used after record_unregister() returned (a stale or made-up handle gets -EINVAL, never a
 * crash). Callbacks run on the handle's own worker thread; record_stop() or
 * record_unregister() of their own handle from there returns -EDEADLK.
 *
 * Ownership: the module owns the handle until record_unregister(); the caller owns rings
 * and memory named by address in a URL and must keep them alive until the handle stops.
 *
 * Errors: functions that return int give 0 or a negative errno.
 */
#ifndef PIREC_RECORD_H
#define PIREC_RECORD_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- the original API ---------------------------------------------------------- */

typedef int *rec_hdl_t;                    /* opaque; NULL on failure */
typedef void (*data_ready_func)(void *arg);
typedef void (*data_release_func)(void *arg);

rec_hdl_t record_register(const char *from, const char *to);
/* data_ready(arg) is called on the worker thread when the source has nothing to read; it
 * may block until the producer has written more. data_release(arg) is called by
 * record_stop() so that a blocked data_ready() returns. Each callback keeps its own arg. */
void record_set_data_ready_cb(rec_hdl_t hdl, data_ready_func cb, void *arg);
void record_set_data_release_cb(rec_hdl_t hdl, data_release_func cb, void *arg);
/* Bytes read from the source per chunk (default 4096, 1 .. 16 MiB). */
void record_set_chunk_size(rec_hdl_t hdl, int chunk_size);
/* Counts clamped to INT_MAX; record_get_stats() has the 64-bit values. */
int  record_get_count(rec_hdl_t hdl, int *read_bytes, int *sent_bytes);
/* Opens both ends and starts the worker. A second start while running returns 0 and does
 * nothing. A stopped or finished handle may be started again (it reopens both ends and
 * the counters start again at 0). A failed start closes what it opened and leaves the
 * handle RECORD_FAILED. */
int  record_start(rec_hdl_t hdl);
/* Stops reading, drains what is buffered for at most RECORD_OPT_STOP_TIMEOUT_MS, closes
 * both ends. Returns 0 when everything read was delivered, -ETIMEDOUT when some was not
 * (counted in lost_bytes). Stopping a stopped handle returns 0. */
int  record_stop(rec_hdl_t hdl);
/* Stops the handle if running, then frees it. */
int  record_unregister(rec_hdl_t hdl);

/* ---- pirec additions ------------------------------------------------------------- */

typedef enum {
    RECORD_IDLE = 0,     /* registered, never started */
    RECORD_RUNNING,      /* worker running */
    RECORD_FINISHED,     /* finite source ended and everything was delivered */
    RECORD_FAILED,       /* ended with an error; see error and lost_bytes */
    RECORD_STOPPED       /* stopped by record_stop() */
} record_state_t;

typedef struct {
    record_state_t state;
    uint64_t read_bytes;     /* taken from the source */
    uint64_t sent_bytes;     /* written to the sink (for ws: onto the socket) */
    uint64_t acked_bytes;    /* confirmed stored by the receiver; file and ring sinks:
                                = sent_bytes; the original's server: handed to its socket
                                (when that connection drops they move to lost_bytes; at
                                the end a closing handshake confirms them) */
    uint64_t pending_bytes;  /* read, not yet delivered (buffered) */
    uint64_t lost_bytes;     /* read and never delivered: outage longer than the buffer,
                                or still pending when record_stop() timed out */
    uint32_t reconnects;     /* successful reconnects of the ws link */
    int      connected;      /* ws sink: link up now (1) or down (0); others 1 */
    int      error;          /* last error as a negative errno, 0 if none */
} record_stats_t;

int record_get_stats(rec_hdl_t hdl, record_stats_t *stats);

/* ws:// sink to a server that resumes (pirec.resume.1, i.e. `pirec ingest`): the size of
 * the stream's file there as the server last confirmed it (its answer to the stream's
 * first stat, then its acks). A run whose first byte is not read yet before that answer
 * puts that first byte at exactly this offset: a writer that resumes an earlier copy
 * learns here where to continue, with nothing duplicated or skipped.
 * 0; -EAGAIN until the server answered; -ENOTSUP for other sinks and servers that cannot
 * say (the original's); -EINVAL for a bad handle or NULL size. */
int record_get_server_size(rec_hdl_t hdl, uint64_t *size);

/* ws:// sink while its link is down: why its last connection attempt failed or the
 * connection was lost, as in the log line ("certificate verify failed: ...", "connection
 * refused", ...); "" while connected or for other sinks. 0, or -EINVAL. */
int record_get_link_failure(rec_hdl_t hdl, char *buf, size_t n);

/* Addresses in URLs are checked, never trusted: ringbuffer://handle=A must name a ring
 * made by ringbuffer_create() (and not yet destroyed), mem://address=A&size=N must lie in
 * a block registered here. A number that fits in 32 bits and names nothing exactly is
 * matched by the low 32 bits of the registered addresses when exactly one matches (the
 * SDK's callers print addresses with %u, which truncates a 64-bit pointer). Anything else
 * makes record_register() / record_start() fail with one log line.
 * 0, -EINVAL (NULL address or size 0), -ENOMEM; unregister: 0 or -ENOENT. */
int record_register_memory(const void *addr, size_t size);
int record_unregister_memory(const void *addr);

/* Waits until the handle is no longer RECORD_RUNNING. timeout_ms < 0 waits forever.
 * Returns 0, or -ETIMEDOUT. */
int record_wait(rec_hdl_t hdl, int timeout_ms);

typedef void (*record_finish_func)(rec_hdl_t hdl, const record_stats_t *stats, void *arg);
/* Called once, on the worker thread, when a finite source ended or the handle failed;
 * not after record_stop(). */
void record_set_finish_cb(rec_hdl_t hdl, record_finish_func cb, void *arg);

typedef enum {
    RECORD_OPT_BUFFER_BYTES = 1,  /* ws: bytes kept per stream while the link is down or
                                     unacknowledged (default 8 MiB) */
    RECORD_OPT_STOP_TIMEOUT_MS,   /* bound of record_stop()'s drain (default 5000) */
    RECORD_OPT_RECONNECT_MAX_MS,  /* ws: longest backoff between reconnects (default 5000) */
    RECORD_OPT_GIVE_UP_MS,        /* ws, finite sources: fail when the link stays down this
                                     long (default 0 = keep trying until record_stop) */
} record_option_t;
/* Set before record_start(). -EINVAL for an unknown option or a value out of range. */
int record_set_option(rec_hdl_t hdl, record_option_t opt, int64_t value);

/* wss:// only, set before record_start(). ca_file: a PEM file of the CA(s) that vouch for
 * the server (NULL: the system's CAs); pin: NULL, or the SHA-256 of the server
 * certificate's public key (SPKI, DER) or of the whole certificate (DER), as 64 hex digits,
 * optionally prefixed "sha256:", e.g. from
 *   openssl x509 -in cert.pem -pubkey -noout | openssl pkey -pubin -outform DER |
 *   openssl dgst -sha256
 * The server's name is always checked against the certificate. A CA file that cannot be
 * read makes record_start() fail; a failed check is logged with its reason, and the link
 * retries (a finite source fails after RECORD_OPT_GIVE_UP_MS).
 * 0, -EINVAL (bad pin), -ENAMETOOLONG. */
int record_set_tls(rec_hdl_t hdl, const char *ca_file, const char *pin);

/* Log lines of the module (levels as syslog: 3 error, 4 warning, 6 info, 7 debug).
 * Default: to stderr, info and above. cb NULL restores the default. */
typedef void (*record_log_func)(int level, const char *msg, void *arg);
void record_set_log_cb(record_log_func cb, void *arg);

#ifdef __cplusplus
}
#endif
#endif
