/*
 * pirec/ringbuffer.h: the byte ring the record module reads from or writes into.
 *
 * Drop-in for the SDK's dev_ringbuf_t (same names and signatures). It is safe for exactly
 * one producer thread and one consumer thread at the same time, without a lock: the
 * producer only moves widx, the consumer only moves ridx, both with acquire/release
 * atomics. Any other use (two producers, clear while running) needs the caller's lock.
 *
 * Ownership: the caller owns both the dev_ringbuf_t and the memory given to
 * ringbuffer_create(); ringbuffer_destroy() forgets them and frees nothing.
 *
 * Unlike the original, ringbuffer_write() never drops silently: it returns what it took,
 * and every byte it could not take is added to `dropped`.
 */
#ifndef PIREC_RINGBUFFER_H
#define PIREC_RINGBUFFER_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    uint8_t *buffer;
    uint32_t length;    /* size of buffer; the ring holds length - 1 bytes */
    uint32_t ridx;      /* next byte to read; moved by the consumer only */
    uint32_t widx;      /* next byte to write; moved by the producer only */
    uint64_t dropped;   /* bytes ringbuffer_write() could not take (producer only) */
} dev_ringbuf_t;

/* 0 on success, -EINVAL if rb or buffer is NULL or length < 2, -ENOMEM. Also registers
 * rb, so that a ringbuffer://handle= URL may name it (pirec/record.h); ringbuffer_destroy()
 * unregisters it. */
int  ringbuffer_create(dev_ringbuf_t *rb, char *buffer, int length);
void ringbuffer_destroy(dev_ringbuf_t *rb);
/* Consumer: copies up to amount bytes out; returns how many (0 when empty), or -EINVAL. */
int  ringbuffer_read(dev_ringbuf_t *rb, uint8_t *target, uint32_t amount);
/* Producer: copies up to length bytes in; returns how many it took; the rest is counted
 * in rb->dropped. */
int  ringbuffer_write(dev_ringbuf_t *rb, uint8_t *data, uint32_t length);
int  ringbuffer_available_read_space(dev_ringbuf_t *rb);
int  ringbuffer_available_write_space(dev_ringbuf_t *rb);
int  ringbuffer_full(dev_ringbuf_t *rb);
int  ringbuffer_empty(dev_ringbuf_t *rb);
/* Empties the ring. Only when neither side is running. */
void ringbuffer_clear(dev_ringbuf_t *rb);

#ifdef __cplusplus
}
#endif
#endif
