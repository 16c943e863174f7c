/* workers: a FIFO of jobs and a few threads. See workers.h. */
#include "server/workers.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#define MAX_THREADS 16

struct job {
    struct job *next;
    worker_job_func fn;
    void *arg;
};

struct workers {
    pthread_mutex_t lock;
    pthread_cond_t more;
    struct job *head, *tail;
    unsigned pending;          /* queued + running */
    int stopping;
    unsigned n;
    pthread_t th[MAX_THREADS];
};

static void *worker_main(void *arg)
{
    struct workers *w = arg;
    pthread_mutex_lock(&w->lock);
    for (;;) {
        while (!w->head && !w->stopping)
            pthread_cond_wait(&w->more, &w->lock);
        struct job *j = w->head;
        if (!j)
            break;      /* stopping and drained */
        w->head = j->next;
        if (!w->head)
            w->tail = NULL;
        pthread_mutex_unlock(&w->lock);
        j->fn(j->arg);
        free(j);
        pthread_mutex_lock(&w->lock);
        w->pending--;
    }
    pthread_mutex_unlock(&w->lock);
    return NULL;
}

int workers_create(struct workers **out, unsigned threads, const char *name)
{
    if (!out || threads == 0 || threads > MAX_THREADS)
        return -EINVAL;
    struct workers *w = calloc(1, sizeof(*w));
    if (!w)
        return -ENOMEM;
    pthread_mutex_init(&w->lock, NULL);
    pthread_cond_init(&w->more, NULL);
    for (unsigned i = 0; i < threads; i++) {
        int rc = pthread_create(&w->th[i], NULL, worker_main, w);
        if (rc) {
            workers_destroy(w);
            return -rc;
        }
        char tn[16];
        snprintf(tn, sizeof(tn), "%.10s-%u", name ? name : "worker", i);
        pthread_setname_np(w->th[i], tn);
        w->n++;
    }
    *out = w;
    return 0;
}

int workers_submit(struct workers *w, worker_job_func fn, void *arg)
{
    struct job *j = malloc(sizeof(*j));
    if (!j)
        return -ENOMEM;
    j->next = NULL;
    j->fn = fn;
    j->arg = arg;
    pthread_mutex_lock(&w->lock);
    if (w->stopping) {
        pthread_mutex_unlock(&w->lock);
        free(j);
        return -ESHUTDOWN;
    }
    if (w->tail)
        w->tail->next = j;
    else
        w->head = j;
    w->tail = j;
    w->pending++;
    pthread_cond_signal(&w->more);
    pthread_mutex_unlock(&w->lock);
    return 0;
}

unsigned workers_pending(struct workers *w)
{
    pthread_mutex_lock(&w->lock);
    unsigned n = w->pending;
    pthread_mutex_unlock(&w->lock);
    return n;
}

void workers_stop(struct workers *w)
{
    if (!w)
        return;
    pthread_mutex_lock(&w->lock);
    w->stopping = 1;
    pthread_cond_broadcast(&w->more);
    pthread_mutex_unlock(&w->lock);
    for (unsigned i = 0; i < w->n; i++)
        pthread_join(w->th[i], NULL);
    w->n = 0;
}

void workers_destroy(struct workers *w)
{
    if (!w)
        return;
    workers_stop(w);
    pthread_cond_destroy(&w->more);
    pthread_mutex_destroy(&w->lock);
    free(w);
}
