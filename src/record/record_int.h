/*
 * record_int: what record.c (handles, registry, settings, counters) and record_run.c (the
 * worker, start, stop, wait) share. Private to src/record/; the locking rules are in
 * record.c's header comment.
 */
#ifndef PIREC_RECORD_RECORD_INT_H
#define PIREC_RECORD_RECORD_INT_H

#include <pirec/record.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "record/endpoint.h"
#include "record/url.h"

#define DEFAULT_CHUNK 4096
#define MAX_CHUNK (16 * 1024 * 1024)
/* File and memory sources are read in pieces of at least this much, whatever the chunk
 * size: fewer reads and fewer wake-ups of the sink per byte. Ring sources keep the caller's
 * chunk (its data_ready() rhythm). record_get_count() still counts progress in chunks. */
#define BULK_READ (256 * 1024)
#define IDLE_WAIT_MS 5    /* ring source without data_ready: sleep on the condition this long */
#define STUCK_GRACE_MS 500 /* after the stop timeout and the abort: how long the worker may
                              still take before stop leaves it behind (a data_ready that
                              never returns) */

struct rec {
    uint64_t id;
    struct rec *next;       /* registry list; reg_lock */
    int refs;               /* reg_lock */
    atomic_int removed;     /* unregistered: lookups fail, start refuses */

    pthread_mutex_t op_lock;
    pthread_mutex_t lock;
    pthread_cond_t cond;

    struct rec_url from, to;

    /* settings; lock */
    data_ready_func ready_cb;
    void *ready_arg;
    data_release_func release_cb;
    void *release_arg;
    record_finish_func finish_cb;
    void *finish_arg;
    int chunk;
    size_t buf_len;      /* bytes r->buf holds: the read size of the current run */
    int64_t buffer_bytes, stop_timeout_ms, reconnect_max_ms, give_up_ms;
    char ca_file[4097];
    int has_pin;
    unsigned char pin[32];

    /* run state; lock unless noted */
    record_state_t state;
    int error;
    int thread_live;        /* a thread was created and not yet joined; op_lock */
    pthread_t thread;
    int worker_done;
    int worker_alive;       /* the worker thread has not returned (also when left behind) */
    int in_ready;           /* the worker is inside data_ready() */
    int ends_taken;         /* stop closed the ends itself: the worker left behind must not */
    int ends_closed;        /* the worker began closing the ends: abort must not touch them */
    atomic_int quit;        /* stop reading new data, drain */
    atomic_int abort;       /* stop waiting for the sink */
    struct rec_ep src, dst;
    uint8_t *buf;

    /* counters of the current (or last) run; written by the worker */
    _Atomic uint64_t read_bytes, written_bytes, lost_local;
    struct ws_stream_stats ws_last;   /* lock: final ws stats, kept after the stream closed */
    int have_ws_last;
    struct ws_fate *ws_fate;          /* lock: the fate of the bytes ws_last counts as pending
                                         (unconfirmed on a shared legacy link), or NULL */
};


/* Ids are scaled so a handle looks like an aligned pointer and is never NULL. */
static inline rec_hdl_t id_to_hdl(uint64_t id) { return (rec_hdl_t)(uintptr_t)(id * 16); }

/* A counted reference to a registered handle (NULL and a log line if there is none). */
struct rec *rec_get(rec_hdl_t hdl, const char *fn);
void rec_ref(struct rec *r);
void rec_put(struct rec *r);
/* r->lock held. */
void rec_stats_locked(struct rec *r, record_stats_t *s);
/* Checks a ringbuffer:// or mem:// address against the registry (addr_registry.h). */
int rec_resolve_url(struct rec_url *u);
const struct rec_ep_ops *rec_ops_for(enum rec_url_kind kind);
/* r->op_lock held. */
int rec_stop_locked(struct rec *r);

#endif
