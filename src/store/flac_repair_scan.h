/*
 * flac_repair_scan: the reading half of repair (flac_repair.h): where the whole frames of
 * an unfinished FLAC file end, and whether what follows is a torn frame, damage with audio
 * after it, or a take that never got its first frame. Reads only; flac_repair.c decides
 * and changes the file.
 *
 * Threads: any; a reader belongs to one call of flac_repair_file.
 */
#ifndef PIREC_STORE_FLAC_REPAIR_SCAN_H
#define PIREC_STORE_FLAC_REPAIR_SCAN_H

#include <stddef.h>
#include <stdint.h>

/* A 1 MiB window over the file (files > 4 GiB on 32-bit too). */
struct repair_reader {
    int fd;
    uint64_t size;
    uint64_t base;
    size_t len;
    uint8_t *buf;
};

/* What STREAMINFO says. */
struct repair_stream {
    unsigned min_bs, max_bs, min_fs, max_fs, rate, channels, bits;
    uint64_t total;
    uint8_t md5[16];
};

/* The whole frames found from the start. */
struct repair_walk {
    uint64_t audio_start, end;     /* end of the last whole frame */
    uint64_t frames, samples;
    unsigned min_fs, max_fs, first_bs, min_bs, max_bs, last_bs;
    int variable;
};

/* 0, or -ENOMEM. The reader does not own fd. */
int  repair_reader_init(struct repair_reader *r, int fd, uint64_t size);
void repair_reader_free(struct repair_reader *r);

/* Reads STREAMINFO and finds where the frames start. -EINVAL: not FLAC; -ENODATA: the
 * file ends inside its metadata (a crash while the take's header was being written). */
int repair_read_metadata(struct repair_reader *r, struct repair_stream *si,
                         uint64_t *audio_start);
/* Walks the frames from w->audio_start: w->end is the end of the last whole frame. */
void repair_walk_frames(struct repair_reader *r, const struct repair_stream *si,
                        struct repair_walk *w);
/* Does a frame that follows on from the walk lie past w->end? Then the damage is in the
 * middle and truncating would destroy audio. */
int repair_tail_has_frames(struct repair_reader *r, const struct repair_stream *si,
                           const struct repair_walk *w);
/* The file ends inside its metadata: small, the start of a FLAC header, no frame header. */
int repair_header_torn(struct repair_reader *r, const struct repair_stream *si);
/* Cut off before its first whole frame: it holds no audio. */
int repair_empty_take(struct repair_reader *r, const struct repair_stream *si,
                      const struct repair_walk *w);

#endif
