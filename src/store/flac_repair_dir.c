/* flac_repair_dir: every *.flac.part of a folder, in name order; see flac_repair.h. */
#include "store/flac_repair.h"

#include "common/log.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int cmp_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The names of the *.flac.part in dir, sorted. 0 or negative errno (nothing listed). */
static int list_parts(const char *dir, char ***out, size_t *count)
{
    *out = NULL;
    *count = 0;
    DIR *d = opendir(dir);
    if (!d)
        return -errno;
    char **names = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;
    for (;;) {
        errno = 0;
        struct dirent *e = readdir(d);
        if (!e) {
            rc = -errno;
            break;
        }
        if (!flac_repair_is_part(e->d_name))
            continue;
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            char **nn = realloc(names, ncap * sizeof *names);
            if (!nn) {
                rc = -ENOMEM;
                break;
            }
            names = nn;
            cap = ncap;
        }
        if (!(names[n] = strdup(e->d_name))) {
            rc = -ENOMEM;
            break;
        }
        n++;
    }
    closedir(d);
    if (rc < 0) {
        while (n)
            free(names[--n]);
        free(names);
        return rc;
    }
    if (n)
        qsort(names, n, sizeof *names, cmp_name);
    *out = names;
    *count = n;
    return 0;
}

int flac_repair_dir_each(const char *dir, flac_repair_report report, void *arg,
                         unsigned *failed)
{
    if (failed)
        *failed = 0;
    char **names;
    size_t n;
    int rc = list_parts(dir, &names, &n);
    if (rc < 0)
        return rc;
    int done = 0;
    for (size_t i = 0; i < n; i++) {
        char path[PATH_MAX];
        struct repair_result res;
        if (snprintf(path, sizeof path, "%s/%s", dir, names[i]) >= (int)sizeof path) {
            memset(&res, 0, sizeof res);
            rc = -ENAMETOOLONG;
        } else {
            rc = flac_repair_file(path, &res);
        }
        if (rc == 0)
            done++;
        else if (failed)
            (*failed)++;
        if (report)
            report(path, rc, &res, arg);
        free(names[i]);
    }
    free(names);
    return done;
}

static void log_one(const char *path, int rc, const struct repair_result *res, void *arg)
{
    (void)arg;
    if (rc == 0 && !res->removed)
        log_info("repair", "%s -> %s (%llu samples, %llu bytes of torn frame dropped)", path,
                 res->final_path, (unsigned long long)res->samples,
                 (unsigned long long)res->bytes_dropped);
    else if (rc < 0)
        log_warn("repair", "%s: not repaired: %s", path, strerror(-rc));
}

int flac_repair_dir(const char *dir)
{
    return flac_repair_dir_each(dir, log_one, NULL, NULL);
}
