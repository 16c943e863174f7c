/* capture_watch: see capture_watch.h. */
#include "audio/capture_watch.h"

#define WATCH_MIN_BOUND_NS 2000000000LL   /* no device is stalled sooner than this */
#define WATCH_DEFAULT_WINDOW_NS 10000000000LL

void watch_init(struct capture_watch *w, unsigned rate, unsigned buffer_frames,
                unsigned read_frames, int stall_ms, int window_ms, int64_t now_ns)
{
    *w = (struct capture_watch){.rate = rate, .last_frame_ns = now_ns};
    if (stall_ms > 0) {
        w->bound_ns = (int64_t)stall_ms * 1000000LL;
    } else if (stall_ms == 0) {
        int64_t buf_ns = rate ? (int64_t)buffer_frames * 1000000000LL / rate : 0;
        w->bound_ns = 3 * buf_ns > WATCH_MIN_BOUND_NS ? 3 * buf_ns : WATCH_MIN_BOUND_NS;
    }
    if (window_ms > 0)
        w->window_ns = (int64_t)window_ms * 1000000LL;
    else if (window_ms == 0)
        w->window_ns = WATCH_DEFAULT_WINDOW_NS;
    /* a window's count is off by what sat in the device at its two ends: windows close
     * only on a read that emptied the device, so a read or two */
    w->slack_frames = 4 * (uint64_t)read_frames;
}

uint64_t watch_ns_to_frames(const struct capture_watch *w, int64_t ns)
{
    if (ns <= 0)
        return 0;
    return (uint64_t)(ns / 1000000000LL) * w->rate +
           (uint64_t)(ns % 1000000000LL) * w->rate / 1000000000ULL;
}

uint64_t watch_frames(struct capture_watch *w, uint64_t n, int more_waiting, int64_t now_ns)
{
    w->last_frame_ns = now_ns;
    if (!w->window_ns)
        return 0;
    if (!w->win_start_ns) {
        /* these frames were captured before now: the window counts what comes after */
        w->win_start_ns = now_ns;
        w->win_frames = 0;
        return 0;
    }
    w->win_frames += n;
    int64_t span = now_ns - w->win_start_ns;
    if (span < w->window_ns || more_waiting)
        return 0;
    uint64_t expected = watch_ns_to_frames(w, span);
    uint64_t got = w->win_frames;
    w->last_rate_mhz = (uint64_t)((double)got * 1e12 / (double)span);
    w->win_start_ns = now_ns;
    w->win_frames = 0;
    /* "clearly fewer": more than 5% of the window and more than the read jitter */
    uint64_t allowed = expected / 20 > w->slack_frames ? expected / 20 : w->slack_frames;
    return got + allowed < expected ? expected - got : 0;
}

void watch_lost(struct capture_watch *w, uint64_t n)
{
    if (w->win_start_ns)
        w->win_frames += n;
}

int watch_stalled(const struct capture_watch *w, int64_t now_ns)
{
    return w->bound_ns > 0 && now_ns - w->last_frame_ns > w->bound_ns;
}

void watch_restart_window(struct capture_watch *w)
{
    w->win_start_ns = 0;
    w->win_frames = 0;
}
