/*
 * capture: the per-device thread. Everything it touches is allocated by capture_start;
 * the loop only reads the source, writes the ring and feeds the meter. Losses go into a
 * fixed array of slots, each guarded by its own sequence number so that readers on other
 * threads can copy them without a lock and notice a slot being rewritten.
 */
#include "audio/capture.h"
#include "audio/futex.h"
#include "common/log.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define CAPTURE_MAX_LOSSES 64

struct loss_slot {
    _Atomic uint64_t seq;   /* index + 1 when complete, 0 while being written */
    struct capture_loss loss;
};

struct capture {
    struct audio_source *src;
    struct audio_ring *ring;
    struct meter *meter;
    void *buf;
    size_t buf_frames;
    pthread_t thread;
    int thread_started;
    _Atomic int stop;
    _Atomic uint32_t state;   /* enum capture_state; also the futex of capture_wait_end */
    _Atomic int error;
    _Atomic uint64_t nlosses;
    struct loss_slot losses[CAPTURE_MAX_LOSSES];
    /* the clock anchor: ring position after the latest write and CLOCK_REALTIME when its
     * read returned, guarded by a sequence number (odd while being written) */
    _Atomic uint64_t anchor_seq;
    _Atomic uint64_t anchor_pos;
    _Atomic int64_t anchor_rt;
    /* capture thread only: the smallest (capture time - position / rate) seen, which is
     * the read least delayed by scheduling; it may rise slowly (the device's clock runs
     * slower than the system's) and starts again after a loss */
    int64_t best_off;
    int have_off;
};

static void record_loss(struct capture *c, uint64_t at, uint64_t frames)
{
    uint64_t i = atomic_load_explicit(&c->nlosses, memory_order_relaxed);
    struct loss_slot *s = &c->losses[i % CAPTURE_MAX_LOSSES];
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    atomic_store_explicit(&s->seq, 0, memory_order_relaxed);
    atomic_thread_fence(memory_order_release);
    s->loss.at_frame = at;
    s->loss.frames = frames;
    s->loss.realtime_ns = (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
    atomic_store_explicit(&s->seq, i + 1, memory_order_release);
    atomic_store_explicit(&c->nlosses, i + 1, memory_order_release);
}

#define ANCHOR_RISE_NS 10000   /* per read: 1 ms/s at 100 reads/s, far above clock drift */

static void set_anchor(struct capture *c, uint64_t pos)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t now = (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
    int64_t at = (int64_t)((double)pos * 1e9 / c->src->format.rate);
    int64_t off = now - at;
    if (!c->have_off || off < c->best_off)
        c->best_off = off;
    else
        c->best_off += off - c->best_off < ANCHOR_RISE_NS ? off - c->best_off : ANCHOR_RISE_NS;
    c->have_off = 1;
    now = at + c->best_off;
    uint64_t q = atomic_load_explicit(&c->anchor_seq, memory_order_relaxed);
    atomic_store_explicit(&c->anchor_seq, q + 1, memory_order_relaxed);
    atomic_thread_fence(memory_order_release);
    atomic_store_explicit(&c->anchor_pos, pos, memory_order_relaxed);
    atomic_store_explicit(&c->anchor_rt, now, memory_order_relaxed);
    atomic_store_explicit(&c->anchor_seq, q + 2, memory_order_release);
}

static void set_state(struct capture *c, enum capture_state st)
{
    atomic_store(&c->state, (uint32_t)st);
    futex_wake_all(&c->state);
}

static void *capture_main(void *arg)
{
    struct capture *c = arg;
    enum capture_state end = CAPTURE_STOPPED;
    while (!atomic_load_explicit(&c->stop, memory_order_relaxed)) {
        ssize_t n = audio_source_read(c->src, c->buf, c->buf_frames);
        if (n > 0) {
            int64_t now = mono_ns();
            audio_ring_write(c->ring, c->buf, (size_t)n);
            set_anchor(c, audio_ring_write_pos(c->ring));
            meter_process(c->meter, c->buf, (size_t)n, audio_ring_write_pos(c->ring), now);
            continue;
        }
        if (n == -EPIPE) {
            /* the ring position is where the gap sits in what readers see */
            record_loss(c, audio_ring_write_pos(c->ring), c->src->last_xrun.frames);
            c->have_off = 0;   /* the timeline jumped by the loss */
            continue;
        }
        if (n == -EAGAIN || n == -EINTR)
            continue;   /* no data for a while: look at the stop flag and go on */
        if (n == 0) {
            end = CAPTURE_ENDED;
        } else if (n == -ENODEV) {
            end = CAPTURE_GONE;
        } else {
            end = CAPTURE_FAILED;
            atomic_store(&c->error, (int)n);
        }
        break;
    }
    audio_ring_close(c->ring);
    set_state(c, end);
    return NULL;
}

int capture_start(struct capture **out, struct audio_source *src, const struct capture_config *cfg)
{
    if (!out || !src)
        return -EINVAL;
    const struct audio_format *f = &src->format;
    size_t fb = audio_frame_bytes(f);
    if (fb == 0 || f->rate == 0)
        return -EINVAL;
    unsigned secs = cfg && cfg->ring_seconds ? cfg->ring_seconds : 20;
    unsigned mrate = cfg && cfg->meter_rate ? cfg->meter_rate : 25;
    struct capture *c = calloc(1, sizeof *c);
    if (!c)
        return -ENOMEM;
    c->src = src;
    /* several periods per read: fewer wake-ups when the source has more ready */
    c->buf_frames = src->period_frames ? (size_t)src->period_frames * 4 : f->rate / 25;
    if (c->buf_frames < 64)
        c->buf_frames = 64;
    int r = -ENOMEM;
    c->buf = malloc(c->buf_frames * fb);
    if (!c->buf)
        goto fail;
    if ((r = audio_ring_create(&c->ring, (size_t)f->rate * secs, fb)) < 0)
        goto fail;
    if ((r = meter_create(&c->meter, f, mrate)) < 0)
        goto fail;
    atomic_store(&c->state, CAPTURE_RUNNING);

    /* Real-time priority if we may; otherwise a normal thread works too. */
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    struct sched_param sp = {.sched_priority = 70};
    pthread_attr_setinheritsched(&attr, PTHREAD_EXPLICIT_SCHED);
    pthread_attr_setschedpolicy(&attr, SCHED_FIFO);
    pthread_attr_setschedparam(&attr, &sp);
    r = pthread_create(&c->thread, &attr, capture_main, c);
    pthread_attr_destroy(&attr);
    if (r != 0)
        r = pthread_create(&c->thread, NULL, capture_main, c);
    if (r != 0) {
        r = -r;
        goto fail;
    }
    pthread_setname_np(c->thread, "capture");
    c->thread_started = 1;
    *out = c;
    return 0;
fail:
    meter_destroy(c->meter);
    audio_ring_destroy(c->ring);
    free(c->buf);
    free(c);
    return r;
}

void capture_stop(struct capture *c)
{
    if (!c)
        return;
    atomic_store(&c->stop, 1);
    if (c->thread_started)
        pthread_join(c->thread, NULL);
    if (atomic_load(&c->state) == CAPTURE_RUNNING)
        set_state(c, CAPTURE_STOPPED);
    audio_ring_close(c->ring);
    audio_source_close(c->src);
    meter_destroy(c->meter);
    audio_ring_destroy(c->ring);
    free(c->buf);
    free(c);
}

struct audio_ring *capture_ring(struct capture *c) { return c->ring; }
const struct audio_format *capture_format(const struct capture *c) { return &c->src->format; }
const char *capture_description(const struct capture *c) { return c->src->description; }
void capture_meter(const struct capture *c, struct meter_snapshot *out) { meter_read(c->meter, out); }

enum capture_state capture_get_state(const struct capture *c)
{
    return (enum capture_state)atomic_load(&((struct capture *)c)->state);
}

int capture_error(const struct capture *c)
{
    return atomic_load(&((struct capture *)c)->error);
}

size_t capture_get_losses(const struct capture *c, uint64_t since, struct capture_loss *out,
                          size_t max, uint64_t *total)
{
    struct capture *cc = (struct capture *)c;
    uint64_t n = atomic_load_explicit(&cc->nlosses, memory_order_acquire);
    if (total)
        *total = n;
    uint64_t first = n > CAPTURE_MAX_LOSSES ? n - CAPTURE_MAX_LOSSES : 0;
    size_t got = 0;
    for (uint64_t i = first; i < n && got < max; i++) {
        struct loss_slot *s = &cc->losses[i % CAPTURE_MAX_LOSSES];
        uint64_t s1 = atomic_load_explicit(&s->seq, memory_order_acquire);
        struct capture_loss l = s->loss;
        atomic_thread_fence(memory_order_acquire);
        uint64_t s2 = atomic_load_explicit(&s->seq, memory_order_relaxed);
        if (s1 != i + 1 || s2 != s1)
            continue;   /* rewritten by a newer loss meanwhile: that one is newer anyway */
        if (l.at_frame >= since)
            out[got++] = l;
    }
    return got;
}

int capture_wait_end(struct capture *c, int timeout_ms)
{
    int64_t deadline = timeout_ms >= 0 ? mono_ns() + (int64_t)timeout_ms * 1000000LL : 0;
    for (;;) {
        uint32_t st = atomic_load(&c->state);
        if (st != CAPTURE_RUNNING)
            return 0;
        int left = -1;
        if (timeout_ms >= 0) {
            int64_t rem = deadline - mono_ns();
            if (rem <= 0)
                return -ETIMEDOUT;
            left = (int)((rem + 999999) / 1000000);
        }
        futex_wait_u32(&c->state, st, left);
    }
}

int capture_frame_time(const struct capture *c, uint64_t pos, int64_t *realtime_ns)
{
    struct capture *cc = (struct capture *)c;
    uint64_t apos;
    int64_t art;
    for (;;) {
        uint64_t q1 = atomic_load_explicit(&cc->anchor_seq, memory_order_acquire);
        apos = atomic_load_explicit(&cc->anchor_pos, memory_order_relaxed);
        art = atomic_load_explicit(&cc->anchor_rt, memory_order_relaxed);
        atomic_thread_fence(memory_order_acquire);
        uint64_t q2 = atomic_load_explicit(&cc->anchor_seq, memory_order_relaxed);
        if (q1 == q2 && !(q1 & 1))
            break;
    }
    if (apos == 0)
        return -EAGAIN;
    /* frames between pos and the anchor, plus the time the losses between them took */
    int64_t frames = (int64_t)apos - (int64_t)pos;
    struct capture_loss l[CAPTURE_MAX_LOSSES];
    size_t n = capture_get_losses(c, pos < apos ? pos + 1 : apos, l, CAPTURE_MAX_LOSSES, NULL);
    for (size_t i = 0; i < n; i++)
        if (l[i].at_frame > pos && l[i].at_frame < apos)
            frames += (int64_t)l[i].frames;
    unsigned rate = c->src->format.rate;
    *realtime_ns = art - (int64_t)((double)frames * 1e9 / rate);
    return 0;
}
