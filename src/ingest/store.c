/* ingest store: see store.h. */
#include "ingest/store.h"
#include "record/wsproto.h"

#include "common/log.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define SYNC_BACKLOG_MAX 256
#define BUF_MAX (64 * 1024)      /* a stream's write buffer at most */
#define DIRECT_MIN (32 * 1024)   /* messages this large skip the buffer */

/* fds waiting for fdatasync+close by the sync thread. */
struct fdvec {
    int *fd;
    size_t n, cap;
};

struct ingest_store {
    pthread_mutex_t lock;        /* the store lock: see store.h */
    int dirfd;
    char dir[512];
    int max_open;
    int open_fds;
    unsigned sync_ms;
    int64_t next_sync_us;
    int64_t fault_left;          /* < 0: no fault injection */
    int dir_dirty;               /* a file was created since the last sync round */

    struct ingest_stream **bucket;
    size_t nbucket, count;
    struct ingest_stream *lru_head, *lru_tail;
    struct ingest_stream *all;

    pthread_t sync_thread;
    int sync_started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct fdvec pending;        /* guarded by mu */
    int pending_syncfs;          /* guarded by mu: one syncfs covers every pending fd */
    int stopping;                /* guarded by mu */
};

/* Above this many dirty files a sync round is one syncfs() on the store's filesystem instead
 * of an fdatasync() per file: on ext4 each fdatasync of a grown file is a journal commit,
 * and thousands of them every round kept the service threads' writes waiting for the
 * journal (3000 real-time streams: stalls of 0.5 s, chunks dropped). */
#define SYNCFS_MIN_FILES 16

static int64_t now_mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static uint64_t hash_name(const char *p, size_t n)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)p[i];
        h *= 1099511628211ull;
    }
    return h;
}

static int fdvec_push(struct fdvec *v, int fd)
{
    if (v->n == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 64;
        int *p = realloc(v->fd, cap * sizeof *p);
        if (!p)
            return -ENOMEM;
        v->fd = p;
        v->cap = cap;
    }
    v->fd[v->n++] = fd;
    return 0;
}

void ingest_store_lock(struct ingest_store *st) { pthread_mutex_lock(&st->lock); }
void ingest_store_unlock(struct ingest_store *st) { pthread_mutex_unlock(&st->lock); }

static void *sync_main(void *arg)
{
    struct ingest_store *st = arg;
    struct fdvec work = {0};
    pthread_mutex_lock(&st->mu);
    for (;;) {
        while (!st->pending.n && !st->stopping)
            pthread_cond_wait(&st->cv, &st->mu);
        if (!st->pending.n && st->stopping)
            break;
        struct fdvec t = st->pending;
        int whole_fs = st->pending_syncfs;
        st->pending = work;
        st->pending_syncfs = 0;
        work = t;
        pthread_mutex_unlock(&st->mu);
        /* Every pending fd is a file of the store's folder, so on its filesystem. */
        if (whole_fs && work.n && syncfs(work.fd[0]) < 0)
            log_err("ingest", "syncfs failed: %s (data written since the last sync may not "
                    "be on disk)", strerror(errno));
        for (size_t i = 0; i < work.n; i++) {
            if (whole_fs) {
                close(work.fd[i]);
                continue;
            }
            if (fdatasync(work.fd[i]) < 0 && errno != EINVAL && errno != EROFS)
                log_err("ingest", "fdatasync failed: %s (data written since the last sync "
                        "may not be on disk)", strerror(errno));
            close(work.fd[i]);
        }
        work.n = 0;
        pthread_mutex_lock(&st->mu);
    }
    pthread_mutex_unlock(&st->mu);
    free(work.fd);
    return NULL;
}

/* Gives fd to the sync thread, which fdatasyncs and closes it. Falls back to doing it
 * here if memory is short. */
static void sync_give(struct ingest_store *st, int fd)
{
    pthread_mutex_lock(&st->mu);
    int rc = st->sync_started ? fdvec_push(&st->pending, fd) : -ENOSYS;
    if (rc == 0)
        pthread_cond_signal(&st->cv);
    pthread_mutex_unlock(&st->mu);
    if (rc < 0) {
        fdatasync(fd);
        close(fd);
    }
}

int ingest_store_open(struct ingest_store **out, const struct ingest_store_config *cfg,
                      char *err, size_t errlen)
{
    *out = NULL;
    const char *dir = cfg->dir && *cfg->dir ? cfg->dir : ".";
    if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
        snprintf(err, errlen, "cannot create directory %s: %s", dir, strerror(errno));
        return -errno;
    }
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) {
        int e = errno;
        snprintf(err, errlen, "cannot open directory %s: %s", dir, strerror(e));
        return -e;
    }
    /* Writable for real, not just by mode bits (read-only mounts, root on NFS). */
    char probe[64];
    snprintf(probe, sizeof probe, ".pirec-ingest-probe.%ld", (long)getpid());
    int pfd = openat(dfd, probe, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (pfd < 0) {
        int e = errno;
        snprintf(err, errlen, "directory %s is not writable: %s", dir, strerror(e));
        close(dfd);
        return -e;
    }
    close(pfd);
    unlinkat(dfd, probe, 0);

    struct ingest_store *st = calloc(1, sizeof *st);
    if (!st) {
        close(dfd);
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    st->dirfd = dfd;
    snprintf(st->dir, sizeof st->dir, "%s", dir);
    st->max_open = cfg->max_open > 0 ? cfg->max_open : 1024;
    st->sync_ms = cfg->sync_ms;
    st->fault_left = cfg->fault_enospc_after;
    st->nbucket = 256;
    st->bucket = calloc(st->nbucket, sizeof *st->bucket);
    pthread_mutex_init(&st->mu, NULL);
    pthread_mutex_init(&st->lock, NULL);
    pthread_cond_init(&st->cv, NULL);
    if (!st->bucket) {
        ingest_store_close(st);
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    int rc = pthread_create(&st->sync_thread, NULL, sync_main, st);
    if (rc) {
        ingest_store_close(st);
        snprintf(err, errlen, "cannot start the sync thread: %s", strerror(rc));
        return -rc;
    }
    st->sync_started = 1;
    *out = st;
    return 0;
}

static void lru_unlink(struct ingest_store *st, struct ingest_stream *s)
{
    if (s->lru_prev)
        s->lru_prev->lru_next = s->lru_next;
    else
        st->lru_head = s->lru_next;
    if (s->lru_next)
        s->lru_next->lru_prev = s->lru_prev;
    else
        st->lru_tail = s->lru_prev;
    s->lru_prev = s->lru_next = NULL;
}

static void lru_push_front(struct ingest_store *st, struct ingest_stream *s)
{
    s->lru_prev = NULL;
    s->lru_next = st->lru_head;
    if (st->lru_head)
        st->lru_head->lru_prev = s;
    st->lru_head = s;
    if (!st->lru_tail)
        st->lru_tail = s;
}

/* Closes s's fd; a dirty one goes to the sync thread so its data is synced first, unless
 * that thread is already far behind (LRU thrashing on a slow disk would pile up fds without
 * bound): then the kernel's own writeback has to do. */
static int flush_buf(struct ingest_store *st, struct ingest_stream *s);

static void stream_close_fd(struct ingest_store *st, struct ingest_stream *s)
{
    if (s->fd < 0)
        return;
    int rc = flush_buf(st, s);
    if (rc < 0 && !s->failed)
        s->failed = rc;
    lru_unlink(st, s);
    pthread_mutex_lock(&st->mu);
    size_t backlog = st->pending.n;
    pthread_mutex_unlock(&st->mu);
    if (s->dirty && backlog < SYNC_BACKLOG_MAX)
        sync_give(st, s->fd);
    else
        close(s->fd);
    s->fd = -1;
    s->dirty = 0;
    st->open_fds--;
}

static int stream_open_fd(struct ingest_store *st, struct ingest_stream *s)
{
    if (s->fd >= 0) {
        if (st->lru_head != s) {
            lru_unlink(st, s);
            lru_push_front(st, s);
        }
        return 0;
    }
    while (st->open_fds >= st->max_open && st->lru_tail)
        stream_close_fd(st, st->lru_tail);
    /* O_NONBLOCK: opening a FIFO someone planted must not hang the server. */
    int fd = openat(st->dirfd, s->name,
                    O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK, 0644);
    if (fd < 0)
        return errno == ENXIO ? -EINVAL : -errno; /* ENXIO: a FIFO nobody reads */
    struct stat sb;
    if (fstat(fd, &sb) < 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    if (!S_ISREG(sb.st_mode)) {
        close(fd);
        return -EINVAL;
    }
    s->size = s->flushed = (uint64_t)sb.st_size;
    s->fd = fd;
    st->open_fds++;
    lru_push_front(st, s);
    return 0;
}

struct ingest_stream *ingest_store_find(struct ingest_store *st, const char *name, size_t len)
{
    uint64_t h = hash_name(name, len);
    for (struct ingest_stream *s = st->bucket[h & (st->nbucket - 1)]; s; s = s->hnext)
        if (s->name_len == len && !memcmp(s->name, name, len))
            return s;
    return NULL;
}

static void grow_table(struct ingest_store *st)
{
    size_t n = st->nbucket * 2;
    struct ingest_stream **b = calloc(n, sizeof *b);
    if (!b)
        return; /* longer chains, still correct */
    for (size_t i = 0; i < st->nbucket; i++) {
        struct ingest_stream *s = st->bucket[i];
        while (s) {
            struct ingest_stream *next = s->hnext;
            size_t j = hash_name(s->name, s->name_len) & (n - 1);
            s->hnext = b[j];
            b[j] = s;
            s = next;
        }
    }
    free(st->bucket);
    st->bucket = b;
    st->nbucket = n;
}

int ingest_store_get(struct ingest_store *st, const char *name, size_t len,
                     struct ingest_stream **out)
{
    *out = NULL;
    if (len == 0 || len >= sizeof((struct ingest_stream *)0)->name)
        return -ENAMETOOLONG;
    struct ingest_stream *s = ingest_store_find(st, name, len);
    if (s) {
        *out = s;
        return 0;
    }
    s = calloc(1, sizeof *s);
    if (!s)
        return -ENOMEM;
    memcpy(s->name, name, len);
    s->name[len] = '\0';
    s->name_len = len;
    wsproto_name_escape(name, len, s->shown, sizeof s->shown);
    s->fd = -1;
    int rc = stream_open_fd(st, s);
    if (rc < 0) {
        free(s);
        return rc;
    }
    st->dir_dirty = 1; /* the file may be new: its directory entry needs a sync too */
    if (st->count + 1 > st->nbucket)
        grow_table(st);
    size_t b = hash_name(name, len) & (st->nbucket - 1);
    s->hnext = st->bucket[b];
    st->bucket[b] = s;
    s->all_next = st->all;
    if (st->all)
        st->all->all_prev = s;
    st->all = s;
    st->count++;
    *out = s;
    return 0;
}

/* Writes iov (buffer and/or message) at the end of s's file, all or nothing: on failure
 * the file is truncated back to s->flushed. */
static int write_all(struct ingest_store *st, struct ingest_stream *s, struct iovec *iov,
                     int iovcnt)
{
    size_t total = 0, done = 0;
    for (int i = 0; i < iovcnt; i++)
        total += iov[i].iov_len;
    int rc = 0;
    while (done < total) {
        ssize_t w;
        if (st->fault_left >= 0) {   /* the test hook: a disk that fills after N bytes */
            if (st->fault_left == 0) {
                rc = -ENOSPC;
                break;
            }
            size_t n = iov[0].iov_len;
            if ((int64_t)n > st->fault_left)
                n = (size_t)st->fault_left;
            w = write(s->fd, iov[0].iov_base, n);
            if (w > 0)
                st->fault_left -= w;
        } else {
            w = writev(s->fd, iov, iovcnt);
        }
        if (w < 0) {
            if (errno == EINTR)
                continue;
            rc = -errno;
            break;
        }
        if (w == 0) {
            rc = -EIO;
            break;
        }
        done += (size_t)w;
        while (iovcnt && (size_t)w >= iov[0].iov_len) {
            w -= (ssize_t)iov[0].iov_len;
            iov++;
            iovcnt--;
        }
        if (iovcnt) {
            iov[0].iov_base = (char *)iov[0].iov_base + w;
            iov[0].iov_len -= (size_t)w;
        }
    }
    s->dirty = 1;
    if (rc == 0) {
        s->flushed += total;
        return 0;
    }
    /* Leave no part of these messages behind: the file ends at a message boundary. */
    if (st->fault_left >= 0)
        st->fault_left += (int64_t)done; /* the hook's "disk" gets the space back too */
    if (done && ftruncate(s->fd, (off_t)s->flushed) < 0) {
        int e = errno;
        log_err("ingest", "stream '%s': cannot truncate back to %llu bytes after a failed "
                "write: %s (the file now ends with %zu bytes of an incomplete message)",
                s->shown, (unsigned long long)s->flushed, strerror(e), done);
    }
    return rc;
}

/* Writes the buffer; on failure its messages are dropped and size falls back. */
static int flush_buf(struct ingest_store *st, struct ingest_stream *s)
{
    if (!s->wlen)
        return 0;
    struct iovec iov = {s->wbuf, s->wlen};
    int rc = write_all(st, s, &iov, 1);
    s->wlen = 0;
    if (rc < 0)
        s->size = s->flushed;
    return rc;
}

int ingest_store_flush(struct ingest_store *st, struct ingest_stream *s)
{
    if (!s->wlen)
        return 0;
    int rc = stream_open_fd(st, s);
    if (rc < 0)
        return rc;
    return flush_buf(st, s);
}

void ingest_store_flush_old(struct ingest_store *st, int64_t now_us, int64_t max_age_us)
{
    /* A resume owner's thread flushes its streams before each ack (ACK_US apart); flushing
     * them here too would put every stream's write on loop 0, under the store lock. */
    for (struct ingest_stream *s = st->lru_head; s; s = s->lru_next)
        if (s->wlen && !s->owner_flushes && now_us - s->wsince_us >= max_age_us) {
            int rc = flush_buf(st, s);
            if (rc < 0 && !s->failed)
                s->failed = rc;
        }
}

int ingest_store_append(struct ingest_store *st, struct ingest_stream *s, const void *data,
                        size_t len)
{
    if (len == 0)
        return 0;
    if (s->failed)
        return s->failed;
    int rc = stream_open_fd(st, s);
    if (rc < 0)
        return rc;
    if (len < DIRECT_MIN && s->wlen + len <= BUF_MAX) {
        if (s->wlen + len > s->wcap) {
            size_t cap = s->wcap ? s->wcap : 4096;
            while (cap < s->wlen + len)
                cap *= 2;
            unsigned char *nb = realloc(s->wbuf, cap);
            if (nb) {
                s->wbuf = nb;
                s->wcap = cap;
            }
        }
        if (s->wlen + len <= s->wcap) {
            if (!s->wlen)
                s->wsince_us = now_mono_us();
            memcpy(s->wbuf + s->wlen, data, len);
            s->wlen += len;
            goto done;
        }
    }
    /* Buffer full, message large, or no memory: buffer and message in one writev. */
    struct iovec iov[2] = {{s->wbuf, s->wlen}, {(void *)data, len}};
    int first = s->wlen ? 0 : 1;
    rc = write_all(st, s, iov + first, 2 - first);
    s->wlen = 0;
    if (rc < 0) {
        s->size = s->flushed;
        return rc;
    }
done:
    s->size += len;
    s->received += len;
    s->messages++;
    return 0;
}

int ingest_store_loss(struct ingest_store *st, struct ingest_stream *s, uint64_t at,
                      uint64_t bytes, const char *who)
{
    char path[300];
    int n = snprintf(path, sizeof path, "%s.losses", s->name);
    if (n < 0 || n > 255)
        return -ENAMETOOLONG;
    int fd = openat(st->dirfd, path,
                    O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK, 0644);
    if (fd < 0)
        return -errno;
    struct stat sb;
    if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return -EINVAL;
    }
    char when[40];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
    char line[256];
    int len = snprintf(line, sizeof line, "%s at=%llu bytes=%llu from=%s\n", when,
                       (unsigned long long)at, (unsigned long long)bytes, who ? who : "-");
    if (len < 0 || (size_t)len >= sizeof line)
        len = (int)strlen(line);
    int rc = 0;
    ssize_t w = write(fd, line, (size_t)len);
    if (w < 0)
        rc = -errno;
    else if (w != len) {
        rc = -ENOSPC;
        if (ftruncate(fd, sb.st_size) < 0) /* no half line; if even that fails, say why */
            rc = -errno;
    }
    sync_give(st, fd);
    return rc;
}

void ingest_store_release(struct ingest_store *st, struct ingest_stream *s)
{
    if (s->wlen && stream_open_fd(st, s) == 0) {
        int rc = flush_buf(st, s);
        if (rc < 0)
            log_err("ingest", "stream '%s': writing its last %s failed: %s; the file keeps "
                    "its %llu bytes of complete messages", s->shown, "messages",
                    strerror(-rc), (unsigned long long)s->flushed);
    }
    stream_close_fd(st, s);
    uint64_t h = hash_name(s->name, s->name_len);
    struct ingest_stream **pp = &st->bucket[h & (st->nbucket - 1)];
    while (*pp && *pp != s)
        pp = &(*pp)->hnext;
    if (*pp)
        *pp = s->hnext;
    if (s->all_prev)
        s->all_prev->all_next = s->all_next;
    else
        st->all = s->all_next;
    if (s->all_next)
        s->all_next->all_prev = s->all_prev;
    st->count--;
    free(s->wbuf);
    free(s);
}

void ingest_store_tick(struct ingest_store *st, int64_t now_us)
{
    if (!st->sync_ms || now_us < st->next_sync_us)
        return;
    st->next_sync_us = now_us + (int64_t)st->sync_ms * 1000;
    pthread_mutex_lock(&st->mu);
    int busy = st->pending.n > 0; /* last round not done yet: the disk is slow, wait */
    pthread_mutex_unlock(&st->mu);
    if (busy)
        return;
    size_t ndirty = 0;
    for (struct ingest_stream *s = st->lru_head; s && ndirty < SYNCFS_MIN_FILES; s = s->lru_next)
        ndirty += s->dirty != 0;
    if (ndirty >= SYNCFS_MIN_FILES) {
        int d = fcntl(st->dirfd, F_DUPFD_CLOEXEC, 0);
        if (d >= 0) {
            for (struct ingest_stream *s = st->lru_head; s; s = s->lru_next)
                s->dirty = 0;
            st->dir_dirty = 0;
            pthread_mutex_lock(&st->mu);
            int rc = fdvec_push(&st->pending, d);
            if (rc == 0) {
                st->pending_syncfs = 1;
                pthread_cond_signal(&st->cv);
            }
            pthread_mutex_unlock(&st->mu);
            if (rc == 0)
                return;
            close(d); /* no memory: per-file rounds below */
            st->dir_dirty = 1;
            for (struct ingest_stream *s = st->lru_head; s; s = s->lru_next)
                s->dirty = s->fd >= 0;
        }
    }
    for (struct ingest_stream *s = st->lru_head; s; s = s->lru_next) {
        if (!s->dirty)
            continue;
        int d = fcntl(s->fd, F_DUPFD_CLOEXEC, 0);
        if (d < 0)
            break; /* out of fds: try again next round */
        s->dirty = 0;
        sync_give(st, d);
    }
    if (st->dir_dirty) {
        int d = fcntl(st->dirfd, F_DUPFD_CLOEXEC, 0);
        if (d >= 0) {
            st->dir_dirty = 0;
            sync_give(st, d);
        }
    }
}

size_t ingest_store_count(const struct ingest_store *st) { return st->count; }
int ingest_store_open_fds(const struct ingest_store *st) { return st->open_fds; }

void ingest_store_foreach(struct ingest_store *st, void (*f)(struct ingest_stream *, void *),
                          void *arg)
{
    for (struct ingest_stream *s = st->all; s; s = s->all_next)
        f(s, arg);
}

void ingest_store_close(struct ingest_store *st)
{
    if (!st)
        return;
    while (st->all) {
        struct ingest_stream *s = st->all;
        if (s->fd >= 0) {
            if (flush_buf(st, s) < 0)
                log_err("ingest", "stream '%s': writing its last messages failed at exit; "
                        "the file keeps %llu bytes", s->shown, (unsigned long long)s->flushed);
            if (s->dirty && fsync(s->fd) < 0)
                log_err("ingest", "stream '%s': fsync failed: %s", s->shown, strerror(errno));
            lru_unlink(st, s);
            close(s->fd);
            s->fd = -1;
            st->open_fds--;
        }
        ingest_store_release(st, s);
    }
    if (st->sync_started) {
        pthread_mutex_lock(&st->mu);
        st->stopping = 1;
        pthread_cond_signal(&st->cv);
        pthread_mutex_unlock(&st->mu);
        pthread_join(st->sync_thread, NULL); /* drains what is pending first */
    }
    if (st->dirfd >= 0) {
        fsync(st->dirfd);
        close(st->dirfd);
    }
    free(st->pending.fd);
    free(st->bucket);
    pthread_mutex_destroy(&st->mu);
    pthread_mutex_destroy(&st->lock);
    pthread_cond_destroy(&st->cv);
    free(st);
}
