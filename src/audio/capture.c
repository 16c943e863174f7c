/*
 * capture: the per-device thread. Everything it touches is allocated by capture_start;
 * the loop only reads the source, writes the ring and feeds the meter. Losses go into a
 * fixed array of slots, each guarded by its own sequence number so that readers on other
 * threads can copy them without a lock and notice a slot being rewritten. The watchdog
 * and the timing check are arithmetic on the monotonic clock (capture_watch.c); a stalled
 * device is reopened here, on the capture thread, since nothing is captured meanwhile.
 */
#include "audio/capture.h"
#include "audio/capture_watch.h"
#include "audio/futex.h"
#include "common/log.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>

#define CAPTURE_MAX_LOSSES 64
#define REOPEN_FIRST_NS 250000000LL    /* first retry after a failed reopen */
#define REOPEN_MAX_NS 5000000000LL     /* backoff ceiling: a device back is seen within 5 s */
#define CAPTURE_STOP_WAIT_S 3          /* a read returns within 0.5 s, a healthy reopen in less */

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
    struct capture_config cfg;
    pthread_t thread;
    int thread_started;
    _Atomic uint32_t stop;    /* also a futex: wakes the reopen backoff */
    _Atomic uint32_t state;   /* enum capture_state; also the futex of capture_wait_end */
    _Atomic int error;
    _Atomic uint64_t nlosses;
    struct loss_slot losses[CAPTURE_MAX_LOSSES];

    /* capture thread only */
    struct capture_watch watch;
    int closed;                   /* the last reopen failed: do not read */
    int64_t stall_last_frame_ns;  /* last frame before the current stall */
    uint64_t stall_filed;         /* frames of the current stall filed so far */
    int64_t next_reopen_ns;
    int64_t backoff_ns;
    unsigned attempts;            /* reopens during the current stall */

    /* written by the capture thread, read by anyone (capture_get_stats) */
    _Atomic uint64_t frames;
    _Atomic int stalled;
    _Atomic uint32_t stalls, reopens, timing_losses;
    _Atomic int reopen_error;
    _Atomic int64_t last_detect_ns, last_stall_ns;
    _Atomic uint64_t timing_lost_frames, rate_mhz;
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

static int64_t realtime_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void record_loss(struct capture *c, enum capture_loss_kind kind, uint64_t at,
                        uint64_t frames, int64_t rt_ns)
{
    uint64_t i = atomic_load_explicit(&c->nlosses, memory_order_relaxed);
    struct loss_slot *s = &c->losses[i % CAPTURE_MAX_LOSSES];
    atomic_store_explicit(&s->seq, 0, memory_order_relaxed);
    atomic_thread_fence(memory_order_release);
    s->loss.at_frame = at;
    s->loss.frames = frames;
    s->loss.realtime_ns = rt_ns;
    s->loss.kind = kind;
    atomic_store_explicit(&s->seq, i + 1, memory_order_release);
    atomic_store_explicit(&c->nlosses, i + 1, memory_order_release);
}

static void emit(struct capture *c, enum capture_event_kind kind, uint64_t at, uint64_t frames,
                 int64_t duration_ns, int64_t rt_ns)
{
    if (!c->cfg.on_event)
        return;
    struct capture_event ev = {kind, at, frames, duration_ns, rt_ns};
    c->cfg.on_event(&ev, c->cfg.on_event_arg);
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

/* The end of what arrived, as a position a reader that read everything has passed. */
static uint64_t last_frame_pos(struct capture *c)
{
    uint64_t p = audio_ring_write_pos(c->ring);
    return p ? p - 1 : 0;
}

static void try_reopen(struct capture *c)
{
    atomic_fetch_add(&c->reopens, 1);
    c->attempts++;
    int r = c->src->ops->reopen(c->src);
    int64_t now = mono_ns();
    atomic_store(&c->reopen_error, r);
    c->closed = r < 0;
    if (r == 0)
        log_info("capture", "%s: reopened; waiting for frames", c->src->description);
    else if ((c->attempts & (c->attempts - 1)) == 0)   /* 1, 2, 4, 8 ...: not every 5 s */
        log_warn("capture", "%s: reopening failed (%s, attempt %u); next attempt in %.2f s",
                 c->src->description, strerror(-r), c->attempts, (double)c->backoff_ns / 1e9);
    /* after a reopen that worked, the device gets a bound's time to deliver */
    int64_t wait = r < 0 ? c->backoff_ns : c->watch.bound_ns;
    c->next_reopen_ns = now + (wait > c->backoff_ns ? wait : c->backoff_ns);
    c->backoff_ns = c->backoff_ns * 2 < REOPEN_MAX_NS ? c->backoff_ns * 2 : REOPEN_MAX_NS;
}

/* Nothing arrived for longer than the bound: file what is missing so far, tell, and
 * try to get the device back. */
static void stalled(struct capture *c, int64_t now)
{
    if (!atomic_load_explicit(&c->stalled, memory_order_relaxed)) {
        int64_t silent = now - c->watch.last_frame_ns;
        uint64_t missing = watch_ns_to_frames(&c->watch, silent);
        int64_t rt = realtime_ns();
        uint64_t at = last_frame_pos(c);
        c->stall_last_frame_ns = c->watch.last_frame_ns;
        c->stall_filed = missing;
        c->backoff_ns = REOPEN_FIRST_NS;
        c->next_reopen_ns = now;
        c->attempts = 0;
        record_loss(c, CAPTURE_LOSS_STALL, at, missing, rt);
        atomic_store(&c->last_detect_ns, silent);
        atomic_fetch_add(&c->stalls, 1);
        atomic_store(&c->stalled, 1);
        watch_restart_window(&c->watch);
        emit(c, CAPTURE_EV_STALLED, at, missing, silent, rt);
        log_warn("capture", "%s: no frame for %.1f s: the device is stalled%s",
                 c->src->description, (double)silent / 1e9,
                 c->src->ops->reopen ? "; reopening it" : "");
    }
    if (c->src->ops->reopen && now >= c->next_reopen_ns)
        try_reopen(c);
}

/* Frames again after a stall: file the rest of the gap where the new frames start. */
static void back(struct capture *c, int64_t now)
{
    int64_t gap_ns = now - c->stall_last_frame_ns;
    uint64_t gap = watch_ns_to_frames(&c->watch, gap_ns);
    uint64_t at = audio_ring_write_pos(c->ring);
    int64_t rt = realtime_ns();
    if (gap > c->stall_filed)
        record_loss(c, CAPTURE_LOSS_STALL, at, gap - c->stall_filed, rt);
    atomic_store(&c->last_stall_ns, gap_ns);
    atomic_store(&c->stalled, 0);
    watch_restart_window(&c->watch);
    emit(c, CAPTURE_EV_BACK, at, gap, gap_ns, rt);
    log_info("capture", "%s: frames again after %.1f s", c->src->description,
             (double)gap_ns / 1e9);
}

static void timing_lost(struct capture *c, uint64_t shortfall)
{
    int64_t rt = realtime_ns();
    uint64_t at = last_frame_pos(c);
    record_loss(c, CAPTURE_LOSS_TIMING, at, shortfall, rt);
    atomic_fetch_add(&c->timing_losses, 1);
    atomic_fetch_add(&c->timing_lost_frames, shortfall);
    emit(c, CAPTURE_EV_TIMING, at, shortfall, c->watch.window_ns, rt);
}

/* Stalled with the source closed: sleep until the next reopen (a stop wakes it). */
static void wait_reopen(struct capture *c)
{
    int64_t left = c->next_reopen_ns - mono_ns();
    if (left > 0)
        futex_wait_u32(&c->stop, 0, (int)((left + 999999) / 1000000));
    if (!atomic_load(&c->stop) && mono_ns() >= c->next_reopen_ns)
        try_reopen(c);
}

static void *capture_main(void *arg)
{
    struct capture *c = arg;
    enum capture_state end = CAPTURE_STOPPED;
    c->watch.last_frame_ns = mono_ns();   /* the bound runs from the thread's start */
    while (!atomic_load_explicit(&c->stop, memory_order_relaxed)) {
        if (c->closed) {
            wait_reopen(c);
            continue;
        }
        ssize_t n = audio_source_read(c->src, c->buf, c->buf_frames);
        int64_t now = mono_ns();
        if (n > 0) {
            if (atomic_load_explicit(&c->stalled, memory_order_relaxed))
                back(c, now);
            audio_ring_write(c->ring, c->buf, (size_t)n);
            set_anchor(c, audio_ring_write_pos(c->ring));
            meter_process(c->meter, c->buf, (size_t)n, audio_ring_write_pos(c->ring), now);
            atomic_fetch_add_explicit(&c->frames, (uint64_t)n, memory_order_relaxed);
            uint64_t shortfall = watch_frames(&c->watch, (uint64_t)n,
                                              (size_t)n == c->buf_frames, now);
            if (c->watch.last_rate_mhz)
                atomic_store_explicit(&c->rate_mhz, c->watch.last_rate_mhz, memory_order_relaxed);
            if (shortfall)
                timing_lost(c, shortfall);
            continue;
        }
        if (n == -EPIPE) {
            /* the ring position is where the gap sits in what readers see */
            record_loss(c, CAPTURE_LOSS_XRUN, audio_ring_write_pos(c->ring),
                        c->src->last_xrun.frames, realtime_ns());
            watch_lost(&c->watch, c->src->last_xrun.frames);
            c->have_off = 0;   /* the timeline jumped by the loss */
        } else if (n == -EAGAIN || n == -EINTR) {
            /* no data for a while: look at the stop flag and the watchdog, go on */
        } else {
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
        if (watch_stalled(&c->watch, now))
            stalled(c, now);
    }
    audio_ring_close(c->ring);
    set_state(c, end);
    return NULL;
}

/* Prefaults and locks the capture's buffers so that the first periods never wait for the
 * kernel to find pages, and memory pressure never pages them out. */
static void lock_memory(struct capture *c, size_t ring_bytes)
{
    memset(c->buf, 0, c->buf_frames * audio_frame_bytes(&c->src->format));
    int r = audio_ring_lock(c->ring);
    if (r == 0)
        return;
    struct rlimit rl = {0};
    getrlimit(RLIMIT_MEMLOCK, &rl);
    char lim[32] = "unlimited";
    if (rl.rlim_cur != RLIM_INFINITY)
        snprintf(lim, sizeof lim, "%.1f MiB", (double)rl.rlim_cur / 1048576.0);
    log_warn("capture", "%s: cannot lock the %.1f MiB capture ring in memory (%s; "
             "RLIMIT_MEMLOCK is %s): it is prefaulted but may be paged out under memory "
             "pressure; raise the limit (LimitMEMLOCK= in the service, ulimit -l)",
             c->src->description, (double)ring_bytes / 1048576.0, strerror(-r), lim);
}

int capture_start(struct capture **out, struct audio_source *src, const struct capture_config *cfg)
{
    if (!out || !src)
        return -EINVAL;
    const struct audio_format *f = &src->format;
    size_t fb = audio_frame_bytes(f);
    if (fb == 0 || f->rate == 0)
        return -EINVAL;
    struct capture *c = calloc(1, sizeof *c);
    if (!c)
        return -ENOMEM;
    if (cfg)
        c->cfg = *cfg;
    if (!c->cfg.ring_seconds)
        c->cfg.ring_seconds = 20;
    if (!c->cfg.meter_rate)
        c->cfg.meter_rate = 25;
    c->src = src;
    /* several periods per read: fewer wake-ups when the source has more ready */
    c->buf_frames = src->period_frames ? (size_t)src->period_frames * 4 : f->rate / 25;
    if (c->buf_frames < 64)
        c->buf_frames = 64;
    int r = -ENOMEM;
    c->buf = malloc(c->buf_frames * fb);
    if (!c->buf)
        goto fail;
    size_t ring_frames = (size_t)f->rate * c->cfg.ring_seconds;
    if ((r = audio_ring_create(&c->ring, ring_frames, fb)) < 0)
        goto fail;
    if ((r = meter_create(&c->meter, f, c->cfg.meter_rate)) < 0)
        goto fail;
    lock_memory(c, ring_frames * fb);
    watch_init(&c->watch, f->rate, src->buffer_frames, (unsigned)c->buf_frames,
               c->cfg.stall_ms, c->cfg.timing_window_ms, mono_ns());
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

/* Captures whose thread never came back from the driver: kept reachable on purpose (the
 * thread may still use them), never freed. */
static struct capture *_Atomic abandoned[16];

/* Joins the thread; 0, or -ETIMEDOUT when it is stuck in the driver after the deadline. */
static int join_capture(struct capture *c)
{
    struct timespec dl;
    clock_gettime(CLOCK_MONOTONIC, &dl);
    dl.tv_sec += CAPTURE_STOP_WAIT_S;
    int r = pthread_clockjoin_np(c->thread, NULL, CLOCK_MONOTONIC, &dl);
    if (r != ETIMEDOUT)
        return 0;
    pthread_detach(c->thread);
    for (size_t i = 0; i < sizeof abandoned / sizeof abandoned[0]; i++) {
        struct capture *none = NULL;
        if (atomic_compare_exchange_strong(&abandoned[i], &none, c))
            break;
    }
    log_err("capture", "%s: the capture thread has been stuck in the driver for %d s (a hung "
            "device or sound server): abandoned; the device stays open until pirec ends",
            c->src->description, CAPTURE_STOP_WAIT_S);
    return -ETIMEDOUT;
}

void capture_stop(struct capture *c)
{
    if (!c)
        return;
    atomic_store(&c->stop, 1);
    futex_wake_all(&c->stop);
    if (c->thread_started && join_capture(c) < 0) {
        /* readers see the end; the rest stays with the stuck thread */
        audio_ring_close(c->ring);
        if (atomic_load(&c->state) == CAPTURE_RUNNING)
            set_state(c, CAPTURE_STOPPED);
        return;
    }
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

int capture_is_stalled(const struct capture *c)
{
    return atomic_load(&((struct capture *)c)->stalled);
}

void capture_get_stats(const struct capture *c, struct capture_stats *out)
{
    struct capture *cc = (struct capture *)c;
    *out = (struct capture_stats){
        .frames = atomic_load(&cc->frames),
        .stalled = atomic_load(&cc->stalled),
        .stalls = atomic_load(&cc->stalls),
        .stall_bound_ns = cc->watch.bound_ns,
        .last_detect_ns = atomic_load(&cc->last_detect_ns),
        .last_stall_ns = atomic_load(&cc->last_stall_ns),
        .reopens = atomic_load(&cc->reopens),
        .reopen_error = atomic_load(&cc->reopen_error),
        .timing_losses = atomic_load(&cc->timing_losses),
        .timing_lost_frames = atomic_load(&cc->timing_lost_frames),
        .measured_rate = (double)atomic_load(&cc->rate_mhz) / 1000.0,
    };
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
