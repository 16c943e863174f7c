/*
 * ingest forwarded: takes that `pirec serve` forwards (docs/protocol.md, "Forwarded
 * takes"). A forwarded take arrives as an ordinary stream "fwd~REC~DEV~FILE" (stored flat
 * in DIR while it grows: a FLAC file that flac_repair can finalize at any time), then one
 * message on the stream "fwd~REC~DEV~FILE.head": the line
 * "pirec-forward-head 1 SIZE HLEN MD5\n" and the take's final HLEN header bytes.
 *
 * On that message the copy's first HLEN bytes are replaced by it, and a background thread
 * decodes the copy and checks its MD5; the head message is held meanwhile and stored (which
 * acknowledges it) by forwarded_tick() once the copy is verified, never if the check fails
 * (the log says why; a resend of the head, which the recorder makes now and then, checks
 * again). A verified copy moves to DIR/REC/DEV/FILE (folders created, no symlink
 * followed, nothing replaced).
 *
 * Owner: "C" (pirec ingest). forwarded_init/_shutdown on the thread of ingest_run;
 * forwarded_on_head on the service thread; the verification threads are private.
 */
#ifndef PIREC_INGEST_FORWARDED_H
#define PIREC_INGEST_FORWARDED_H

#include <stddef.h>

/* 0 or -ENOMEM. dir: the ingest's folder. */
int  forwarded_init(const char *dir);
/* Waits for running verifications, forgets everything. */
void forwarded_shutdown(void);
/* Is this stream name a forwarded take's head ("fwd~...~FILE.head")? */
int  forwarded_is_head(const char *name, size_t len);
/* A complete head message: 1 = the copy is verified, store the message (which acks it);
 * 0 = not (yet): drop the message (a first one is held for forwarded_tick). */
int  forwarded_on_head(const char *name, size_t len, const void *data, size_t dlen);

/* After a verified head was stored (and acked): its file is only bookkeeping, removed so
 * that the folder keeps the takes alone. */
void forwarded_stored(const char *name, size_t len);
/* Service thread, now and then: stores the held head of every copy verified since. */
struct ingest_store;
void forwarded_tick(struct ingest_store *st);

#endif
