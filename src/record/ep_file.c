/*
 * ep_file: file:// (and sdbuffer://handle=) as a source, file:// as a sink.
 *
 * A file sink is created or truncated, like `cp`: after a run the file holds exactly the
 * bytes of that run. It is fsync()ed at close, and a failed sync or close fails the
 * handle, so a file that may not be on disk is never reported as finished.
 *
 * A source that is not a regular file (a FIFO, /dev/stdin) can block in read() for ever;
 * it is polled in short slices instead, so that record_stop() can end the run.
 */
#include "record/endpoint.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"

static int file_open(struct rec_ep *ep)
{
    const char *path = ep->url->path;
    int flags = ep->is_source ? O_RDONLY : O_WRONLY | O_CREAT | O_TRUNC;
    int fd = open(path, flags | O_CLOEXEC, 0644);
    if (fd < 0) {
        int e = errno;
        log_err("record", "cannot open %s file \"%s\": %s", ep->is_source ? "source" : "sink",
                path, strerror(e));
        return -e;
    }
    struct stat st;
    if (fstat(fd, &st) < 0)
        st.st_mode = 0; /* unknown kind: treated as one that may block */
    if (S_ISDIR(st.st_mode)) {
        log_err("record", "\"%s\" is a directory, not a file", path);
        close(fd);
        return -EISDIR;
    }
    ep->fd = fd;
    ep->finite = ep->is_source;
    ep->poll_read = ep->is_source && !S_ISREG(st.st_mode);
    return 0;
}

static ssize_t file_read(struct rec_ep *ep, void *buf, size_t len)
{
    if (ep->poll_read) {
        struct pollfd pfd = {.fd = ep->fd, .events = POLLIN};
        int n = poll(&pfd, 1, 100);
        if (n == 0 || (n < 0 && errno == EINTR))
            return 0; /* nothing now; the worker checks for a stop and comes back */
    }
    for (;;) {
        ssize_t n = read(ep->fd, buf, len);
        if (n > 0)
            return n;
        if (n == 0) {
            ep->eof = 1;
            return 0;
        }
        if (errno == EINTR)
            continue;
        int e = errno;
        log_err("record", "reading \"%s\": %s", ep->url->path, strerror(e));
        return -e;
    }
}

static int file_write(struct rec_ep *ep, const void *buf, size_t len, size_t *done)
{
    const uint8_t *p = buf;
    *done = 0;
    while (*done < len) {
        ssize_t n = write(ep->fd, p + *done, len - *done);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            int e = errno;
            log_err("record", "writing \"%s\": %s", ep->url->path, strerror(e));
            return -e;
        }
        *done += (size_t)n;
    }
    return 0;
}

static int file_close(struct rec_ep *ep)
{
    int rc = 0;
    if (ep->fd < 0)
        return 0;
    /* EINVAL/EROFS: /dev/null, a pipe or a read-only mount cannot be synced; not an error. */
    if (!ep->is_source && fsync(ep->fd) < 0 && errno != EINVAL && errno != EROFS) {
        rc = -errno;
        log_err("record", "syncing \"%s\": %s", ep->url->path, strerror(-rc));
    }
    if (close(ep->fd) < 0 && !rc && !ep->is_source) {
        rc = -errno;
        log_err("record", "closing \"%s\": %s", ep->url->path, strerror(-rc));
    }
    ep->fd = -1;
    return rc;
}

const struct rec_ep_ops rec_ep_file_ops = {
    .open = file_open,
    .read = file_read,
    .write = file_write,
    .close = file_close,
};
