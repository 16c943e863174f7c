/*
 * ep_ring: ringbuffer://handle=A as a source (never ends; 0 when empty) or a sink.
 *
 * As a sink the worker is the ring's only producer. A full ring means the consumer is
 * behind: we wait for room instead of dropping, and never ask ringbuffer_write() for more
 * than fits so that the user's `dropped` counter stays about their own producer. The ring
 * has no signal for "room", so we poll with a short, growing sleep (0.2 .. 10 ms); stop's
 * abort flag ends the wait.
 */
#include "record/endpoint.h"

#include <errno.h>
#include <time.h>

static int ring_open(struct rec_ep *ep)
{
    dev_ringbuf_t *rb = (dev_ringbuf_t *)(uintptr_t)ep->url->addr;
    ep->ring = rb;
    ep->finite = 0;
    return 0;
}

static ssize_t ring_read(struct rec_ep *ep, void *buf, size_t len)
{
    uint32_t n = len > UINT32_MAX ? UINT32_MAX : (uint32_t)len;
    return ringbuffer_read(ep->ring, buf, n);
}

static int ring_write(struct rec_ep *ep, const void *buf, size_t len, size_t *done)
{
    const uint8_t *p = buf;
    int sleep_us = 200;
    *done = 0;
    while (*done < len) {
        int space = ringbuffer_available_write_space(ep->ring);
        if (space < 0)
            return space;
        if (space > 0) {
            size_t want = len - *done;
            uint32_t n = want < (size_t)space ? (uint32_t)want : (uint32_t)space;
            int w = ringbuffer_write(ep->ring, (uint8_t *)(p + *done), n);
            if (w < 0)
                return w;
            *done += (size_t)w;
            sleep_us = 200;
            continue;
        }
        if (atomic_load(ep->abort))
            return -ECANCELED;
        struct timespec ts = {0, sleep_us * 1000L};
        nanosleep(&ts, NULL);
        if (sleep_us < 10000)
            sleep_us *= 2;
    }
    return 0;
}

static int ring_close(struct rec_ep *ep)
{
    ep->ring = NULL;
    return 0;
}

const struct rec_ep_ops rec_ep_ring_ops = {
    .open = ring_open,
    .read = ring_read,
    .write = ring_write,
    .close = ring_close,
};
