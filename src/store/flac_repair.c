/*
 * flac_repair: finalize an unfinished FLAC file; see flac_repair.h. The frames are found
 * by flac_repair_scan.c; here the file is opened safely, then patched, cut or removed.
 *
 * Only regular files are touched, and never through a symbolic link (O_NOFOLLOW): a link
 * named x.flac.part must not lead repair to truncate a file outside the folder.
 */
#include "store/flac_repair.h"

#include "common/log.h"
#include "store/flac_repair_scan.h"
#include "store/flac_writer.h"
#include "store/naming.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int flac_repair_is_part(const char *name)
{
    size_t a = strlen(name), b = strlen(".flac.part");
    return a > b && strcmp(name + a - b, ".flac.part") == 0;
}

/* Opens path for repair: a regular file, never through a symbolic link, and for a .part
 * with no other hard link (pirec never makes one; a link could lead outside the folder). */
static int open_regular(const char *path, int is_part, struct stat *st)
{
    struct stat ls;
    if (fstatat(AT_FDCWD, path, &ls, AT_SYMLINK_NOFOLLOW) < 0)
        return -errno;
    if (S_ISLNK(ls.st_mode))
        return -ELOOP;
    if (S_ISDIR(ls.st_mode))
        return -EISDIR;
    if (!S_ISREG(ls.st_mode))
        return -EINVAL;
    if (is_part && ls.st_nlink > 1)
        return -EMLINK;
    /* O_NONBLOCK: should the name be swapped for a FIFO meanwhile, open does not hang */
    int fd = open(path, O_RDWR | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    if (fstat(fd, st) < 0 || !S_ISREG(st->st_mode) || st->st_dev != ls.st_dev ||
        st->st_ino != ls.st_ino) {
        close(fd);
        return -EAGAIN; /* replaced while being opened */
    }
    return fd;
}

/* Removes the empty take at path if the name still is the file that fd has open. */
static int remove_empty(const char *path, int fd)
{
    struct stat a, b;
    if (fstat(fd, &a) < 0 || fstatat(AT_FDCWD, path, &b, AT_SYMLINK_NOFOLLOW) < 0)
        return -errno;
    if (a.st_dev != b.st_dev || a.st_ino != b.st_ino)
        return -EAGAIN;
    if (unlink(path) < 0)
        return -errno;
    return take_fsync_parent(path);
}

int flac_repair_file(const char *path, struct repair_result *res)
{
    struct repair_result dummy;
    if (!res)
        res = &dummy;
    memset(res, 0, sizeof *res);
    int is_part = flac_repair_is_part(path);
    struct stat st;
    int fd = open_regular(path, is_part, &st);
    if (fd < 0) {
        if (fd == -ELOOP)
            log_warn("repair", "%s: a symbolic link; left as it is", path);
        else if (fd == -EMLINK)
            log_warn("repair", "%s: has other hard links; left as it is", path);
        else if (fd == -EINVAL)
            log_warn("repair", "%s: not a regular file; left as it is", path);
        return fd;
    }
    struct repair_reader r;
    int rc = repair_reader_init(&r, fd, (uint64_t)st.st_size);
    if (rc < 0) {
        close(fd);
        return rc;
    }
    struct repair_stream si;
    struct repair_walk w = {0};
    rc = repair_read_metadata(&r, &si, &w.audio_start);
    if (rc == -ENODATA && !(is_part && repair_header_torn(&r, &si)))
        rc = -EINVAL;
    if (rc == -EINVAL) {
        log_warn("repair", "%s: not a FLAC file (no fLaC/STREAMINFO header)", path);
        goto out;
    }
    if (rc == 0)
        repair_walk_frames(&r, &si, &w);
    if (rc == -ENODATA || (w.frames == 0 && is_part && repair_empty_take(&r, &si, &w))) {
        /* a 0-second file would only clutter the list: the take held no audio */
        if ((rc = remove_empty(path, fd)) == 0) {
            res->removed = 1;
            res->bytes_dropped = r.size;
            log_info("repair", "%s: removed: the take ended before its first audio frame",
                     path);
        }
        goto out;
    }
    if (w.frames == 0) {
        log_warn("repair", "%s: no whole audio frame in the file; left as it is", path);
        rc = -EINVAL;
        goto out;
    }
    uint64_t tail = r.size - w.end;
    if (tail && repair_tail_has_frames(&r, &si, &w)) {
        log_warn("repair", "%s: damaged at byte %llu with audio after it; left as it is",
                 path, (unsigned long long)w.end);
        rc = -EBADMSG;
        goto out;
    }
    res->frames_kept = w.frames;
    res->samples = w.samples;
    res->bytes_dropped = tail;
    unsigned bs = w.frames > 1 ? (w.variable ? w.min_bs : w.first_bs) : w.first_bs;
    unsigned bs_max = w.frames > 1 ? (w.variable ? w.max_bs : w.first_bs) : w.first_bs;
    int complete = tail == 0 && si.total == w.samples;
    if (complete && !is_part && si.min_fs == w.min_fs && si.max_fs == w.max_fs) {
        res->already_ok = 1;
        snprintf(res->final_path, sizeof res->final_path, "%s", path);
        goto out;
    }
    uint8_t info[34];
    /* the MD5 is only trusted when the file was finished (libFLAC wrote it at the end) */
    flac_streaminfo_pack(info, bs, bs_max, w.min_fs, w.max_fs, si.rate, si.channels, si.bits,
                         w.samples, complete ? si.md5 : NULL);
    if (pwrite(fd, info, sizeof info, 8) != (ssize_t)sizeof info) {
        rc = errno ? -errno : -EIO;
        goto out;
    }
    if (tail && ftruncate(fd, (off_t)w.end) < 0) {
        rc = -errno;
        goto out;
    }
    if (fsync(fd) < 0) {
        rc = -errno;
        goto out;
    }
    if (is_part) {
        char final[PATH_MAX];
        size_t l = strlen(path) - strlen(".part");
        if (l >= sizeof final) {
            rc = -ENAMETOOLONG;
            goto out;
        }
        memcpy(final, path, l);
        final[l] = 0;
        if ((rc = take_rename_noreplace(path, final, sizeof final)) < 0)
            goto out;
        snprintf(res->final_path, sizeof res->final_path, "%s", final);
    } else {
        snprintf(res->final_path, sizeof res->final_path, "%s", path);
    }
out:
    repair_reader_free(&r);
    close(fd);
    return rc;
}
