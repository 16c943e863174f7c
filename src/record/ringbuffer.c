/*
 * ringbuffer: lock-free single-producer / single-consumer byte ring (pirec/ringbuffer.h).
 *
 * The struct keeps the original's plain uint32_t fields so that users' code compiles
 * unchanged; all cross-thread accesses go through __atomic builtins. The producer owns
 * widx and dropped, the consumer owns ridx. Each side reads its own index relaxed and the
 * other side's with acquire; it publishes its own with release after copying, so the
 * bytes are visible before the index that covers them.
 */
#include <pirec/ringbuffer.h>

#include <errno.h>
#include <string.h>

#include "record/addr_registry.h"

static inline uint32_t load_acq(const uint32_t *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
static inline uint32_t load_own(const uint32_t *p) { return __atomic_load_n(p, __ATOMIC_RELAXED); }
static inline void store_rel(uint32_t *p, uint32_t v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }

static inline uint32_t used(uint32_t len, uint32_t r, uint32_t w)
{
    return w >= r ? w - r : len - r + w;
}

int ringbuffer_create(dev_ringbuf_t *rb, char *buffer, int length)
{
    if (!rb || !buffer || length < 2)
        return -EINVAL;
    rb->buffer = (uint8_t *)buffer;
    rb->length = (uint32_t)length;
    rb->ridx = 0;
    rb->widx = 0;
    rb->dropped = 0;
    /* known to ringbuffer:// URLs from now on (see record/addr_registry.h) */
    return rec_addr_add(REC_ADDR_RING, rb, sizeof *rb);
}

void ringbuffer_destroy(dev_ringbuf_t *rb)
{
    if (!rb)
        return;
    rec_addr_remove(REC_ADDR_RING, rb);
    rb->buffer = NULL;
    rb->length = 0;
    rb->ridx = rb->widx = 0;
}

int ringbuffer_read(dev_ringbuf_t *rb, uint8_t *target, uint32_t amount)
{
    if (!rb || !rb->buffer || rb->length < 2 || (!target && amount))
        return -EINVAL;
    uint32_t len = rb->length;
    uint32_t r = load_own(&rb->ridx);
    uint32_t w = load_acq(&rb->widx);
    uint32_t n = used(len, r, w);
    if (n > amount)
        n = amount;
    if (n == 0)
        return 0;
    uint32_t first = len - r < n ? len - r : n;
    memcpy(target, rb->buffer + r, first);
    memcpy(target + first, rb->buffer, n - first);
    store_rel(&rb->ridx, (r + n) % len);
    return (int)n;
}

int ringbuffer_write(dev_ringbuf_t *rb, uint8_t *data, uint32_t length)
{
    if (!rb || !rb->buffer || rb->length < 2 || (!data && length))
        return -EINVAL;
    uint32_t len = rb->length;
    uint32_t w = load_own(&rb->widx);
    uint32_t r = load_acq(&rb->ridx);
    uint32_t space = len - 1 - used(len, r, w);
    uint32_t n = length < space ? length : space;
    if (n < length) /* never silent: whoever watches the ring can see what was refused */
        __atomic_fetch_add(&rb->dropped, (uint64_t)(length - n), __ATOMIC_RELAXED);
    if (n == 0)
        return 0;
    uint32_t first = len - w < n ? len - w : n;
    memcpy(rb->buffer + w, data, first);
    memcpy(rb->buffer, data + first, n - first);
    store_rel(&rb->widx, (w + n) % len);
    return (int)n;
}

int ringbuffer_available_read_space(dev_ringbuf_t *rb)
{
    if (!rb || rb->length < 2)
        return -EINVAL;
    return (int)used(rb->length, load_acq(&rb->ridx), load_acq(&rb->widx));
}

int ringbuffer_available_write_space(dev_ringbuf_t *rb)
{
    if (!rb || rb->length < 2)
        return -EINVAL;
    return (int)(rb->length - 1 - used(rb->length, load_acq(&rb->ridx), load_acq(&rb->widx)));
}

int ringbuffer_full(dev_ringbuf_t *rb)
{
    int space = ringbuffer_available_write_space(rb);
    return space < 0 ? space : space == 0;
}

int ringbuffer_empty(dev_ringbuf_t *rb)
{
    int n = ringbuffer_available_read_space(rb);
    return n < 0 ? n : n == 0;
}

void ringbuffer_clear(dev_ringbuf_t *rb)
{
    if (!rb)
        return;
    store_rel(&rb->ridx, 0);
    store_rel(&rb->widx, 0);
}
