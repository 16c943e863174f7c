/*
 * audio_ring: one writer, many readers, overwrite-oldest, absolute positions.
 *
 * The writer announces the end of the frames it is about to write in `reserve` before
 * touching memory, and publishes them in `wpos` afterwards (seqlock style). A reader copies
 * what wpos says is there, then re-reads `reserve`: every frame of its copy that the writer
 * may have been overwriting meanwhile (position < reserve - capacity) is dropped and counted
 * as lost, so a reader never returns a torn frame and loses count of nothing.
 *
 * Wake-up: `seq` is a 32-bit futex word bumped after each write and at close; the writer
 * calls FUTEX_WAKE only when `waiters` says someone sleeps. All writer atomics are seq_cst
 * so that "reader registers as waiter, then re-checks wpos" and "writer publishes wpos,
 * then checks waiters" cannot both miss each other.
 */
#include "audio/audio_ring.h"
#include "audio/futex.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

struct audio_ring {
    uint8_t *buf;        /* its own mapping: locking it locks no one else's pages */
    size_t buf_bytes;
    size_t cap;          /* frames */
    size_t fb;           /* bytes per frame */
    _Atomic uint64_t wpos;
    _Atomic uint64_t reserve;
    _Atomic uint32_t seq;
    _Atomic uint32_t waiters;
    _Atomic int closed;
};

int audio_ring_create(struct audio_ring **out, size_t capacity_frames, size_t frame_bytes)
{
    if (!out || capacity_frames == 0 || frame_bytes == 0 ||
        capacity_frames > SIZE_MAX / frame_bytes)
        return -EINVAL;
    struct audio_ring *r = calloc(1, sizeof *r);
    if (!r)
        return -ENOMEM;
    r->buf_bytes = capacity_frames * frame_bytes;
    void *m = mmap(NULL, r->buf_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) {
        free(r);
        return -ENOMEM;
    }
    r->buf = m;
    r->cap = capacity_frames;
    r->fb = frame_bytes;
    *out = r;
    return 0;
}

void audio_ring_destroy(struct audio_ring *r)
{
    if (!r)
        return;
    munmap(r->buf, r->buf_bytes);   /* unlocks it too */
    free(r);
}

int audio_ring_lock(struct audio_ring *r)
{
    memset(r->buf, 0, r->buf_bytes);   /* prefault even when the lock is refused */
    return mlock(r->buf, r->buf_bytes) == 0 ? 0 : -errno;
}

size_t audio_ring_capacity(const struct audio_ring *r) { return r->cap; }
size_t audio_ring_frame_bytes(const struct audio_ring *r) { return r->fb; }

uint64_t audio_ring_write_pos(const struct audio_ring *r)
{
    return atomic_load_explicit(&((struct audio_ring *)r)->wpos, memory_order_acquire);
}

static void wake(struct audio_ring *r)
{
    atomic_fetch_add(&r->seq, 1);
    if (atomic_load(&r->waiters) > 0)
        futex_wake_all(&r->seq);
}

void audio_ring_write(struct audio_ring *r, const void *frames, size_t n)
{
    if (n == 0)
        return;
    const uint8_t *src = frames;
    uint64_t w = atomic_load_explicit(&r->wpos, memory_order_relaxed);
    uint64_t end = w + n;
    atomic_store_explicit(&r->reserve, end, memory_order_relaxed);
    atomic_thread_fence(memory_order_seq_cst);   /* reserve is visible before the data */
    /* Only the newest `cap` frames of a huge write can survive anyway. */
    if (n > r->cap) {
        src += (n - r->cap) * r->fb;
        w = end - r->cap;
        n = r->cap;
    }
    size_t at = (size_t)(w % r->cap);
    size_t first = r->cap - at < n ? r->cap - at : n;
    memcpy(r->buf + at * r->fb, src, first * r->fb);
    if (n > first)
        memcpy(r->buf, src + first * r->fb, (n - first) * r->fb);
    atomic_store(&r->wpos, end);
    wake(r);
}

void audio_ring_close(struct audio_ring *r)
{
    atomic_store(&r->closed, 1);
    wake(r);
}

ssize_t audio_ring_read(struct audio_ring *r, uint64_t *pos, void *dst, size_t max_frames,
                        uint64_t *lost)
{
    uint8_t *out = dst;
    for (;;) {
        uint64_t w = atomic_load(&r->wpos);
        uint64_t oldest = w > r->cap ? w - r->cap : 0;
        if (*pos > w)
            *pos = w;   /* a reader cannot be ahead of the writer */
        if (*pos < oldest) {
            if (lost)
                *lost += oldest - *pos;
            *pos = oldest;
        }
        uint64_t avail = w - *pos;
        size_t n = avail < max_frames ? (size_t)avail : max_frames;
        if (n == 0)
            return 0;
        size_t at = (size_t)(*pos % r->cap);
        size_t first = r->cap - at < n ? r->cap - at : n;
        memcpy(out, r->buf + at * r->fb, first * r->fb);
        if (n > first)
            memcpy(out + first * r->fb, r->buf, (n - first) * r->fb);
        atomic_thread_fence(memory_order_seq_cst);   /* the copy happens before the re-check */
        uint64_t res = atomic_load_explicit(&r->reserve, memory_order_relaxed);
        uint64_t valid_from = res > r->cap ? res - r->cap : 0;
        if (*pos >= valid_from) {
            *pos += n;
            return (ssize_t)n;
        }
        /* The writer overwrote the start of what we copied while we copied it. */
        uint64_t bad = valid_from - *pos;
        if (bad > n)
            bad = n;
        if (lost)
            *lost += bad;
        *pos += bad;
        size_t good = n - (size_t)bad;
        if (good > 0) {
            memmove(out, out + (size_t)bad * r->fb, good * r->fb);
            *pos += good;
            return (ssize_t)good;
        }
        /* nothing usable: try again from the (new) oldest frame */
    }
}

int audio_ring_wait(struct audio_ring *r, uint64_t pos, int timeout_ms)
{
    int64_t deadline = timeout_ms >= 0 ? mono_ns() + (int64_t)timeout_ms * 1000000LL : 0;
    for (;;) {
        uint32_t s = atomic_load(&r->seq);
        if (atomic_load(&r->wpos) > pos)
            return 0;
        if (atomic_load(&r->closed))
            return -EPIPE;
        int left = -1;
        if (timeout_ms >= 0) {
            int64_t rem = deadline - mono_ns();
            if (rem <= 0)
                return -ETIMEDOUT;
            left = (int)((rem + 999999) / 1000000);
        }
        atomic_fetch_add(&r->waiters, 1);
        if (atomic_load(&r->wpos) <= pos && !atomic_load(&r->closed))
            futex_wait_u32(&r->seq, s, left);
        atomic_fetch_sub(&r->waiters, 1);
    }
}
