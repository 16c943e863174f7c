/* disk_watch: free space measured off the answering threads. See disk_watch.h. */
#include "server/disk_watch.h"

#include "common/timeutil.h"
#include "store/take.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DEFAULT_PERIOD_MS 2000
#define STOP_WAIT_MS 200

/* Shared by the owner and the thread; the last of the two to let go frees it (a probe may
 * outlive disk_watch_stop when the kernel keeps it waiting). */
struct disk_watch {
    pthread_mutex_t lock;
    pthread_cond_t wake;       /* CLOCK_MONOTONIC: stop, refresh, the next period */
    pthread_cond_t done_cond;  /* the thread ended, or a probe did */
    pthread_t thread;
    int refs;                  /* under lock: owner + thread */
    int stopping, refresh, done;
    int block;                 /* test hook: probes hang until stopped */
    disk_probe_func probe;
    void *probe_arg;
    unsigned period_ms, stale_ms;
    int known, error;
    unsigned probes;           /* probes that ended */
    uint64_t free_bytes;
    struct timespec measured;  /* CLOCK_MONOTONIC end of the last successful probe */
    char dir[];
};

static int statvfs_probe(const char *dir, uint64_t *free_bytes, void *arg)
{
    (void)arg;
    return disk_space(dir, NULL, free_bytes, NULL);
}

static void watch_free(struct disk_watch *w)
{
    pthread_cond_destroy(&w->wake);
    pthread_cond_destroy(&w->done_cond);
    pthread_mutex_destroy(&w->lock);
    free(w);
}

/* Drops one reference (lock held; released here). */
static void watch_put(struct disk_watch *w)
{
    int last = --w->refs == 0;
    pthread_mutex_unlock(&w->lock);
    if (last)
        watch_free(w);
}

static void *watch_main(void *arg)
{
    struct disk_watch *w = arg;
    pthread_mutex_lock(&w->lock);
    while (!w->stopping) {
        if (w->block) {        /* a hung mount: nothing comes back until the end */
            pthread_cond_wait(&w->wake, &w->lock);
            continue;
        }
        pthread_mutex_unlock(&w->lock);
        uint64_t free_bytes = 0;
        int rc = w->probe(w->dir, &free_bytes, w->probe_arg);
        pthread_mutex_lock(&w->lock);
        w->error = rc < 0 ? rc : 0;
        w->probes++;
        pthread_cond_broadcast(&w->done_cond);
        if (rc >= 0) {
            w->known = 1;
            w->free_bytes = free_bytes;
            clock_gettime(CLOCK_MONOTONIC, &w->measured);
        }
        if (w->stopping)
            break;
        if (!w->refresh) {
            struct timespec until;
            deadline_after_ms(&until, w->period_ms);
            pthread_cond_timedwait(&w->wake, &w->lock, &until);
        }
        w->refresh = 0;
    }
    w->done = 1;
    pthread_cond_broadcast(&w->done_cond);
    watch_put(w);
    return NULL;
}

int disk_watch_start(struct disk_watch **out, const struct disk_watch_config *cfg)
{
    if (!out || !cfg || !cfg->dir)
        return -EINVAL;
    size_t n = strlen(cfg->dir) + 1;
    struct disk_watch *w = calloc(1, sizeof(*w) + n);
    if (!w)
        return -ENOMEM;
    memcpy(w->dir, cfg->dir, n);
    w->period_ms = cfg->period_ms ? cfg->period_ms : DEFAULT_PERIOD_MS;
    w->stale_ms = cfg->stale_ms ? cfg->stale_ms : 3 * w->period_ms;
    w->probe = cfg->probe ? cfg->probe : statvfs_probe;
    w->probe_arg = cfg->probe_arg;
    const char *hook = getenv("PIREC_TEST_DISK_PROBE");
    w->block = hook && strcmp(hook, "block") == 0;
    pthread_mutex_init(&w->lock, NULL);
    cond_init_monotonic(&w->wake);
    cond_init_monotonic(&w->done_cond);
    w->refs = 2;
    int rc = pthread_create(&w->thread, NULL, watch_main, w);
    if (rc) {
        watch_free(w);
        return -rc;
    }
    pthread_setname_np(w->thread, "disk-watch");
    *out = w;
    return 0;
}

int disk_watch_wait_first(struct disk_watch *w, unsigned timeout_ms)
{
    if (!w)
        return 0;
    struct timespec until;
    deadline_after_ms(&until, timeout_ms);
    pthread_mutex_lock(&w->lock);
    while (!w->probes && !w->done &&
           pthread_cond_timedwait(&w->done_cond, &w->lock, &until) != ETIMEDOUT)
        ;
    int ended = w->probes > 0;
    pthread_mutex_unlock(&w->lock);
    return ended;
}

void disk_watch_get(struct disk_watch *w, struct disk_reading *out)
{
    memset(out, 0, sizeof(*out));
    out->stale = 1;
    if (!w)
        return;
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    pthread_mutex_lock(&w->lock);
    out->known = w->known;
    out->error = w->error;
    if (w->known) {
        out->free_bytes = w->free_bytes;
        out->age_s = (double)(now.tv_sec - w->measured.tv_sec) +
                     (double)(now.tv_nsec - w->measured.tv_nsec) / 1e9;
        if (out->age_s < 0)
            out->age_s = 0;
        out->stale = out->age_s * 1000.0 > w->stale_ms;
    }
    pthread_mutex_unlock(&w->lock);
}

void disk_watch_refresh(struct disk_watch *w)
{
    if (!w)
        return;
    pthread_mutex_lock(&w->lock);
    w->refresh = 1;
    pthread_cond_broadcast(&w->wake);
    pthread_mutex_unlock(&w->lock);
}

void disk_watch_stop(struct disk_watch *w)
{
    if (!w)
        return;
    pthread_mutex_lock(&w->lock);
    w->stopping = 1;
    pthread_cond_broadcast(&w->wake);
    struct timespec until;
    deadline_after_ms(&until, STOP_WAIT_MS);
    while (!w->done && pthread_cond_timedwait(&w->done_cond, &w->lock, &until) != ETIMEDOUT)
        ;
    if (w->done) {
        pthread_mutex_unlock(&w->lock);
        pthread_join(w->thread, NULL);
        watch_free(w);
        return;
    }
    /* The probe is stuck in the kernel: its thread frees the state when it comes back. */
    pthread_detach(w->thread);
    watch_put(w);
}
