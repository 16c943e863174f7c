/*
 * disk_watch: the recordings folder's free space, measured by a thread of its own so that
 * nothing that must answer at once (/api/status on the HTTP event thread, the ticker's
 * `status` events) ever calls statvfs: on a hung disk or NFS mount that call may block for
 * minutes. Readers get the last figure and its age; a figure older than `stale_ms`, or none
 * yet, is marked stale.
 *
 * Threads: disk_watch_get and disk_watch_refresh from any thread (never block on the disk);
 * disk_watch_start / disk_watch_stop from the owner. Ownership: the watch copies `dir`.
 * Stopping never waits for a probe that is stuck in the kernel: such a probe's thread is
 * left to finish (detached) and frees the watch's state itself.
 *
 * Test hook: env PIREC_TEST_DISK_PROBE=block makes every probe block (like a hung mount)
 * until the watch is stopped.
 */
#ifndef PIREC_SERVER_DISK_WATCH_H
#define PIREC_SERVER_DISK_WATCH_H

#include <stdint.h>

struct disk_watch;

/* One measurement: fills *free_bytes; 0 or -errno. May block (it is the probe). */
typedef int (*disk_probe_func)(const char *dir, uint64_t *free_bytes, void *arg);

struct disk_watch_config {
    const char *dir;
    unsigned period_ms;        /* between probes; 0: 2000 */
    unsigned stale_ms;         /* a figure older than this is stale; 0: 3 x period */
    disk_probe_func probe;     /* NULL: statvfs (f_bavail, what an unprivileged writer gets) */
    void *probe_arg;
};

struct disk_reading {
    int known;                 /* a probe has succeeded at least once */
    uint64_t free_bytes;       /* from the last successful probe (0 when !known) */
    double age_s;              /* since that probe ended (0 when !known) */
    int stale;                 /* !known, or older than stale_ms (a probe is stuck or failing) */
    int error;                 /* the last probe's -errno, 0 when it succeeded */
};

/* Starts the thread; its first probe begins at once. 0, -EINVAL, -ENOMEM or -errno. */
int  disk_watch_start(struct disk_watch **out, const struct disk_watch_config *cfg);
/* Waits at most timeout_ms for the first probe to end (so that a status right after the
 * start has a figure, while a hung disk delays the start by no more than that). 1 when it
 * ended, else 0. */
int  disk_watch_wait_first(struct disk_watch *w, unsigned timeout_ms);
/* The last figure; never blocks on the disk. */
void disk_watch_get(struct disk_watch *w, struct disk_reading *out);
/* Asks for a probe now (e.g. after a take was finalized); returns at once. */
void disk_watch_refresh(struct disk_watch *w);
/* Ends the thread (waits at most about 200 ms for a probe in progress); NULL is fine. */
void disk_watch_stop(struct disk_watch *w);

#endif
