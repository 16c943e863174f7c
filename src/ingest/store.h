/*
 * ingest store: the files `pirec ingest` appends streams to.
 *
 * Owner: "C" (pirec ingest). One store per server, shared by every service thread: every
 * function below except open/close must be called with the store lock held
 * (ingest_store_lock), which guards the table, the LRU, every stream and the fault hook.
 * The store's own sync thread only ever touches file descriptors handed to it (dup'ed or
 * given away) and never a stream.
 *
 * Writes are buffered per stream (up to 64 KiB, allocated as needed; a message of 32 KiB
 * or more is written straight through): ingest_store_flush() writes a stream's buffer, and
 * the server calls it before anything that reports a size (stat, ack), every 100 ms
 * (ingest_store_flush_old) and at release. A failed flush truncates the file back to its
 * last flushed size and drops the buffered messages, so the file still ends at a message
 * boundary; `size` then falls back to that.
 *
 * A stream is one file DIR/<name>, opened with openat() on the directory's fd with
 * O_NOFOLLOW, so nothing outside DIR is ever written and symlinks are refused. `size` is
 * always the length of the complete messages stored: a failed append truncates the file
 * back to it. At most max_open fds are kept open (LRU); an evicted stream reopens on its
 * next append. Every sync_ms the fds of streams written since the last round are
 * fdatasync'ed by the sync thread, so the service thread never blocks on a slow disk.
 *
 * Functions return 0 or a negative errno.
 */
#ifndef PIREC_INGEST_STORE_H
#define PIREC_INGEST_STORE_H

#include <stddef.h>
#include <stdint.h>

struct ingest_store;

struct ingest_stream {
    char name[256];          /* validated by wsproto_name_check(), NUL-terminated */
    size_t name_len;
    char shown[1030];        /* the name escaped for log lines (UTF-8 and all: \xNN) */
    uint64_t size;           /* complete messages: in the file plus buffered */
    uint64_t flushed;        /* bytes in the file */
    uint64_t received;       /* bytes appended since the stream was opened here */
    uint64_t messages;       /* messages appended since the stream was opened here */
    int fd;                  /* -1 while evicted from the LRU */
    int dirty;               /* appended since the last sync round */

    int failed;              /* negative errno of a failed background flush (eviction,
                                flush_old), for the owner to report; 0 otherwise */

    /* For the server's use; the store never reads these. */
    void *owner;                          /* connection that owns the name, or NULL */
    int owner_flushes;                    /* the owner (resume) flushes before each ack,
                                             at most ACK_US apart: flush_old skips it */
    int refs;                             /* connections that hold this pointer */
    uint64_t acked;                       /* size last acked to the owner */
    int64_t last_ack_us;
    int ack_due;

    /* Store internals. */
    unsigned char *wbuf;                       /* buffered messages */
    size_t wlen, wcap;
    int64_t wsince_us;                         /* when the buffer got its first byte */
    struct ingest_stream *hnext;               /* hash chain */
    struct ingest_stream *lru_prev, *lru_next; /* open fds, most recent first */
    struct ingest_stream *all_prev, *all_next;
};

struct ingest_store_config {
    const char *dir;         /* created (one level) if missing */
    int max_open;            /* fds kept open at most; <= 0: 1024 */
    unsigned sync_ms;        /* 0: no periodic fdatasync (still fsync at close) */
    int64_t fault_enospc_after; /* test hook: < 0 off; else fail writes with ENOSPC once
                                   this many bytes were written in total */
};

void ingest_store_lock(struct ingest_store *st);
void ingest_store_unlock(struct ingest_store *st);

/* Opens (creating if missing) and checks DIR is a writable directory. On failure *err
 * names the problem. */
int ingest_store_open(struct ingest_store **out, const struct ingest_store_config *cfg,
                      char *err, size_t errlen);
/* fsyncs and closes every file and the directory, stops the sync thread, frees all. */
void ingest_store_close(struct ingest_store *st);

/* Finds the stream NAME (already validated) or creates it, opening or creating its file
 * and reading its size. -ELOOP: NAME is a symlink; -EISDIR/-EINVAL: not a regular file. */
int ingest_store_get(struct ingest_store *st, const char *name, size_t len,
                     struct ingest_stream **out);
struct ingest_stream *ingest_store_find(struct ingest_store *st, const char *name, size_t len);

/* Appends one complete message's data (to the buffer or the file). On failure nothing of
 * it stays in the file (nor of the messages buffered before it). */
int ingest_store_append(struct ingest_store *st, struct ingest_stream *s, const void *data,
                        size_t len);
/* Writes s's buffered messages to its file. 0 or a negative errno (see above). */
int ingest_store_flush(struct ingest_store *st, struct ingest_stream *s);
/* Flushes every stream whose buffer is older than max_age_us; a failure lands in
 * s->failed for its owner to report. */
void ingest_store_flush_old(struct ingest_store *st, int64_t now_us, int64_t max_age_us);

/* Appends a line about lost bytes to DIR/<name>.losses. */
int ingest_store_loss(struct ingest_store *st, struct ingest_stream *s, uint64_t at,
                      uint64_t bytes, const char *who);

/* Flushes and forgets the stream (its file is synced in the background and closed). */
void ingest_store_release(struct ingest_store *st, struct ingest_stream *s);

/* Call every now and then: starts a sync round when sync_ms has passed. */
void ingest_store_tick(struct ingest_store *st, int64_t now_us);

size_t ingest_store_count(const struct ingest_store *st);
int ingest_store_open_fds(const struct ingest_store *st);
/* Visits every stream; f may not release streams. */
void ingest_store_foreach(struct ingest_store *st, void (*f)(struct ingest_stream *, void *),
                          void *arg);

#endif
