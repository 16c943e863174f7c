/*
 * flac_repair: finalize FLAC files that a crash or power cut left unfinished
 * ("*.flac.part", or a .flac whose STREAMINFO says 0 samples): walk the frames, drop a
 * torn last frame, patch STREAMINFO (total samples, min/max frame size), rename
 * "x.flac.part" to "x.flac" (never over an existing file). The original is never
 * destroyed: work happens on a copy or by truncating only what is not a whole frame.
 * A .part cut off before its first whole frame holds no audio and is removed.
 * Only regular files are touched, never through a symbolic link.
 *
 * Files: flac_repair_scan.c finds the whole frames, flac_repair.c changes one file,
 * flac_repair_dir.c walks a folder.
 * Threads: any; files are the caller's.
 */
#ifndef PIREC_STORE_FLAC_REPAIR_H
#define PIREC_STORE_FLAC_REPAIR_H

#include <stdint.h>

struct repair_result {
    char final_path[4096];
    uint64_t frames_kept;     /* FLAC frames */
    uint64_t samples;         /* samples per channel now in STREAMINFO */
    uint64_t bytes_dropped;   /* torn tail removed */
    int already_ok;           /* nothing to do */
    int removed;              /* a .part with no whole audio frame (a crash right after
                                 the take started or split): deleted, final_path empty */
};

/* 0, or (the file left untouched) -EINVAL (not a FLAC file / no usable frame / not a
 * regular file), -EBADMSG (damaged with audio after the damage), -ELOOP (a symbolic
 * link), -EISDIR, -EMLINK (a .part with other hard links), other errno. */
int flac_repair_file(const char *path, struct repair_result *res);

/* Is name an unfinished take, "*.flac.part" (something before the suffix)? */
int flac_repair_is_part(const char *name);

/* Called after each file of flac_repair_dir_each with flac_repair_file's answer. */
typedef void (*flac_repair_report)(const char *path, int rc, const struct repair_result *res,
                                   void *arg);
/* Repairs every *.flac.part in dir, in name order, reporting each (report may be NULL).
 * Returns how many were repaired or removed as empty, and *failed (may be NULL) how many
 * were not; or a negative errno (cannot list dir, -ENOMEM: then nothing was touched). */
int flac_repair_dir_each(const char *dir, flac_repair_report report, void *arg,
                         unsigned *failed);
/* flac_repair_dir_each logging each file. */
int flac_repair_dir(const char *dir);

#endif
