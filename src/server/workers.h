/*
 * workers: a small pool of threads that run jobs which may block (on the disk), so that
 * the threads that must stay responsive (the HTTP event loop, the recorder's ticker)
 * never do. Jobs run in submission order on the first free thread.
 *
 * Threads: workers_submit from any thread; workers_stop and workers_destroy from the
 * owner. After workers_stop, submit answers -ESHUTDOWN (the pool still exists); after
 * workers_destroy nothing may touch it. Ownership: a job's arg belongs to the job.
 */
#ifndef PIREC_SERVER_WORKERS_H
#define PIREC_SERVER_WORKERS_H

struct workers;

typedef void (*worker_job_func)(void *arg);

/* threads: 1..16; name: the threads' name prefix (at most 10 characters). */
int  workers_create(struct workers **out, unsigned threads, const char *name);
/* 0, -ENOMEM, or -ESHUTDOWN once workers_destroy has begun (the job did not run). */
int  workers_submit(struct workers *w, worker_job_func fn, void *arg);
/* Jobs waiting or running now. */
unsigned workers_pending(struct workers *w);
/* Refuses new jobs, runs every job already submitted, joins the threads. */
void workers_stop(struct workers *w);
/* workers_stop if not done, then frees. */
void workers_destroy(struct workers *w);

#endif
