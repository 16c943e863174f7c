/*
 * take_writer: the encoder thread "take-writer" of a take (see take_internal.h). It reads
 * the capture's ring in blocks from the take's start position, converts to right-aligned
 * int32 at the stored depth and feeds libFLAC (flac_writer), whose output goes to the
 * file's disk thread; with gap fill it writes silence where frames were lost; it ends the
 * take at the stop position, a limit, a full disk or the capture's end, and splits files.
 */
#include "store/take_internal.h"

#include "common/log.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

void *take_writer_main(void *arg)
{
    struct take *t = arg;
    size_t ch = t->fmt.channels;
    int64_t last_flush = take_now_ns(CLOCK_MONOTONIC);
    enum take_state end = TAKE_DONE;
    int err = 0;
    uint32_t s32_mask = 0;
    for (;;) {
        if (t->fmt.sample == SF_S32_LE && t->bits < 32)
            s32_mask = (1u << (32 - t->bits)) - 1;
        else
            s32_mask = 0;
        int stopping = atomic_load(&t->stop_requested);
        uint64_t stop_pos = atomic_load(&t->stop_pos);
        if (!t->cfg.no_gap_fill)
            take_poll_capture_losses(t);   /* a gap right here: its silence first */
        int filling = take_gap_pending(&t->gap);
        if (stopping && t->pos >= stop_pos && !filling)
            break;
        size_t want = CHUNK_FRAMES;
        if (stopping && !filling && stop_pos - t->pos < want)
            want = (size_t)(stop_pos - t->pos);
        if (t->cfg.max_frames && t->cfg.max_frames - t->frames_total < want)
            want = (size_t)(t->cfg.max_frames - t->frames_total);
        if (t->cfg.split_frames && t->cfg.split_frames - t->file_frames < want)
            want = (size_t)(t->cfg.split_frames - t->file_frames);
        ssize_t n;
        const uint8_t *raw = t->raw;
        size_t gn = 0, goff = 0;
        enum take_gap_next next = take_gap_next(&t->gap, want, &gn, &goff);
        int silence = next == TAKE_GAP_SILENCE;
        if (next != TAKE_GAP_READ) {
            n = (ssize_t)gn;
            if (next == TAKE_GAP_HELD)
                raw = t->raw + goff * audio_frame_bytes(&t->fmt);
        } else {
            want = take_gap_limit(&t->gap, t->pos, want);
            uint64_t lost = 0;
            n = audio_ring_read(t->ring, &t->pos, t->raw, want, &lost);
            atomic_store_explicit(&t->pub_pos, t->pos, memory_order_release);
            if (lost) {
                take_note_loss(t, t->file_frames, lost, take_now_ns(CLOCK_REALTIME),
                          "the writer fell behind the ring");
                if (!t->cfg.no_gap_fill && n > 0) {
                    /* the frames read come after the gap: keep them for after its silence */
                    take_gap_hold(&t->gap, (size_t)n);
                    continue;
                }
            }
        }
        if (n > 0 && silence) {
            memset(t->pcm, 0, (size_t)n * ch * sizeof *t->pcm);
        } else if (n > 0) {
            size_t ns = (size_t)n * ch;
            int converted = 0;
            if (s32_mask) {
                /* a 32-bit word stored at fewer bits must really have zero low bits;
                 * otherwise go on at 32 bits in a new file rather than drop them.
                 * Check and convert in one pass (this loop runs on every sample) */
                uint32_t any = audio_s32_to_int32_check(raw, ns, 32 - t->bits, t->pcm);
                converted = 1;
                if (any & s32_mask) {
                    converted = 0;
                    if (t->auto_bits && t->file_frames == 0 && t->st.files == 1)
                        log_info("take", "the low bits of the 32-bit words are in use: "
                                 "storing 32 bits");
                    else
                        log_warn("take", "the device delivers more than %u bits: going on at "
                                 "32 bits in a new file", t->bits);
                    uint64_t keep = t->pos;
                    t->pos = keep - (uint64_t)n;
                    int rc = take_file_close(t, 1);
                    t->bits = 32;
                    if (rc == 0)
                        rc = take_file_open(t);
                    t->pos = keep;
                    t->file_first_pos = keep - (uint64_t)n;
                    if (rc < 0) {
                        end = rc == -ENOSPC ? TAKE_DISK_FULL : TAKE_FAILED;
                        err = rc;
                        goto out;
                    }
                }
            }
            if (!converted)
                audio_samples_to_int32(raw, t->fmt.sample, ns, t->bits, t->pcm);
        }
        if (n > 0) {
            int rc = flac_writer_process(t->w, t->pcm, (size_t)n);
            if (rc < 0) {
                end = rc == -ENOSPC || rc == -EDQUOT ? TAKE_DISK_FULL : TAKE_FAILED;
                err = rc;
                log_err("take", "writing %s failed: %s; the file keeps what was written",
                        t->part, strerror(-rc));
                break;
            }
            t->file_frames += (uint64_t)n;
            t->frames_total += (uint64_t)n;
            pthread_mutex_lock(&t->lock);
            t->st.frames = t->frames_total;
            t->st.seconds = (double)t->frames_total / t->fmt.rate;
            t->st.bytes = t->bytes_done + flac_writer_bytes(t->w);
            if (t->read_wake_pos && t->pos >= t->read_wake_pos) {
                t->read_wake_pos = 0;
                pthread_cond_broadcast(&t->read_cond);
            }
            pthread_mutex_unlock(&t->lock);
            if (t->cfg.max_frames && t->frames_total >= t->cfg.max_frames) {
                end = TAKE_LIMIT;
                break;
            }
            int split = (t->cfg.split_frames && t->file_frames >= t->cfg.split_frames) ||
                        (t->cfg.split_bytes && flac_writer_bytes(t->w) >= t->cfg.split_bytes);
            if (split && !(stopping && t->pos >= stop_pos)) {
                take_poll_capture_losses(t);
                int rc2 = take_file_close(t, 0);
                if (rc2 == 0)
                    rc2 = take_file_open(t);
                if (rc2 < 0) {
                    end = rc2 == -ENOSPC ? TAKE_DISK_FULL : TAKE_FAILED;
                    err = rc2;
                    goto out;
                }
                last_flush = take_now_ns(CLOCK_MONOTONIC);
            }
            if (take_disk_low(t)) {
                log_warn("take", "less than %" PRIu64 " bytes free: stopping the take",
                         take_min_free(t));
                end = TAKE_DISK_FULL;
                err = -ENOSPC;
                break;
            }
        } else {
            int rc = audio_ring_wait(t->ring, t->pos, 100);
            if (rc == -EPIPE) {
                enum capture_state cs = capture_get_state(t->cap);
                if (cs == CAPTURE_GONE) {
                    end = TAKE_DEVICE_GONE;
                    err = -ENODEV;
                } else if (cs == CAPTURE_FAILED) {
                    end = TAKE_FAILED;
                    err = capture_error(t->cap) ? capture_error(t->cap) : -EIO;
                }
                break;
            }
        }
        take_poll_capture_losses(t);
        int64_t now = take_now_ns(CLOCK_MONOTONIC);
        if (now - last_flush >= (int64_t)t->cfg.flush_ms * 1000000LL) {
            last_flush = now;
            int rc = take_file_flush(t);
            if (rc < 0) {
                end = rc == -ENOSPC ? TAKE_DISK_FULL : TAKE_FAILED;
                err = rc;
                break;
            }
        }
    }
out:
    take_poll_capture_losses(t);
    {
        int rc = take_file_close(t, 0);
        if (rc < 0 && !err) {
            err = rc;
            end = rc == -ENOSPC ? TAKE_DISK_FULL : TAKE_FAILED;
        }
    }
    pthread_mutex_lock(&t->lock);
    t->st.state = end;
    if (err && !t->st.error)
        t->st.error = err;
    t->st.frames = t->frames_total;
    t->st.seconds = (double)t->frames_total / t->fmt.rate;
    t->ended = 1;
    pthread_cond_broadcast(&t->cond);
    pthread_cond_broadcast(&t->read_cond);
    pthread_mutex_unlock(&t->lock);
    return NULL;
}
