/*
 * forward_int: the forwarder's insides, shared by forward.c (jobs and its thread),
 * forward_take.c (the take's callbacks) and forward_resume.c (what is kept on disk and
 * resumed after a restart).
 * Not for other modules: they use forward.h. Locking as in forward.h: `f->lock` guards the
 * job list and the fields marked so; the rest of a job belongs to the forwarder thread
 * once the job is in the list.
 */
#ifndef PIREC_SERVER_FORWARD_INT_H
#define PIREC_SERVER_FORWARD_INT_H

#include "server/forward.h"

#include <pirec/record.h>
#include <pirec/ringbuffer.h>

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#define RING_BYTES (1 << 20)          /* refilled every BUSY_TICK_MS while catching up */
#define WINDOW_BYTES (2u << 20)       /* unacknowledged bytes at most (< LINK_BUFFER) */
#define LINK_BUFFER (3 << 20)         /* the record module's ring per stream, resident as it
                                         fills: the window plus one chunk in flight fit */
#define TICK_MS 50
#define BUSY_TICK_MS 5                /* while a job catches up */
#define HEAD_RETRY_MIN_MS 30000       /* the ingest acks a verified head by itself */
#define HEAD_RETRY_MAX_MS 300000
#define KEEP_FINISHED 64              /* finished jobs kept for the status */
#define SHUTDOWN_GRACE_MS 3000

/* What the job's state file says (forward_state.h); only ever goes up. */
enum fwd_saved_phase { SAVED_NONE = 0, SAVED_OPEN, SAVED_CLOSED, SAVED_VERIFYING };

struct fwd_job {
    struct fwd_job *next;
    struct forwarder *f;
    char name[256];           /* the stream name, also the state file's */
    char url[512];            /* the ingest's base URL */
    char main_url[1024], head_url[1024];
    char part_name[256];      /* the local file's base name while written */
    char final_name[256];     /* ... and its final one (the take's plan) */
    int fd;
    uint8_t *header;          /* as first written */
    size_t header_len;
    unsigned rate;
    int64_t opened_ns;

    /* set by forward_on_file / forward_on_open (under f->lock) */
    int closed;
    int superseded;           /* the take opened another file without closing this one:
                                 it removed it (an empty file before a depth switch) */
    uint64_t frames;
    char closed_name[256];    /* the base name the take finished it under */

    /* forwarder thread only */
    rec_hdl_t main, head;
    dev_ringbuf_t ring;
    char *ring_mem;
    uint64_t offset;          /* file offset of the next byte to put into the ring */
    uint64_t start_off;       /* file offset of the main stream's first byte: 0, or where
                                 the ingest's copy ended when the job was resumed */
    int resume;               /* resumed: ask the ingest where its copy ends before feeding */
    int resume_verify;        /* resumed with every byte stored: only the head is left */
    enum fwd_saved_phase saved;
    int save_warned;
    int main_done;
    uint8_t *head_msg;
    size_t head_len;
    int64_t head_sent_ns;
    int head_retry_ms;
    int finished;             /* complete, lost or dropped: handles gone */
    int behind;               /* bytes wait to go into the ring: tick fast */
    int dropped;              /* an empty file the take removed: not shown */

    /* data_ready wait */
    pthread_mutex_t wl;
    pthread_cond_t wc;
    int wake;

    struct forward_info info; /* under f->lock */
};

struct forwarder {
    char recorder[64];
    char state_dir[4096];     /* "" : copies are not remembered across restarts */
    char ca_file[4096];       /* wss:// options (""; none) */
    char pin[80];
    struct event_hub *hub;
    pthread_mutex_t lock;
    pthread_cond_t cond;      /* CLOCK_MONOTONIC */
    int quit;
    struct fwd_job *jobs;     /* oldest first */
    pthread_t thread;
};

struct forward_session {
    struct forwarder *f;
    char url[512];
    char device[64];
};

int64_t fwd_mono_now(void);
/* The `forward` event for a job's info (no lock needed). */
void fwd_publish(struct forwarder *f, const struct forward_info *in);

/* A job for `file` of `device`, streamed to `url` (NULL on -ENOMEM); not listed yet. */
struct fwd_job *fwd_job_new(struct forwarder *f, const char *url, const char *device,
                            const char *file);
/* Opens the local file and reads its header; the stream is `stream` (NULL: named after
 * the forwarder's recorder, the device and the file). 0 or a negative errno. */
int fwd_job_open(struct fwd_job *j, const char *path, const char *stream);
void fwd_job_free(struct fwd_job *j);
/* Appends j to the forwarder's jobs and tells the status (takes the lock). */
void fwd_job_add(struct forwarder *f, struct fwd_job *j);

/* forward_resume.c: the job's state file says `phase` now (saved once per phase; a failure
 * is logged once). Forwarder thread, or the take's thread before the job is listed. */
void fwd_persist(struct fwd_job *j, enum fwd_saved_phase phase);
/* The copy is complete or lost: nothing to resume. */
void fwd_forget(struct fwd_job *j);

#endif
