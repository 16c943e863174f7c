/* take_gap: a take on the capture's timeline; see take_gap.h. */
#include "store/take_gap.h"

#include "store/naming.h"

#include <stdio.h>
#include <string.h>

#define LOSS_BATCH 16

void take_gap_init(struct take_gap *g, struct capture *cap, int fill, uint64_t start_pos)
{
    memset(g, 0, sizeof *g);
    g->cap = cap;
    g->fill = fill;
    g->since = start_pos + 1;
}

int take_gap_pending(const struct take_gap *g)
{
    return g->silence != 0 || g->held != 0;
}

int take_gap_next_loss(struct take_gap *g, uint64_t pos, struct capture_loss *out)
{
    if (g->fill && take_gap_pending(g))
        return 0;   /* the frames before this gap are not all written yet */
    struct capture_loss l[LOSS_BATCH];
    size_t n = capture_get_losses(g->cap, g->since, l, LOSS_BATCH, NULL);
    for (size_t i = 0; i < n; i++) {
        if (g->fill ? l[i].at_frame > pos : l[i].at_frame >= pos)
            return 0;
        g->since = l[i].at_frame + 1;
        *out = l[i];
        return 1;
    }
    return 0;
}

size_t take_gap_limit(const struct take_gap *g, uint64_t pos, size_t want)
{
    if (!g->fill)
        return want;
    uint64_t wpos = audio_ring_write_pos(capture_ring(g->cap));
    if (wpos > pos && wpos - pos < want)
        want = (size_t)(wpos - pos);
    struct capture_loss l[LOSS_BATCH];
    size_t n = capture_get_losses(g->cap, g->since, l, LOSS_BATCH, NULL);
    for (size_t i = 0; i < n; i++)
        if (l[i].at_frame > pos && l[i].at_frame - pos < want)
            want = (size_t)(l[i].at_frame - pos);
    return want;
}

void take_gap_owe(struct take_gap *g, uint64_t frames)
{
    if (g->fill)
        g->silence += frames;
}

void take_gap_hold(struct take_gap *g, size_t n)
{
    g->held = n;
    g->held_off = 0;
}

enum take_gap_next take_gap_next(struct take_gap *g, size_t want, size_t *n, size_t *off)
{
    if (g->silence) {
        *n = g->silence < want ? (size_t)g->silence : want;
        g->silence -= *n;
        return TAKE_GAP_SILENCE;
    }
    if (g->held) {
        *n = g->held < want ? g->held : want;
        *off = g->held_off;
        g->held -= *n;
        g->held_off += *n;
        return TAKE_GAP_HELD;
    }
    return TAKE_GAP_READ;
}

void take_gap_time_comment(char *out, size_t n, int64_t realtime_ns)
{
    char iso[48];
    take_utc_time_ms(iso, sizeof iso, realtime_ns);
    snprintf(out, n, "PIREC_START_TIME=%s", iso);
}
