/*
 * library: the recordings directory as the API sees it: list (with each file's format,
 * length and tags), open for download, delete. Names are plain (no '/', no leading '.',
 * ending in .flac) and files are opened with openat + O_NOFOLLOW inside the directory.
 * Everything here reads the disk: callers keep it off threads that must stay responsive.
 */
#include "server/recorder_internal.h"

#include "common/log.h"
#include "server/api_events.h"
#include "store/naming.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <FLAC/metadata.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

/* Plain names only: no '/', no leading '.', printable, ending in .flac. */
static int valid_recording_name(const char *name)
{
    size_t n = name ? strlen(name) : 0;
    if (n < 6 || n > 255 || name[0] == '.' || strcmp(name + n - 5, ".flac") != 0)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (name[i] == '/' || (unsigned char)name[i] < 0x20 || name[i] == 0x7f)
            return 0;
    return 1;
}

static int open_dir(struct recorder *r)
{
    return open(r->cfg->recordings, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
}

static void comment_value(const FLAC__StreamMetadata *tags, const char *key, char *out, size_t n)
{
    out[0] = 0;
    if (!tags)
        return;
    size_t kl = strlen(key);
    for (unsigned i = 0; i < tags->data.vorbis_comment.num_comments; i++) {
        const FLAC__StreamMetadata_VorbisComment_Entry *e = &tags->data.vorbis_comment.comments[i];
        if (e->length > kl && strncasecmp((const char *)e->entry, key, kl) == 0 &&
            e->entry[kl] == '=') {
            snprintf(out, n, "%.*s", (int)(e->length - kl - 1), (const char *)e->entry + kl + 1);
            break;
        }
    }
}

static void describe_file(const char *dir, const char *fname, const struct stat *st,
                          struct recording_info *o)
{
    memset(o, 0, sizeof(*o));
    size_t n = strlen(fname);
    o->complete = !(n > 5 && strcmp(fname + n - 5, ".part") == 0);
    char path[4096 + 300];
    snprintf(path, sizeof(path), "%s/%s", dir, fname);
    snprintf(o->name, sizeof(o->name), "%.*s", (int)(o->complete ? n : n - 5), fname);

    FLAC__StreamMetadata si;
    /* A .part has its STREAMINFO refreshed every flush; it may also not be readable yet. */
    if (FLAC__metadata_get_streaminfo(path, &si)) {
        o->rate = si.data.stream_info.sample_rate;
        o->channels = si.data.stream_info.channels;
        o->bits = si.data.stream_info.bits_per_sample;
        if (o->rate)
            o->seconds = (double)si.data.stream_info.total_samples / o->rate;
    }
    FLAC__StreamMetadata *tags = NULL;
    if (!FLAC__metadata_get_tags(path, &tags))
        tags = NULL;
    comment_value(tags, "DEVICE", o->device, sizeof(o->device));
    comment_value(tags, "DATE", o->started, sizeof(o->started));
    if (tags)
        FLAC__metadata_object_delete(tags);
    if (!o->started[0]) {
        struct timespec ts = {st->st_mtime - (time_t)o->seconds, 0};
        take_iso_time(o->started, sizeof(o->started), &ts);
    }
    o->bytes = (uint64_t)st->st_size;
    char peaks[4096 + 310];
    snprintf(peaks, sizeof(peaks), "%s/%s.peaks", dir, o->name);
    o->peaks = access(peaks, F_OK) == 0;
}

int recorder_read_peaks(struct recorder *r, const char *name, uint8_t **data, size_t *len,
                        unsigned *channels, int *complete)
{
    if (!valid_recording_name(name))
        return -EINVAL;
    struct recording_info info;
    int rc = library_describe(r, name, &info);
    if (rc < 0) {   /* a take being written: its .part */
        char part[300];
        snprintf(part, sizeof(part), "%s.part", name);
        rc = library_describe(r, part, &info);
    }
    if (rc < 0 || info.channels == 0)
        return -ENOENT;
    rc = peaks_read(r->cfg->recordings, name, data, len);
    if (rc < 0)
        return rc == -ENOENT || rc == -ELOOP ? -ENOENT : rc;
    *channels = info.channels;
    *complete = info.complete;
    *len -= *len % info.channels;
    return 0;
}

struct sort_entry {
    double key;        /* start time: newest first */
    size_t index;
};

static int cmp_entry(const void *a, const void *b)
{
    double x = ((const struct sort_entry *)a)->key, y = ((const struct sort_entry *)b)->key;
    return x < y ? 1 : x > y ? -1 : 0;
}

int library_describe(struct recorder *r, const char *name, struct recording_info *o)
{
    char path[4096 + 300];
    snprintf(path, sizeof(path), "%s/%s", r->cfg->recordings, name);
    struct stat st;
    if (stat(path, &st) < 0)
        return -errno;
    describe_file(r->cfg->recordings, name, &st, o);
    return 0;
}

int recorder_list_recordings(struct recorder *r, struct recording_info **out, size_t *count)
{
    *out = NULL;
    *count = 0;
    int dfd = open_dir(r);
    DIR *dir = dfd >= 0 ? fdopendir(dfd) : NULL;
    if (!dir) {
        if (dfd >= 0)
            close(dfd);
        return 0;   /* no directory: nothing recorded yet */
    }
    struct recording_info *list = NULL;
    struct sort_entry *keys = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;
    struct dirent *e;
    while ((e = readdir(dir))) {
        size_t l = strlen(e->d_name);
        int is_flac = l > 5 && strcmp(e->d_name + l - 5, ".flac") == 0;
        int is_part = l > 10 && strcmp(e->d_name + l - 10, ".flac.part") == 0;
        if (e->d_name[0] == '.' || (!is_flac && !is_part))
            continue;
        struct stat st;
        if (fstatat(dirfd(dir), e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode))
            continue;
        if (n == cap) {
            size_t nc = cap ? cap * 2 : 32;
            void *p = realloc(list, nc * sizeof(*list));
            void *q = p ? realloc(keys, nc * sizeof(*keys)) : NULL;
            if (p)
                list = p;
            if (!q) {
                rc = -ENOMEM;
                break;
            }
            keys = q;
            cap = nc;
        }
        describe_file(r->cfg->recordings, e->d_name, &st, &list[n]);
        keys[n].key = (double)st.st_mtime - list[n].seconds;
        keys[n].index = n;
        n++;
    }
    closedir(dir);
    if (rc == 0 && n) {
        qsort(keys, n, sizeof(*keys), cmp_entry);
        struct recording_info *sorted = malloc(n * sizeof(*sorted));
        if (sorted) {
            for (size_t i = 0; i < n; i++)
                sorted[i] = list[keys[i].index];
            *out = sorted;
            *count = n;
        } else {
            rc = -ENOMEM;
        }
    }
    free(list);
    free(keys);
    return rc;
}

int recorder_open_recording(struct recorder *r, const char *name, int *fd, struct stat *st)
{
    if (!valid_recording_name(name))
        return -EINVAL;
    int dfd = open_dir(r);
    if (dfd < 0)
        return -ENOENT;
    int f = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    int err = errno;
    close(dfd);
    if (f < 0)
        return err == ELOOP || err == ENOENT || err == ENOTDIR ? -ENOENT : -err;
    struct stat s;
    if (fstat(f, &s) < 0 || !S_ISREG(s.st_mode)) {
        close(f);
        return -ENOENT;
    }
    /* O_NONBLOCK only guarded the open against a FIFO planted under a .flac name. */
    fcntl(f, F_SETFL, fcntl(f, F_GETFL) & ~O_NONBLOCK);
    *fd = f;
    if (st)
        *st = s;
    return 0;
}

int recorder_delete_recording(struct recorder *r, const char *name, const char *token)
{
    if (!token || !*token)
        return -EACCES;
    /* A valid current lease token of any device. */
    int rc = -EACCES;
    time_t now = time(NULL);
    char by[64] = "";
    pthread_mutex_lock(&r->lock);
    for (struct rec_device *d = r->devs; d; d = d->next) {
        int c = lease_check(r->leases, d->id, token, now);
        if (c == 0) {
            struct lease_info li;
            lease_get(r->leases, d->id, now, &li);
            rec_set_str(by, sizeof(by), li.client);
            rc = 0;
            break;
        }
        if (c == -ETIME)
            rc = -ETIME;
    }
    int writing = 0;
    if (rc == 0 && valid_recording_name(name))
        for (struct rec_device *d = r->devs; d; d = d->next)
            if ((d->take || d->busy) && strcmp(d->take_file, name) == 0)
                writing = 1;
    pthread_mutex_unlock(&r->lock);
    if (rc < 0)
        return rc;
    if (!valid_recording_name(name))
        return -EINVAL;
    if (writing)
        return -EBUSY;
    int dfd = open_dir(r);
    if (dfd < 0)
        return -ENOENT;
    char part[300];
    snprintf(part, sizeof(part), "%s.part", name);
    struct stat st;
    if (fstatat(dfd, part, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
        fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
        close(dfd);
        return -EBUSY;
    }
    if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode)) {
        close(dfd);
        return -ENOENT;
    }
    rc = unlinkat(dfd, name, 0) < 0 ? -errno : 0;
    if (rc == 0) {
        char peaks[300];
        snprintf(peaks, sizeof(peaks), "%s.peaks", name);
        (void)unlinkat(dfd, peaks, 0);   /* its overview goes with it */
        fsync(dfd);
    }
    close(dfd);
    if (rc == 0) {
        log_info("recorder", "deleted %s", name);
        api_event_delete(r->hub, name, by);   /* every page removes it */
    }
    return rc;
}
