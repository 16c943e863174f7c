/*
 * endpoint: one end (source or sink) of a record handle, behind a small table of
 * functions; one file per kind (ep_file.c, ep_mem.c, ep_ring.c, ep_ws.c).
 *
 * Owned by the record module (A). An endpoint belongs to one handle: record_start() opens
 * it on the caller's thread, then only that handle's worker thread reads/writes/drains
 * and closes it. The one exception is ops->abort, which record_stop() may call from its
 * own thread (under the handle's lock, never after close began) to end a blocked write or
 * drain. All functions return 0 / a byte count or a negative errno, and log their own
 * errors on the "record" component.
 */
#ifndef PIREC_RECORD_ENDPOINT_H
#define PIREC_RECORD_ENDPOINT_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <pirec/ringbuffer.h>

#include "record/url.h"
#include "record/ws_link.h"

struct rec_ep;

struct rec_ep_ops {
    int (*open)(struct rec_ep *ep);
    /* Source: > 0 bytes read; 0 nothing now (ep->eof is set when a finite source ended). */
    ssize_t (*read)(struct rec_ep *ep, void *buf, size_t len);
    /* Sink: delivers all len bytes or fails; *done says how many it took either way.
     * -ECANCELED once *ep->abort is set. */
    int (*write)(struct rec_ep *ep, const void *buf, size_t len, size_t *done);
    /* Sink: waits until everything written is delivered (NULL: nothing is buffered). */
    int (*drain)(struct rec_ep *ep);
    /* Makes a blocked write/drain return -ECANCELED (NULL: they check *ep->abort). */
    void (*abort)(struct rec_ep *ep);
    /* Sink stats (NULL: the sink delivers synchronously; sent = acked = written). */
    void (*stats)(struct rec_ep *ep, struct ws_stream_stats *st);
    /* Frees everything; a file sink syncs here, so an error means data may not be on disk. */
    int (*close)(struct rec_ep *ep);
};

struct rec_ep {
    const struct rec_ep_ops *ops;
    const struct rec_url *url;
    int is_source;
    int finite;                 /* source: ends by itself (file, mem) */
    int eof;                    /* source: reached its end */
    const atomic_int *abort;    /* set by record_stop() when its drain deadline passed */
    /* ws sink settings, filled by record.c before open */
    int write_wait_ms;          /* -1 for finite sources (never lose), 0 for real-time */
    int64_t give_up_ms;         /* finite sources: fail after the link is down this long */
    struct ws_options wsopt;
    /* per-kind state */
    int fd;
    int poll_read;              /* file source that may block (FIFO, tty): poll first */
    uint8_t *mem;
    uint64_t mem_size, mem_pos;
    dev_ringbuf_t *ring;
    struct ws_stream *ws;
    struct ws_fate *ws_fate;    /* after close: the fate of its unconfirmed bytes, if any */
    int64_t down_since_ms;
};

extern const struct rec_ep_ops rec_ep_file_ops;
extern const struct rec_ep_ops rec_ep_mem_ops;
extern const struct rec_ep_ops rec_ep_ring_ops;
extern const struct rec_ep_ops rec_ep_ws_ops;

/* Monotonic milliseconds; shared by the endpoints and the handle code. */
int64_t rec_now_ms(void);

#endif
