/*
 * audio_ring: the ring between a capture thread and everything that consumes its audio
 * (take writer, forwarder, pre-roll), with one writer and any number of readers.
 *
 * Positions are absolute frame counts since the capture started (uint64_t, never wrap).
 * The writer never blocks, never allocates, never waits for a reader: it overwrites the
 * oldest frames. A reader that falls more than `capacity` frames behind loses data and is
 * told exactly how many frames (audio_ring_read's *lost). Pre-roll is a reader that starts
 * at write_pos - preroll_frames.
 *
 * Threads: audio_ring_write() by the one capture thread; audio_ring_read(), _wait() and
 * _write_pos() by any thread; create/destroy by the owner when no one else uses it.
 * Wake-ups use a futex on the write position: no lock is ever taken by the writer.
 */
#ifndef PIREC_AUDIO_RING_H
#define PIREC_AUDIO_RING_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct audio_ring;

/* 0 or -ENOMEM / -EINVAL. */
int  audio_ring_create(struct audio_ring **out, size_t capacity_frames, size_t frame_bytes);
void audio_ring_destroy(struct audio_ring *r);
/* Owner, before the writer starts: touches every page of the ring and locks it in RAM
 * (mlock). 0, or the negative errno of mlock (-ENOMEM / -EPERM past RLIMIT_MEMLOCK):
 * the ring is then prefaulted but not locked. */
int  audio_ring_lock(struct audio_ring *r);

size_t   audio_ring_capacity(const struct audio_ring *r);
size_t   audio_ring_frame_bytes(const struct audio_ring *r);
/* Frames written so far (acquire). */
uint64_t audio_ring_write_pos(const struct audio_ring *r);

/* Writer: appends n frames and wakes waiting readers. */
void audio_ring_write(struct audio_ring *r, const void *frames, size_t n);
/* Writer: marks the end of the stream (the source ended or vanished); readers that have
 * read everything get 0 from audio_ring_read and audio_ring_wait returns -EPIPE. */
void audio_ring_close(struct audio_ring *r);

/* Reader: copies up to max_frames frames starting at *pos into dst and advances *pos.
 * If *pos is older than the ring holds, the missing frames are added to *lost and *pos
 * jumps to the oldest frame still there. Returns frames copied (0 if none yet). */
ssize_t audio_ring_read(struct audio_ring *r, uint64_t *pos, void *dst, size_t max_frames,
                        uint64_t *lost);

/* Reader: waits until frames beyond pos exist. 0, -ETIMEDOUT, or -EPIPE when the ring was
 * closed and everything up to the end was read. timeout_ms < 0 waits forever. */
int audio_ring_wait(struct audio_ring *r, uint64_t pos, int timeout_ms);

#endif
