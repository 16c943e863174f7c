/*
 * forward_state: what the forwarder (forward.c) keeps on disk so that a copy an earlier
 * `pirec serve` left unfinished (stopped, crashed, power cut) is resumed by the next one.
 * One small text file per forwarded take file, STATE_DIR/forward/STREAM.fwd, replaced
 * atomically (write a temporary file, fsync, rename, fsync the folder) whenever what it
 * says changes, and removed when the copy is complete or lost.
 *
 * It holds no byte offset on purpose: after a crash the acknowledged offset on disk could
 * be behind what the ingest stores (bytes in flight), so the resumed stream asks the
 * ingest how much it has (record_get_server_size) and continues from exactly there.
 *
 * Threads: any; files only, no shared state.
 */
#ifndef PIREC_SERVER_FORWARD_STATE_H
#define PIREC_SERVER_FORWARD_STATE_H

struct forward_saved {
    char url[512];          /* base URL of the ingest, "ws[s]://host:port/[path/]" */
    char device[64];
    char file[256];         /* the remote copy's name (the take file's first name) */
    char local[256];        /* the local file's base name in the recordings folder: the
                               .part while it is written, then its final name */
    char final_name[256];   /* the name the take meant to give it when finished */
    int verifying;          /* every byte is stored remotely; only the head is left */
};

/* 0 or a negative errno (the reason is the caller's to log). */
int forward_state_save(const char *state_dir, const char *stream, const struct forward_saved *s);
/* 0 or a negative errno; a missing file is not an error. */
int forward_state_remove(const char *state_dir, const char *stream);

/* Calls each(stream, saved, arg) for every readable state file, in name order; a file
 * that is not one is logged and left alone; the temporary file of a save a crash cut short
 * is removed (call it before any copy is saved again). Returns how many were read, or a negative
 * errno when the folder cannot be listed (none is not an error: 0). */
typedef void (*forward_state_each)(const char *stream, const struct forward_saved *s,
                                   void *arg);
int forward_state_load_all(const char *state_dir, forward_state_each each, void *arg);

#endif
