/* pirec repair: finalize FLAC files left unfinished by a crash or a power cut. */
#include "cli/commands.h"

#include "store/flac_repair.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

static void usage(FILE *out)
{
    fprintf(out,
            "usage: pirec repair FILE...\n"
            "       pirec repair --dir DIR\n\n"
            "Finalizes FLAC takes that a crash or power cut left unfinished (*.flac.part, or a\n"
            ".flac whose header says 0 samples): keeps every whole frame, drops a torn last\n"
            "frame, writes the length into STREAMINFO and renames x.flac.part to x.flac (never\n"
            "over an existing file). A .part that ended before its first audio frame holds no\n"
            "audio and is removed. A file that is not FLAC, is damaged in the middle, or is a\n"
            "symbolic link is left untouched.\n\n"
            "  --dir DIR   repair every *.flac.part in DIR\n"
            "  -h, --help  this text\n\n"
            "Exit status: 0 all files fine, 1 some file could not be repaired, 2 bad usage.\n");
}

/* Prints what happened to one file; 1 if it could not be repaired. */
static int report(const char *path, int rc, const struct repair_result *r)
{
    if (rc == 0 && r->removed) {
        printf("%s: removed: the take ended before its first audio frame, it held no audio\n",
               path);
        return 0;
    }
    if (rc == 0 && r->already_ok) {
        printf("%s: already complete (%llu samples)\n", path, (unsigned long long)r->samples);
        return 0;
    }
    if (rc == 0) {
        printf("%s: repaired -> %s (%llu samples in %llu frames, %llu bytes of torn frame "
               "dropped)\n",
               path, r->final_path, (unsigned long long)r->samples,
               (unsigned long long)r->frames_kept, (unsigned long long)r->bytes_dropped);
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
    case -ELOOP:
        why = "a symbolic link; left untouched (repair the file it points to, in its own "
              "folder)";
        break;
    case -EMLINK:
        why = "has other hard links, so it may not belong to this folder; left untouched";
        break;
    default:
        why = strerror(-rc);
        break;
    }
    fprintf(stderr, "%s: NOT repaired: %s\n", path, why);
    return 1;
}

static int repair_one(const char *path)
{
    struct repair_result r;
    return report(path, flac_repair_file(path, &r), &r);
}

static void report_in_dir(const char *path, int rc, const struct repair_result *r, void *arg)
{
    (void)arg;
    report(path, rc, r);
}

/* 0 all repaired, 1 some not, 2 the folder could not be read. */
static int repair_dir(const char *dir)
{
    unsigned failed = 0;
    int done = flac_repair_dir_each(dir, report_in_dir, NULL, &failed);
    if (done < 0) {
        fprintf(stderr, "pirec repair: cannot list %s: %s; nothing was repaired\n", dir,
                strerror(-done));
        return 2;
    }
    unsigned n = (unsigned)done + failed;
    if (n == 0)
        printf("%s: no unfinished file\n", dir);
    else
        printf("%s: %u unfinished file%s, %s\n", dir, n, n == 1 ? "" : "s",
               failed ? "some NOT repaired" : "all repaired");
    return failed ? 1 : 0;
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
