/* naming: take file names, mkdir -p, rename without overwrite; see naming.h. */
#include "store/naming.h"
#include "common/fsutil.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int safe_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '.' || c == '_' || c == '-';
}

/* Appends n bytes to out (cap bytes, *len used): -ENAMETOOLONG when they do not fit. */
static int append(char *out, size_t cap, size_t *len, const char *s, size_t n)
{
    if (*len + n + 1 > cap)
        return -ENAMETOOLONG;
    memcpy(out + *len, s, n);
    *len += n;
    out[*len] = 0;
    return 0;
}

int take_name_expand(char *out, size_t n, const char *pattern, const char *device_id,
                     const struct timespec *t)
{
    if (!pattern || !*pattern)
        pattern = TAKE_DEFAULT_PATTERN;
    if (!device_id || !*device_id)
        device_id = "pirec";
    if (n == 0)
        return -ENAMETOOLONG;
    struct tm tm;
    time_t sec = t->tv_sec;
    if (!localtime_r(&sec, &tm))
        return -EINVAL;
    /* Each conversion is expanded on its own, so that what a conversion produces can be
     * told from what the pattern says: a '/' from %x ("12/01/26") or strftime's %D must
     * not make sub-folders (the take would never be listed, downloaded or repaired). %D
     * is ours (the device id), not strftime's. */
    size_t len = 0;
    out[0] = 0;
    for (const char *s = pattern; *s;) {
        int rc;
        if (s[0] != '%') {
            rc = append(out, n, &len, s, 1);
            s++;
        } else if (s[1] == '%') {
            rc = append(out, n, &len, "%", 1);
            s += 2;
        } else if (s[1] == 'D') {
            rc = 0;
            for (const char *d = device_id; *d && rc == 0; d++) {
                char c = safe_char(*d) ? *d : '_';
                rc = append(out, n, &len, &c, 1);
            }
            s += 2;
        } else {
            /* '%' [flags] [width] [E|O] conversion (glibc's strftime grammar) */
            size_t k = 1;
            while (s[k] && strchr("_-0^#", s[k]))
                k++;
            while (s[k] >= '0' && s[k] <= '9')
                k++;
            if (s[k] == 'E' || s[k] == 'O')
                k++;
            if (!s[k])
                return -EINVAL;   /* a pattern ending in the middle of a conversion */
            char spec[32], piece[256];
            if (k + 2 > sizeof spec)
                return -EINVAL;
            memcpy(spec, s, k + 1);
            spec[k + 1] = 0;
            size_t pl = strftime(piece, sizeof piece, spec, &tm);
            for (size_t i = 0; i < pl; i++)
                if (piece[i] == '/')
                    piece[i] = '-';
            rc = append(out, n, &len, piece, pl);
            s += k + 1;
        }
        if (rc < 0)
            return rc;
    }
    if (len == 0)
        return -EINVAL;
    /* a pattern must not climb out of the recordings folder */
    if (out[0] == '/' || !strcmp(out, "..") || !strncmp(out, "../", 3) ||
        strstr(out, "/../") || (len >= 3 && !strcmp(out + len - 3, "/..")))
        return -EINVAL;
    return 0;
}

void take_iso_time(char *out, size_t n, const struct timespec *t)
{
    struct tm tm;
    time_t sec = t->tv_sec;
    localtime_r(&sec, &tm);
    char base[64], off[8];
    strftime(base, sizeof base, "%Y-%m-%dT%H:%M:%S", &tm);
    strftime(off, sizeof off, "%z", &tm);
    /* %z gives +0100; ISO-8601 extended format wants +01:00 */
    if (strlen(off) == 5)
        snprintf(out, n, "%s%.3s:%s", base, off, off + 3);
    else
        snprintf(out, n, "%s%s", base, off);
}

void take_utc_time_ms(char *out, size_t n, int64_t realtime_ns)
{
    time_t sec = (time_t)(realtime_ns / 1000000000LL);
    struct tm tm;
    gmtime_r(&sec, &tm);
    char base[40];
    strftime(base, sizeof base, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out, n, "%s.%03dZ", base, (int)(realtime_ns % 1000000000LL / 1000000));
}

int take_mkdir_p(const char *dir)
{
    return dir[0] ? fs_mkdir_p(dir, 0755) : 0;
}

int take_name_suffix(char *out, size_t n, const char *path, unsigned k)
{
    int r;
    if (k == 0) {
        r = snprintf(out, n, "%s", path);
    } else {
        const char *slash = strrchr(path, '/');
        const char *dot = strrchr(slash ? slash + 1 : path, '.');
        if (!dot || dot == (slash ? slash + 1 : path))
            r = snprintf(out, n, "%s-%u", path, k);
        else
            r = snprintf(out, n, "%.*s-%u%s", (int)(dot - path), path, k, dot);
    }
    return (r < 0 || (size_t)r >= n) ? -ENAMETOOLONG : 0;
}

int take_fsync_parent(const char *path)
{
    char dir[PATH_MAX];
    const char *slash = strrchr(path, '/');
    if (!slash)
        snprintf(dir, sizeof dir, ".");
    else if (slash == path)
        snprintf(dir, sizeof dir, "/");
    else if ((size_t)(slash - path) < sizeof dir)
        snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
    else
        return -ENAMETOOLONG;
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int rc = fsync(fd) < 0 ? -errno : 0;
    close(fd);
    return rc;
}

static int rename_once(const char *from, const char *to)
{
    if (renameat2(AT_FDCWD, from, AT_FDCWD, to, RENAME_NOREPLACE) == 0)
        return 0;
    if (errno != EINVAL && errno != ENOSYS)
        return -errno;
    /* file systems without RENAME_NOREPLACE: link() also refuses an existing target */
    if (link(from, to) < 0)
        return -errno;
    if (unlink(from) < 0)
        return -errno;
    return 0;
}

int take_rename_noreplace(const char *from, char *to, size_t n)
{
    char base[PATH_MAX], cand[PATH_MAX];
    if (strlen(to) >= sizeof base)
        return -ENAMETOOLONG;
    strcpy(base, to);
    for (unsigned k = 0; k < 10000; k++) {
        int rc = take_name_suffix(cand, sizeof cand, base, k);
        if (rc < 0)
            return rc;
        /* a sibling "<cand>.part" belongs to another take still being written */
        char part[PATH_MAX + 8];
        snprintf(part, sizeof part, "%s.part", cand);
        if (k > 0 && strcmp(part, from) != 0 && access(part, F_OK) == 0)
            continue;
        rc = rename_once(from, cand);
        if (rc == -EEXIST)
            continue;
        if (rc < 0)
            return rc;
        if (strlen(cand) >= n)
            return -ENAMETOOLONG;
        strcpy(to, cand);
        return take_fsync_parent(cand);
    }
    return -EEXIST;
}
