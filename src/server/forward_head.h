/*
 * forward_head: helpers of the forwarder (forward.c) for the FLAC file it follows:
 * reading its metadata blocks and building the head message of docs/protocol.md
 * ("Forwarded takes"). No state; any thread.
 */
#ifndef PIREC_SERVER_FORWARD_HEAD_H
#define PIREC_SERVER_FORWARD_HEAD_H

#include <stddef.h>
#include <stdint.h>

/* pread until n bytes: 0, -ENODATA at the end of the file, or -errno. */
int forward_pread_all(int fd, uint8_t *buf, size_t n, uint64_t off);
/* The file's "fLaC" + metadata blocks as on disk now (*out malloc'ed, caller frees), their
 * length and the stream's sample rate. 0, -EINVAL (not FLAC), -ENOMEM, -errno. */
int forward_read_header(int fd, uint8_t **out, size_t *len, unsigned *rate);
/* "pirec-forward-head 1 SIZE HLEN MD5\n" + hdr (*msg malloc'ed); md5 gets STREAMINFO's MD5
 * in hex. 0 or -ENOMEM. */
int forward_head_message(const uint8_t *hdr, size_t hlen, uint64_t size, uint8_t **msg,
                         size_t *len, char md5[33]);

#endif
