/*
 * flac_writer: one FLAC file written through libFLAC's stream encoder into a file
 * descriptor this module owns, so that it can refresh STREAMINFO while the file grows.
 *
 * Layout it writes: "fLaC", STREAMINFO, VORBIS_COMMENT, PADDING, frames. The PADDING
 * block is the room in which the comments are rewritten in place (losses are only known
 * later). flac_writer_flush() makes the file decodable as it stands after a crash:
 * STREAMINFO gets the samples and frame sizes of the frames written so far (MD5 zero =
 * "unknown"), then fdatasync(). flac_writer_finish() lets libFLAC write the MD5, or after
 * a write error truncates a torn frame and patches STREAMINFO itself.
 *
 * open() writes the header itself; every later write, STREAMINFO refresh, comment
 * rewrite and fdatasync happens in order on the writer's disk thread ("take-disk"), from
 * a bounded in-memory queue, so a disk stall does not stop the encoder. Frames are handed
 * to that thread about 64 KiB at a time (a flush, finish() or a full queue hand over at
 * once), so it wakes a few times a second, not per frame. flush() only queues a
 * snapshot; write errors come back from the next process()/flush(); finish() waits for
 * the queue to be on disk. There is no other mode: tests run this one.
 * Test hook: env PIREC_TEST_DISK_STALL_MS makes the disk thread sleep that long before
 * the first fdatasync of each file (a stalled SD card).
 *
 * Threads: one thread owns a writer from open to finish (the take's encoder thread).
 * Ownership: flac_writer_finish() always closes the file and frees the writer.
 */
#ifndef PIREC_STORE_FLAC_WRITER_H
#define PIREC_STORE_FLAC_WRITER_H

#include <stddef.h>
#include <stdint.h>

struct flac_writer_config {
    unsigned rate;
    unsigned channels;
    unsigned bits;                /* 16, 24 or 32: samples given are right-aligned at it */
    unsigned compression;         /* libFLAC level 0..8 */
    unsigned blocksize;           /* 0 = libFLAC's choice for the level */
    unsigned max_lpc_order;       /* 0 = the level's (8 at levels 4..8); up to 12 keeps
                                     libFLAC on its fast 32-bit path */
    const char *const *comments;  /* "KEY=value", known at the start */
    size_t n_comments;
    unsigned padding;             /* bytes kept for later comments (0 = 8192) */
    size_t queue_bytes;           /* bound of the queue of encoded bytes waiting for the
                                     disk thread (0 = 64 MiB); past it process() waits */
};

struct flac_writer;

/* Creates path with O_EXCL (never over an existing file). 0, -EEXIST, -EINVAL (format
 * libFLAC refuses), or the errno of open/write. */
int flac_writer_open(struct flac_writer **out, const char *path,
                     const struct flac_writer_config *cfg);
/* Encodes frames of interleaved right-aligned samples. 0 or the first write error
 * (-ENOSPC, -EIO ...); after an error the writer only accepts finish(). */
int flac_writer_process(struct flac_writer *w, const int32_t *samples, size_t frames);
/* Queues a rewrite of STREAMINFO (and the comments with `extra` appended, if not NULL)
 * for the frames encoded so far, then fdatasync(), behind those frames. 0 or negative
 * errno (a disk error of earlier items included). */
int flac_writer_flush(struct flac_writer *w, const char *const *extra, size_t n_extra);
/* Ends the file: all samples given are encoded (unless a write error happened, then the
 * file ends at the last whole frame), MD5 written when complete, comments + extra
 * rewritten, fsync, close, free. Returns 0 or the first error of the file's life (the
 * file is valid FLAC either way, unless nothing at all could be written). */
int flac_writer_finish(struct flac_writer *w, const char *const *extra, size_t n_extra);
/* The same, and *whole gets the samples per channel in the whole frames the file ends with
 * (fewer than given after a write error). */
int flac_writer_finish_ex(struct flac_writer *w, const char *const *extra, size_t n_extra,
                          uint64_t *whole);
/* Bytes waiting in the queue (0: everything queued so far is on disk), and the most it
 * ever held. */
size_t flac_writer_queued(struct flac_writer *w, size_t *peak);

/* Bytes in the file and samples per channel in whole frames, as encoded so far (on disk
 * once flac_writer_queued() is 0). */
uint64_t flac_writer_bytes(const struct flac_writer *w);
uint64_t flac_writer_samples(const struct flac_writer *w);

/* Test hook (unit tests only): make writes fail with -ENOSPC once the file would grow
 * past this many bytes (0 = off). */
void flac_writer_test_fail_after(struct flac_writer *w, uint64_t bytes);

/* Shared with flac_repair: builds the 34-byte STREAMINFO body. */
void flac_streaminfo_pack(uint8_t out[34], unsigned min_bs, unsigned max_bs,
                          unsigned min_fs, unsigned max_fs, unsigned rate,
                          unsigned channels, unsigned bits, uint64_t total_samples,
                          const uint8_t md5[16]);

#endif
