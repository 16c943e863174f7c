/*
 * forward: see forward.h. Per take file a job: the file descriptor of its .part file
 * (kept open, so the rename at the end and even a deletion do not matter while the job
 * runs), a snapshot of the header as first written, and two record-module handles:
 *
 *   main  ringbuffer:// -> ws://.../fwd~REC~DEV~FILE   the file's bytes, in order: the
 *         header snapshot, then everything after it, read from disk as the take grows.
 *         The forwarder puts bytes into the handle's ring only while fewer than WINDOW
 *         bytes are unacknowledged, so the record module's buffer never overflows and an
 *         outage of any length costs nothing: the bytes wait in the local file.
 *   head  mem:// -> ws://.../fwd~REC~DEV~FILE.head     once the file is finished and
 *         every byte of it acknowledged: one line "pirec-forward-head 1 SIZE HLEN MD5"
 *         and the final header (STREAMINFO with total samples and MD5, comments). The
 *         ingest writes it over the copy's first HLEN bytes, decodes the copy, checks the
 *         MD5, and stores (acknowledges) the head only then; after a failed check the
 *         head is sent again now and then.
 */
#include "server/forward.h"

#include "common/log.h"
#include "common/timeutil.h"
#include "server/api_events.h"
#include "server/forward_head.h"
#include "server/forward_int.h"
#include "server/forward_state.h"

#include <pirec/record.h>
#include <pirec/ringbuffer.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int64_t fwd_mono_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

const char *forward_state_name(enum forward_state s)
{
    switch (s) {
    case FORWARD_SENDING: return "sending";
    case FORWARD_VERIFYING: return "verifying";
    case FORWARD_COMPLETE: return "complete";
    case FORWARD_LOST: return "lost";
    }
    return "lost";
}

/* ---- events ---------------------------------------------------------------------------- */

void fwd_publish(struct forwarder *f, const struct forward_info *in)
{
    if (f->hub)
        api_event_forward(f->hub, in);
}

/* ---- record-module callbacks (their worker threads) -------------------------------------- */

static void job_data_ready(void *arg)
{
    struct fwd_job *j = arg;
    struct timespec ts;
    deadline_after_ms(&ts, 100);
    pthread_mutex_lock(&j->wl);
    if (!j->wake)
        pthread_cond_timedwait(&j->wc, &j->wl, &ts);
    j->wake = 0;
    pthread_mutex_unlock(&j->wl);
}

static void job_wake(void *arg)
{
    struct fwd_job *j = arg;
    pthread_mutex_lock(&j->wl);
    j->wake = 1;
    pthread_cond_signal(&j->wc);
    pthread_mutex_unlock(&j->wl);
}

/* ---- jobs ------------------------------------------------------------------------------ */

/* The head message is a mem:// source: the record module resolves only registered blocks. */
static void free_head_msg(struct fwd_job *j)
{
    if (j->head_msg)
        record_unregister_memory(j->head_msg);
    free(j->head_msg);
    j->head_msg = NULL;
}

void fwd_job_free(struct fwd_job *j)
{
    if (j->head)
        record_unregister(j->head);
    if (j->main)
        record_unregister(j->main);
    if (j->fd >= 0)
        close(j->fd);
    free(j->header);
    free_head_msg(j);
    free(j->ring_mem);
    pthread_mutex_destroy(&j->wl);
    pthread_cond_destroy(&j->wc);
    free(j);
}

/* The job ends here (forwarder thread, no lock): its handles go now, not under the lock
 * in prune(). Complete, lost or dropped: nothing is left to resume. */
static void job_end(struct fwd_job *j)
{
    fwd_forget(j);
    if (j->head)
        record_unregister(j->head);
    if (j->main)
        record_unregister(j->main);
    j->head = j->main = NULL;
    j->finished = 1;
    j->behind = 0;
    /* a finished job is kept for the status only: let go of its buffers and file */
    free(j->ring_mem);
    free(j->header);
    free_head_msg(j);
    j->ring_mem = NULL;
    j->header = NULL;
    if (j->fd >= 0)
        close(j->fd);
    j->fd = -1;
}

static rec_hdl_t open_handle(struct forwarder *f, const char *from, const char *to)
{
    rec_hdl_t h = record_register(from, to);
    if (!h)
        return NULL;
    record_set_option(h, RECORD_OPT_BUFFER_BYTES, LINK_BUFFER);
    record_set_option(h, RECORD_OPT_RECONNECT_MAX_MS, 2000);
    record_set_option(h, RECORD_OPT_STOP_TIMEOUT_MS, 1000);
    if (strncmp(to, "wss://", 6) == 0 && (f->ca_file[0] || f->pin[0]) &&
        record_set_tls(h, f->ca_file[0] ? f->ca_file : NULL, f->pin[0] ? f->pin : NULL) < 0) {
        record_unregister(h);   /* the config was checked: cannot happen */
        return NULL;
    }
    return h;
}

static int start_main(struct fwd_job *j)
{
    char from[64];
    snprintf(from, sizeof from, "ringbuffer://handle=0x%" PRIxPTR, (uintptr_t)&j->ring);
    j->main = open_handle(j->f, from, j->main_url);
    if (!j->main)
        return -EINVAL;
    record_set_data_ready_cb(j->main, job_data_ready, j);
    record_set_data_release_cb(j->main, job_wake, j);
    record_set_chunk_size(j->main, 64 * 1024);
    return record_start(j->main);
}

static int start_head(struct fwd_job *j)
{
    char from[96];
    snprintf(from, sizeof from, "mem://address=0x%" PRIxPTR "&size=%zu",
             (uintptr_t)j->head_msg, j->head_len);
    if (j->head)
        record_unregister(j->head);
    j->head = open_handle(j->f, from, j->head_url);
    if (!j->head)
        return -EINVAL;
    /* an unacknowledged head is one the ingest's check refused: no point waiting */
    record_set_option(j->head, RECORD_OPT_STOP_TIMEOUT_MS, 50);
    /* one read, so one message: the ingest takes the head only whole (with the default
     * 4 KiB chunks a header over 4 KiB went out as several messages when the link sent
     * the first chunk before the next was read) */
    record_set_chunk_size(j->head, (int)j->head_len);
    j->head_sent_ns = fwd_mono_now();
    return record_start(j->head);
}

/* The finished file's header, behind the line the ingest checks it with. */
static int build_head(struct fwd_job *j, uint64_t size)
{
    uint8_t *h;
    size_t hlen;
    unsigned rate;
    int rc = forward_read_header(j->fd, &h, &hlen, &rate);
    if (rc < 0)
        return rc;
    char md5[33];
    if (hlen != j->header_len)
        rc = -EINVAL;   /* the writer rewrites in place: cannot happen */
    else
        rc = forward_head_message(h, hlen, size, &j->head_msg, &j->head_len, md5);
    free(h);
    if (rc < 0)
        return rc;
    rc = record_register_memory(j->head_msg, j->head_len);
    if (rc < 0) {
        free(j->head_msg);
        j->head_msg = NULL;
        return rc;
    }
    pthread_mutex_lock(&j->f->lock);
    /* a take repaired after a crash has no MD5 (zeros): the ingest only decodes it */
    snprintf(j->info.md5, sizeof j->info.md5, "%s",
             strcmp(md5, "00000000000000000000000000000000") == 0 ? "" : md5);
    pthread_mutex_unlock(&j->f->lock);
    return 0;
}

/* Puts what the window allows into the ring. */
static int feed(struct fwd_job *j, uint64_t size, uint64_t acked)
{
    uint8_t buf[64 * 1024];
    int fed = 0;
    while (j->offset < size && j->offset - acked < WINDOW_BYTES) {
        int space = ringbuffer_available_write_space(&j->ring);
        if (space <= 0)
            break;
        uint64_t n = size - j->offset;
        if (n > (uint64_t)space)
            n = (uint64_t)space;
        if (n > WINDOW_BYTES - (j->offset - acked))
            n = WINDOW_BYTES - (j->offset - acked);
        if (n > sizeof buf)
            n = sizeof buf;
        if (j->offset < j->header_len) {
            if (n > j->header_len - j->offset)
                n = j->header_len - j->offset;
            memcpy(buf, j->header + j->offset, (size_t)n);
        } else {
            int rc = forward_pread_all(j->fd, buf, (size_t)n, j->offset);
            if (rc < 0)
                return rc;
        }
        ringbuffer_write(&j->ring, buf, (uint32_t)n);
        j->offset += n;
        fed = 1;
    }
    if (fed)
        job_wake(j);
    return 0;
}

static void job_set(struct fwd_job *j, enum forward_state state, int connected, double behind,
                    uint64_t local, uint64_t remote)
{
    struct forwarder *f = j->f;
    /* why the ingest cannot be reached (a refused certificate, a refused connection) */
    char why[sizeof j->info.error] = "";
    rec_hdl_t h = j->main_done ? j->head : j->main;
    if (!connected && h && state != FORWARD_COMPLETE)
        record_get_link_failure(h, why, sizeof why);
    pthread_mutex_lock(&f->lock);
    int changed = j->info.state != state || j->info.connected != connected ||
                  strcmp(j->info.error, why) != 0;
    snprintf(j->info.error, sizeof j->info.error, "%s", why);
    j->info.state = state;
    j->info.connected = connected;
    j->info.seconds_behind = behind;
    j->info.local_bytes = local;
    j->info.remote_bytes = remote;
    struct forward_info copy = j->info;
    pthread_mutex_unlock(&f->lock);
    if (changed && !j->dropped)
        fwd_publish(f, &copy);
}

static void job_lost(struct fwd_job *j, int connected, uint64_t local, uint64_t remote)
{
    job_set(j, FORWARD_LOST, connected, 0, local, remote);
    job_end(j);
}

/* Every byte is stored remotely: the head follows (after the state file says so, so that a
 * restart from here on only sends the head again). 0 or a negative errno (logged). */
static int begin_head(struct fwd_job *j, uint64_t size)
{
    if (j->main)
        record_stop(j->main);
    j->main_done = 1;
    fwd_persist(j, SAVED_VERIFYING);
    int rc = build_head(j, size);
    if (rc == 0)
        rc = start_head(j);
    if (rc < 0)
        log_err("forward", "%s: cannot send the finished header: %s", j->info.file,
                strerror(-rc));
    j->head_retry_ms = HEAD_RETRY_MIN_MS;
    return rc;
}

/* A resumed job: the main stream, started with nothing read, learns where the ingest's
 * copy ends; everything from there on is sent. 1 when known, 0 while waiting, -1 lost. */
static int resume_point(struct fwd_job *j, uint64_t size)
{
    uint64_t have;
    int rc = record_get_server_size(j->main, &have);
    if (rc == -EAGAIN)
        return 0;
    if (rc < 0) {
        log_err("forward", "%s: the server at %s cannot say how much of the copy it has "
                "(%s): not a pirec ingest? Not resumed", j->info.file, j->url, strerror(-rc));
        return -1;
    }
    if (have > size) {
        log_err("forward", "%s: the ingest holds %" PRIu64 " bytes of it but the local file "
                "has only %" PRIu64 " (its torn end was cut by the repair after a crash): "
                "the remote copy cannot be completed; the local file is whole", j->info.file,
                have, size);
        return -1;
    }
    j->start_off = j->offset = have;
    j->resume = 0;
    log_info("forward", "%s: resuming its copy at byte %" PRIu64 " of %" PRIu64, j->info.file,
             have, size);
    return 1;
}

/* One step of a job on the forwarder thread. */
static void pump(struct fwd_job *j)
{
    struct forwarder *f = j->f;
    pthread_mutex_lock(&f->lock);
    int closed = j->closed;
    int superseded = j->superseded;
    uint64_t frames = j->frames;
    enum forward_state state = j->info.state;
    pthread_mutex_unlock(&f->lock);

    struct stat sb;
    if (fstat(j->fd, &sb) < 0) {
        log_err("forward", "%s: cannot read the local file any more: %s; its remote copy "
                "is incomplete", j->info.file, strerror(errno));
        job_lost(j, 0, 0, j->info.remote_bytes);
        return;
    }
    uint64_t size = (uint64_t)sb.st_size;
    if (!closed && (superseded || sb.st_nlink == 0) && size <= j->header_len) {
        j->dropped = 1;   /* an empty file the take removed */
        /* its state file is not removed: the replacement (a depth switch) has the same name,
         * so the same state file, saved already or about to be; one left without a
         * replacement names a file that is gone, forgotten quietly by the next start */
        j->saved = SAVED_NONE;
        job_end(j);
        return;
    }
    if (closed)
        fwd_persist(j, SAVED_CLOSED);   /* its final name, for a restart */
    if (j->resume_verify && !j->main_done) {
        if (begin_head(j, size) < 0)
            job_lost(j, 0, size, size);
        return;
    }
    if (!j->main) {
        /* Started here, once the file holds a frame (or is finished): a file the take
         * drops before its first frame (a depth switch) is never sent; the ingest appends
         * to a name it knows, so its replacement of the same name must be the first. */
        if (!closed && size <= j->header_len)
            return;
        int rc = start_main(j);
        if (rc < 0) {
            log_err("forward", "%s: cannot forward this file to %s: %s", j->info.file,
                    j->main_url, strerror(-rc));
            job_lost(j, 0, size, 0);
            return;
        }
    }
    record_stats_t ms = {0};
    record_get_stats(j->main, &ms);
    int connected = ms.connected;
    uint64_t acked = j->start_off + ms.acked_bytes;   /* a file offset */
    if (j->resume && !j->main_done) {
        int rc = ms.state == RECORD_FAILED ? -1 : resume_point(j, size);
        if (rc < 0) {
            job_lost(j, connected, size, j->info.remote_bytes);
            return;
        }
        if (rc == 0) {
            job_set(j, state, connected, 0, size, j->info.remote_bytes);
            return;
        }
        acked = j->start_off + ms.acked_bytes;
    }
    if (!j->main_done) {
        int rc = feed(j, size, acked);
        if (rc < 0) {
            log_err("forward", "%s: reading the local file at %" PRIu64 " failed: %s; its "
                    "remote copy stops there", j->info.file, j->offset, strerror(-rc));
            job_lost(j, connected, size, acked);
            return;
        }
        j->behind = j->offset < size;
        if (ms.state == RECORD_FAILED) {
            log_err("forward", "%s: the stream to the ingest failed (%s); the remote copy "
                    "stops at %" PRIu64 " bytes", j->info.file, strerror(-ms.error), acked);
            job_lost(j, 0, size, acked);
            return;
        }
        if (closed && j->offset == size && acked >= size) {
            if (begin_head(j, size) < 0) {
                job_lost(j, connected, size, acked);
                return;
            }
            state = FORWARD_VERIFYING;
        }
    }
    if (j->main_done) {
        record_stats_t hs = {0};
        record_get_stats(j->head, &hs);
        connected = hs.connected;
        if (hs.acked_bytes >= j->head_len) {
            job_end(j);
            log_info("forward", "%s: the remote copy is complete (%" PRIu64 " bytes, %s%s)",
                     j->info.file, size, j->info.md5[0] ? "MD5 verified by the ingest: " :
                     "no MD5 (repaired after a crash): decoded by the ingest", j->info.md5);
            job_set(j, FORWARD_COMPLETE, 1, 0, size, size);
            return;
        }
        if (fwd_mono_now() - j->head_sent_ns > (int64_t)j->head_retry_ms * 1000000LL) {
            /* the ingest's check failed (or it restarted while checking): ask again */
            if (start_head(j) < 0)
                log_warn("forward", "%s: cannot resend the header", j->info.file);
            j->head_retry_ms = j->head_retry_ms * 2 > HEAD_RETRY_MAX_MS ? HEAD_RETRY_MAX_MS
                                                                       : j->head_retry_ms * 2;
        }
        job_set(j, FORWARD_VERIFYING, connected, 0, size, size);
        return;
    }
    double secs = closed && j->rate ? (double)frames / j->rate
                                    : (double)(fwd_mono_now() - j->opened_ns) / 1e9;
    double behind = size > acked && size && secs > 0 ? (double)(size - acked) * secs / size : 0;
    job_set(j, state, connected, behind, size, acked);
}

/* Drops finished jobs beyond the newest KEEP_FINISHED (lock held). */
static void prune(struct forwarder *f)
{
    size_t kept = 0;
    for (struct fwd_job *j = f->jobs; j; j = j->next)
        kept += j->finished && !j->dropped;
    struct fwd_job **pp = &f->jobs;
    while (*pp) {
        struct fwd_job *j = *pp;
        if (j->finished && (j->dropped || kept > KEEP_FINISHED)) {
            if (!j->dropped)
                kept--;
            *pp = j->next;
            fwd_job_free(j);
        } else {
            pp = &j->next;
        }
    }
}

static void *forward_main(void *arg)
{
    struct forwarder *f = arg;
    pthread_mutex_lock(&f->lock);
    while (!f->quit) {
        int busy = 0;
        for (struct fwd_job *j = f->jobs; j && !f->quit; j = j->next) {
            if (j->finished)
                continue;
            pthread_mutex_unlock(&f->lock);
            pump(j);   /* jobs are only freed by this thread */
            pthread_mutex_lock(&f->lock);
            busy |= j->behind;
        }
        prune(f);
        struct timespec ts;
        deadline_after_ms(&ts, busy ? BUSY_TICK_MS : TICK_MS);
        if (!f->quit)
            pthread_cond_timedwait(&f->cond, &f->lock, &ts);
    }
    pthread_mutex_unlock(&f->lock);
    return NULL;
}

/* ---- the forwarder ------------------------------------------------------------------------ */

int forwarder_create(struct forwarder **out, const struct forward_config *fc,
                     struct event_hub *hub)
{
    struct forwarder *f = calloc(1, sizeof *f);
    if (!f)
        return -ENOMEM;
    snprintf(f->recorder, sizeof f->recorder, "%s", fc->recorder);
    snprintf(f->state_dir, sizeof f->state_dir, "%s", fc->state_dir ? fc->state_dir : "");
    snprintf(f->ca_file, sizeof f->ca_file, "%s", fc->ca_file ? fc->ca_file : "");
    snprintf(f->pin, sizeof f->pin, "%s", fc->pin ? fc->pin : "");
    f->hub = hub;
    pthread_mutex_init(&f->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&f->cond, &ca);
    pthread_condattr_destroy(&ca);
    int rc = pthread_create(&f->thread, NULL, forward_main, f);
    if (rc != 0) {
        pthread_cond_destroy(&f->cond);
        pthread_mutex_destroy(&f->lock);
        free(f);
        return -rc;
    }
    pthread_setname_np(f->thread, "forward");
    *out = f;
    return 0;
}

void forwarder_destroy(struct forwarder *f)
{
    if (!f)
        return;
    /* a take stopped just before the shutdown: let its copy complete while the ingest is
     * reachable, for a few seconds at most */
    int64_t end = fwd_mono_now() + SHUTDOWN_GRACE_MS * 1000000LL;
    for (;;) {
        int waiting = 0;
        pthread_mutex_lock(&f->lock);
        for (struct fwd_job *j = f->jobs; j; j = j->next)
            waiting |= !j->finished && j->closed &&
                       (j->info.connected || j->info.state == FORWARD_VERIFYING);
        pthread_mutex_unlock(&f->lock);
        if (!waiting || fwd_mono_now() > end)
            break;
        struct timespec ts = {0, 20 * 1000000L};
        nanosleep(&ts, NULL);
    }
    pthread_mutex_lock(&f->lock);
    f->quit = 1;
    pthread_cond_signal(&f->cond);
    pthread_mutex_unlock(&f->lock);
    pthread_join(f->thread, NULL);
    while (f->jobs) {
        struct fwd_job *j = f->jobs;
        f->jobs = j->next;
        if (!j->finished)
            log_warn("forward", "%s: shutting down before its remote copy was complete "
                     "(%" PRIu64 " of %" PRIu64 " bytes stored there); the local file is whole",
                     j->info.file, j->info.remote_bytes, j->info.local_bytes);
        fwd_job_free(j);
    }
    pthread_cond_destroy(&f->cond);
    pthread_mutex_destroy(&f->lock);
    free(f);
}

int forwarder_list(struct forwarder *f, struct forward_info **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    if (!f)
        return 0;
    pthread_mutex_lock(&f->lock);
    size_t count = 0;
    for (struct fwd_job *j = f->jobs; j; j = j->next)
        count += !j->dropped;
    struct forward_info *v = count ? calloc(count, sizeof *v) : NULL;
    if (count && !v) {
        pthread_mutex_unlock(&f->lock);
        return -ENOMEM;
    }
    size_t i = 0;
    for (struct fwd_job *j = f->jobs; j; j = j->next)
        if (!j->dropped)
            v[i++] = j->info;
    pthread_mutex_unlock(&f->lock);
    *out = v;
    *n = i;
    return 0;
}
