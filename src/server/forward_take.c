/*
 * forward_take: the forwarder's side of a take (forward.h): a job per file the take
 * opens, told when the take finishes it. forward_on_open runs on the thread take.h names
 * (take_start's, then the writer's); forward_on_file on the writer thread. Both only add
 * to or mark the job list under the forwarder's lock: the forwarder thread does the rest.
 */
#include "common/log.h"
#include "server/forward_head.h"
#include "server/forward_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *base_of(const char *p)
{
    const char *s = strrchr(p, '/');
    return s ? s + 1 : p;
}

struct fwd_job *fwd_job_new(struct forwarder *f, const char *url, const char *device,
                            const char *file)
{
    struct fwd_job *j = calloc(1, sizeof *j);
    if (!j)
        return NULL;
    j->f = f;
    j->fd = -1;
    pthread_mutex_init(&j->wl, NULL);
    pthread_condattr_t ca;   /* job_data_ready's deadline is on CLOCK_MONOTONIC */
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&j->wc, &ca);
    pthread_condattr_destroy(&ca);
    snprintf(j->url, sizeof j->url, "%s", url);
    snprintf(j->info.device, sizeof j->info.device, "%s", device);
    snprintf(j->info.file, sizeof j->info.file, "%s", file);
    snprintf(j->final_name, sizeof j->final_name, "%s", file);
    j->info.state = FORWARD_SENDING;
    j->opened_ns = fwd_mono_now();
    return j;
}

int fwd_job_open(struct fwd_job *j, const char *path, const char *stream)
{
    int rc = stream ? ((size_t)snprintf(j->name, sizeof j->name, "%s", stream) >= sizeof j->name
                           ? -ENAMETOOLONG
                           : 0)
                    : forward_stream_name(j->name, sizeof j->name, j->f->recorder,
                                          j->info.device, j->info.file);
    if (rc == 0 && ((size_t)snprintf(j->main_url, sizeof j->main_url, "%s%s", j->url,
                                     j->name) >= sizeof j->main_url ||
                    (size_t)snprintf(j->head_url, sizeof j->head_url, "%s%s.head", j->url,
                                     j->name) >= sizeof j->head_url))
        rc = -ENAMETOOLONG;
    if (rc == 0) {
        j->fd = open(path, O_RDONLY | O_CLOEXEC);
        rc = j->fd < 0 ? -errno : forward_read_header(j->fd, &j->header, &j->header_len, &j->rate);
    }
    if (rc == 0) {
        j->ring_mem = malloc(RING_BYTES);
        rc = j->ring_mem ? ringbuffer_create(&j->ring, j->ring_mem, RING_BYTES) : -ENOMEM;
    }
    return rc;
}

void fwd_job_add(struct forwarder *f, struct fwd_job *j)
{
    pthread_mutex_lock(&f->lock);
    struct fwd_job **pp = &f->jobs;
    while (*pp) {
        if (!(*pp)->closed && !j->closed && strcmp((*pp)->info.device, j->info.device) == 0)
            (*pp)->superseded = 1;
        pp = &(*pp)->next;
    }
    *pp = j;
    struct forward_info copy = j->info;
    pthread_cond_signal(&f->cond);
    pthread_mutex_unlock(&f->lock);
    if (!j->dropped)
        fwd_publish(f, &copy);
}

void forward_on_open(const char *part_path, const char *final_path, void *arg)
{
    struct forward_session *s = arg;
    const char *file = base_of(final_path);
    struct fwd_job *j = fwd_job_new(s->f, s->url, s->device, file);
    int rc = j ? fwd_job_open(j, part_path, NULL) : -ENOMEM;
    if (rc < 0) {
        log_err("forward", "%s: cannot forward this file to %s: %s", file, s->url,
                strerror(-rc));
        if (j)
            fwd_job_free(j);
        return;
    }
    snprintf(j->part_name, sizeof j->part_name, "%s", base_of(part_path));
    /* kept on disk before the file can hold a frame: a crash from here on resumes it */
    fwd_persist(j, SAVED_OPEN);
    log_info("forward", "%s: forwarding to %s", file, j->main_url);
    fwd_job_add(s->f, j);
}

void forward_on_file(const char *path, uint64_t frames, int error, void *arg)
{
    struct forward_session *s = arg;
    struct forwarder *f = s->f;
    const char *file = base_of(path);
    pthread_mutex_lock(&f->lock);
    /* the newest open job of this device and file (a rename may add a suffix: match by
     * device and the job that is not closed yet) */
    struct fwd_job *hit = NULL;
    for (struct fwd_job *j = f->jobs; j; j = j->next)
        if (!j->closed && strcmp(j->info.device, s->device) == 0)
            hit = j;
    if (hit) {
        hit->closed = 1;
        hit->frames = frames;
        snprintf(hit->closed_name, sizeof hit->closed_name, "%s", file);
        if (strcmp(hit->info.file, file) != 0)
            log_info("forward", "%s was finished as %s; its remote copy keeps the first name",
                     hit->info.file, file);
    }
    pthread_cond_signal(&f->cond);
    pthread_mutex_unlock(&f->lock);
    (void)error;
}

struct forward_session *forward_session_new(struct forwarder *f, const char *url,
                                            const char *device)
{
    struct forward_session *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->f = f;
    snprintf(s->url, sizeof s->url, "%s", url);
    snprintf(s->device, sizeof s->device, "%s", device);
    return s;
}

void forward_session_free(struct forward_session *s)
{
    free(s);
}

