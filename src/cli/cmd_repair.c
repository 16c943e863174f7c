/* pirec repair: finalize FLAC files left unfinished by a crash or a power cut. */
#include "cli/commands.h"

#include "store/flac_repair.h"

#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *out)
{
    fprintf(out,
            "usage: pirec repair FILE...\n"
            "       pirec repair --dir DIR\n\n"
            "Finalizes FLAC takes that a crash or power cut left unfinished (*.flac.part, or a\n"
            ".flac whose header says 0 samples): keeps every whole frame, drops a torn last\n"
            "frame, writes the length into STREAMINFO and renames x.flac.part to x.flac (never\n"
            "over an existing file). A file that is not FLAC, or is damaged in the middle, is\n"
            "left untouched.\n\n"
            "  --dir DIR   repair every *.flac.part in DIR\n"
            "  -h, --help  this text\n\n"
            "Exit status: 0 all files fine, 1 some file could not be repaired, 2 bad usage.\n");
}

static int repair_one(const char *path)
{
    struct repair_result r;
    int rc = flac_repair_file(path, &r);
    if (rc == 0 && r.already_ok) {
        printf("%s: already complete (%llu samples)\n", path, (unsigned long long)r.samples);
        return 0;
    }
    if (rc == 0) {
        printf("%s: repaired -> %s (%llu samples in %llu frames, %llu bytes of torn frame "
               "dropped)\n",
               path, r.final_path, (unsigned long long)r.samples,
               (unsigned long long)r.frames_kept, (unsigned long long)r.bytes_dropped);
        return 0;
    }
    const char *why;
    switch (rc) {
    case -EINVAL:
        why = "not a FLAC file, or no whole audio frame in it; left untouched";
        break;
    case -EBADMSG:
        why = "damaged in the middle with audio after the damage; left untouched "
              "(try `flac -d -F` to salvage)";
        break;
    default:
        why = strerror(-rc);
        break;
    }
    fprintf(stderr, "%s: NOT repaired: %s\n", path, why);
    return 1;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int repair_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) {
        fprintf(stderr, "pirec repair: cannot open directory %s: %s\n", dir, strerror(errno));
        return 2;
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t l = strlen(e->d_name);
        if (l < 10 || strcmp(e->d_name + l - 10, ".flac.part") != 0)
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            char **nn = realloc(names, cap * sizeof *names);
            if (!nn)
                break;
            names = nn;
        }
        char path[PATH_MAX];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (!(names[n] = strdup(path)))
            break;
        n++;
    }
    closedir(d);
    qsort(names, n, sizeof *names, cmp_str);
    int failed = 0;
    for (size_t i = 0; i < n; i++) {
        failed |= repair_one(names[i]);
        free(names[i]);
    }
    free(names);
    printf("%s: %zu unfinished file%s, %s\n", dir, n, n == 1 ? "" : "s",
           failed ? "some NOT repaired" : "all repaired");
    return failed;
}

int cmd_repair(int argc, char **argv)
{
    static const struct option opts[] = {
        {"dir", required_argument, NULL, 'd'},
        {"help", no_argument, NULL, 'h'},
        {0},
    };
    const char *dir = NULL;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "d:h", opts, NULL)) != -1) {
        switch (c) {
        case 'd':
            dir = optarg;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (!dir && optind >= argc) {
        fprintf(stderr, "pirec repair: give FILE... or --dir DIR\n\n");
        usage(stderr);
        return 2;
    }
    int failed = 0;
    if (dir) {
        int rc = repair_dir(dir);
        if (rc == 2)
            return 2;
        failed |= rc;
    }
    for (int i = optind; i < argc; i++)
        failed |= repair_one(argv[i]);
    return failed ? 1 : 0;
}
