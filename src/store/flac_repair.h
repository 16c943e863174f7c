/*
 * flac_repair: finalize FLAC files that a crash or power cut left unfinished
 * ("*.flac.part", or a .flac whose STREAMINFO says 0 samples): walk the frames, drop a
 * torn last frame, patch STREAMINFO (total samples, min/max frame size), rename
 * "x.flac.part" to "x.flac" (never over an existing file). The original is never
 * destroyed: work happens on a copy or by truncating only what is not a whole frame.
 *
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
};

/* 0, or -EINVAL (not a FLAC file / no usable frame: file left untouched), other errno. */
int flac_repair_file(const char *path, struct repair_result *res);
/* Repairs every *.flac.part in dir; returns how many were repaired or a negative errno. */
int flac_repair_dir(const char *dir);

#endif
