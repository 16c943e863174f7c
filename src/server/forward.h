/*
 * forward: mirrors every take file to a `pirec ingest` while it is recorded, through the
 * record module's public API (pirec/record.h), from the local file on disk: the copy
 * catches up after any outage as long as the local file exists, and ends byte-identical,
 * its header (STREAMINFO with the MD5) patched at the end by a second "head" stream that
 * the ingest only acknowledges once it has decoded the copy and checked the MD5. The
 * wire format is in docs/protocol.md ("Forwarded takes").
 *
 * One forwarder per recorder; one job per take file, which lives until its copy is
 * complete (or the forwarder is destroyed: then the unfinished copies are logged and, as
 * after a crash, resumed by the next forwarder_resume(): forward_state.h).
 *
 * Threads: forwarder_create/resume/destroy on the control thread. The take callbacks
 * (forward_on_open, forward_on_file) run on the threads take.h names; forwarder_list from any
 * thread. The forwarder's own thread ("forward") reads the files and feeds the record
 * module; the record module's workers call back into it (data_ready).
 * Ownership: a session (forward_session_new) belongs to the caller until
 * forward_session_free(), which may come before the session's jobs are done.
 */
#ifndef PIREC_SERVER_FORWARD_H
#define PIREC_SERVER_FORWARD_H

#include "server/events.h"

#include <stddef.h>
#include <stdint.h>

struct forwarder;
struct forward_session;

enum forward_state {
    FORWARD_SENDING = 0,  /* the take is being recorded or its end is being sent */
    FORWARD_VERIFYING,    /* everything stored on the ingest; its MD5 check is awaited */
    FORWARD_COMPLETE,     /* the ingest decoded its copy and the MD5 matches */
    FORWARD_LOST,         /* the local file became unreadable before it was all sent */
};

struct forward_info {
    char device[64];
    char file[256];             /* base name of the local file */
    enum forward_state state;
    int connected;              /* the link to the ingest is up */
    double seconds_behind;      /* audio recorded locally but not stored remotely yet */
    uint64_t local_bytes;       /* the local file's size so far */
    uint64_t remote_bytes;      /* bytes the ingest confirmed stored */
    char md5[33];               /* of the finished take ("" while recording) */
    char error[200];            /* not connected: why the last attempt failed ("" if known
                                   fine or not known) */
};

const char *forward_state_name(enum forward_state s);

struct forward_config {
    const char *recorder;    /* folder name on the ingest (letters, digits, '_', '-', '.') */
    const char *state_dir;   /* unfinished copies are remembered in STATE_DIR/forward/ so
                                that the next `pirec serve` resumes them (NULL: not kept) */
    const char *ca_file;     /* wss://: PEM file of the CAs to trust (NULL/"": the system's) */
    const char *pin;         /* wss://: SHA-256 pin of the server's key or certificate
                                (NULL/"": none); as record_set_tls() */
};

/* hub may be NULL; the strings of fc are copied. */
int  forwarder_create(struct forwarder **out, const struct forward_config *fc,
                      struct event_hub *hub);
/* Resumes the copies an earlier `pirec serve` left unfinished (fc->state_dir): each
 * continues from where the ingest's copy ends, the local file found in `recordings` under
 * its final name (repaired first, if it was being written) or its .part name. Call once,
 * after the recordings were repaired and before takes start. Returns how many copies were
 * resumed; one that cannot be is logged, shown as lost, and forgotten. */
int  forwarder_resume(struct forwarder *f, const char *recordings);
void forwarder_destroy(struct forwarder *f);

/* A take's link to the forwarder: url is the base "ws://host:port/[path/]". NULL on
 * -ENOMEM. Pass forward_on_open/forward_on_file and the session as the take's
 * on_open/on_file/on_file_arg. */
struct forward_session *forward_session_new(struct forwarder *f, const char *url,
                                            const char *device);
void forward_session_free(struct forward_session *s);
void forward_on_open(const char *part_path, const char *final_path, void *session);
void forward_on_file(const char *path, uint64_t frames, int error, void *session);

/* Every job, oldest first (*out freed by the caller with free). 0 or -ENOMEM. */
int forwarder_list(struct forwarder *f, struct forward_info **out, size_t *n);

/* "fwd~REC~DEV~FILE": the stream name of a forwarded take file (characters a ws URL
 * path and the ingest accept; others become '_'). 0 or -ENAMETOOLONG. */
int forward_stream_name(char *out, size_t n, const char *recorder, const char *device,
                        const char *file);

#endif
