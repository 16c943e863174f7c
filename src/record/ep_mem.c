/*
 * ep_mem: mem://address=A&size=N as a source (ends after N bytes) or a sink (fails with
 * -ENOSPC rather than write past N bytes). The caller owns the memory.
 *
 * The original copied all N bytes into a chunk-sized buffer and never ended; here each
 * read takes at most one chunk.
 */
#include "record/endpoint.h"

#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "common/log.h"

static int mem_open(struct rec_ep *ep)
{
    ep->mem = (uint8_t *)(uintptr_t)ep->url->addr;
    ep->mem_size = ep->url->size;
    ep->mem_pos = 0;
    ep->finite = ep->is_source;
    return 0;
}

static ssize_t mem_read(struct rec_ep *ep, void *buf, size_t len)
{
    uint64_t left = ep->mem_size - ep->mem_pos;
    if (left == 0) {
        ep->eof = 1;
        return 0;
    }
    size_t n = left < len ? (size_t)left : len;
    memcpy(buf, ep->mem + ep->mem_pos, n);
    ep->mem_pos += n;
    return (ssize_t)n;
}

static int mem_write(struct rec_ep *ep, const void *buf, size_t len, size_t *done)
{
    uint64_t left = ep->mem_size - ep->mem_pos;
    size_t n = left < len ? (size_t)left : len;
    memcpy(ep->mem + ep->mem_pos, buf, n);
    ep->mem_pos += n;
    *done = n;
    if (n < len) {
        log_err("record", "mem sink is full: it holds %" PRIu64 " bytes; %zu more did not fit",
                ep->mem_size, len - n);
        return -ENOSPC;
    }
    return 0;
}

static int mem_close(struct rec_ep *ep)
{
    ep->mem = NULL;
    return 0;
}

const struct rec_ep_ops rec_ep_mem_ops = {
    .open = mem_open,
    .read = mem_read,
    .write = mem_write,
    .close = mem_close,
};
