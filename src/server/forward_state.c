/*
 * forward_state: see forward_state.h. The file:
 *
 *   pirec-forward-state 1
 *   url=ws://nas:9090/
 *   device=hi
 *   file=2026-12-01_hi_001.flac
 *   local=2026-12-01_hi_001.flac.part
 *   final=2026-12-01_hi_001.flac
 *   state=sending            (or verifying)
 */
#include "server/forward_state.h"

#include "common/fsutil.h"
#include "common/log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAGIC "pirec-forward-state 1"
#define SUFFIX ".fwd"

static int folder(char *out, size_t n, const char *state_dir)
{
    return (size_t)snprintf(out, n, "%s/forward", state_dir) >= n ? -ENAMETOOLONG : 0;
}

static int file_path(char *out, size_t n, const char *state_dir, const char *stream,
                     const char *suffix)
{
    return (size_t)snprintf(out, n, "%s/forward/%s%s", state_dir, stream, suffix) >= n
               ? -ENAMETOOLONG
               : 0;
}

static int one_line(const char *v)
{
    return strchr(v, '\n') == NULL && strchr(v, '\r') == NULL;
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -errno;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int forward_state_save(const char *state_dir, const char *stream, const struct forward_saved *s)
{
    if (!one_line(s->url) || !one_line(s->device) || !one_line(s->file) ||
        !one_line(s->local) || !one_line(s->final_name))
        return -EINVAL;
    char dir[4096], tmp[4096], path[4096];
    int rc = folder(dir, sizeof dir, state_dir);
    if (rc == 0)
        rc = file_path(tmp, sizeof tmp, state_dir, stream, SUFFIX ".tmp");
    if (rc == 0)
        rc = file_path(path, sizeof path, state_dir, stream, SUFFIX);
    if (rc == 0)
        rc = fs_mkdir_p(dir, 0700);
    if (rc < 0)
        return rc;
    char text[2048];
    int len = snprintf(text, sizeof text,
                       MAGIC "\nurl=%s\ndevice=%s\nfile=%s\nlocal=%s\nfinal=%s\nstate=%s\n",
                       s->url, s->device, s->file, s->local, s->final_name,
                       s->verifying ? "verifying" : "sending");
    if (len < 0 || (size_t)len >= sizeof text)
        return -ENAMETOOLONG;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return -errno;
    rc = write_all(fd, text, (size_t)len);
    if (rc == 0 && fsync(fd) < 0)
        rc = -errno;
    if (close(fd) < 0 && rc == 0)
        rc = -errno;
    if (rc == 0 && rename(tmp, path) < 0)
        rc = -errno;
    if (rc < 0) {
        unlink(tmp);
        return rc;
    }
    /* the rename itself must survive a power cut */
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        if (fsync(dfd) < 0)
            rc = -errno;
        close(dfd);
    }
    return rc;
}

int forward_state_remove(const char *state_dir, const char *stream)
{
    char path[4096];
    int rc = file_path(path, sizeof path, state_dir, stream, SUFFIX);
    if (rc < 0)
        return rc;
    return unlink(path) < 0 && errno != ENOENT ? -errno : 0;
}

static int ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a > b && strcmp(s + a - b, suffix) == 0;
}

/* Copies the value of "key=" into out. 1 when the line was that key, 0 otherwise. */
static int take_value(const char *line, const char *key, char *out, size_t n, int *bad)
{
    size_t k = strlen(key);
    if (strncmp(line, key, k) != 0 || line[k] != '=')
        return 0;
    if ((size_t)snprintf(out, n, "%s", line + k + 1) >= n)
        *bad = 1;
    return 1;
}

static int parse(FILE *fp, struct forward_saved *s)
{
    char line[1024];
    memset(s, 0, sizeof *s);
    if (!fgets(line, sizeof line, fp) || strcmp(line, MAGIC "\n") != 0)
        return -EINVAL;
    int bad = 0, have_state = 0;
    char state[32] = "";
    while (fgets(line, sizeof line, fp)) {
        line[strcspn(line, "\n")] = 0;
        if (!take_value(line, "url", s->url, sizeof s->url, &bad) &&
            !take_value(line, "device", s->device, sizeof s->device, &bad) &&
            !take_value(line, "file", s->file, sizeof s->file, &bad) &&
            !take_value(line, "local", s->local, sizeof s->local, &bad) &&
            !take_value(line, "final", s->final_name, sizeof s->final_name, &bad))
            have_state |= take_value(line, "state", state, sizeof state, &bad);
    }
    if (bad || !have_state || !s->url[0] || !s->device[0] || !s->file[0] || !s->local[0] ||
        strchr(s->local, '/') || strchr(s->final_name, '/'))
        return -EINVAL;
    if (strcmp(state, "verifying") == 0)
        s->verifying = 1;
    else if (strcmp(state, "sending") != 0)
        return -EINVAL;
    return 0;
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
    return strcmp((*a)->d_name, (*b)->d_name);
}

int forward_state_load_all(const char *state_dir, forward_state_each each, void *arg)
{
    char dir[4096];
    int rc = folder(dir, sizeof dir, state_dir);
    if (rc < 0)
        return rc;
    struct dirent **names = NULL;
    int n = scandir(dir, &names, NULL, by_name);
    if (n < 0)
        return errno == ENOENT ? 0 : -errno;
    int count = 0;
    for (int i = 0; i < n; i++) {
        const char *name = names[i]->d_name;
        char path[4096], stream[256];
        if (ends_with(name, SUFFIX ".tmp") &&
            (size_t)snprintf(path, sizeof path, "%s/%s", dir, name) < sizeof path) {
            unlink(path);   /* a save cut short by a crash: the .fwd beside it (if any) holds */
            continue;
        }
        size_t sl = strlen(name) - (ends_with(name, SUFFIX) ? strlen(SUFFIX) : 0);
        if (!ends_with(name, SUFFIX) || sl >= sizeof stream ||
            (size_t)snprintf(path, sizeof path, "%s/%s", dir, name) >= sizeof path)
            continue;
        memcpy(stream, name, sl);
        stream[sl] = 0;
        FILE *fp = fopen(path, "re");
        struct forward_saved s;
        int prc = fp ? parse(fp, &s) : -errno;
        if (fp)
            fclose(fp);
        if (prc < 0) {
            log_warn("forward", "%s: not a forward state file this version reads (%s); left "
                     "alone", path, strerror(-prc));
            continue;
        }
        each(stream, &s, arg);
        count++;
    }
    for (int i = 0; i < n; i++)
        free(names[i]);
    free(names);
    return count;
}
