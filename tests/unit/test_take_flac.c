/* Unit tests of the FLAC writer under the take, through its queue and disk thread as a
 * take runs it: bit-exact at 16/24/32 bits (also with a queue of one frame, so the encoder
 * waits for the disk), STREAMINFO refreshed by flush (what a crash leaves), loss comments
 * rewritten in place, a disk that fills in the middle of a frame; and take_wait, which a
 * wall-clock step must not cut short. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "audio/capture.h"
#include "store/flac_repair.h"
#include "store/flac_writer.h"
#include "store/take.h"

#include <FLAC/metadata.h>
#include <FLAC/stream_decoder.h>

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* A Pi without a real-time clock steps CLOCK_REALTIME at the NTP sync, often by months.
 * This binary's own clock_gettime (it takes precedence over libc's for the code linked
 * in) shows CLOCK_REALTIME shifted by wall_shift_s, so a test can step the wall clock of
 * the code under test without touching the machine's. */
static _Atomic long wall_shift_s;

int clock_gettime(clockid_t clk, struct timespec *ts)
{
    int rc = (int)syscall(SYS_clock_gettime, clk, ts);
    if (rc == 0 && clk == CLOCK_REALTIME)
        ts->tv_sec += atomic_load(&wall_shift_s);
    return rc;
}

struct decoded {
    int32_t *s;
    size_t n, cap;      /* samples (interleaved) */
    unsigned channels, bits;
    uint64_t total;
};

static FLAC__StreamDecoderWriteStatus dec_write(const FLAC__StreamDecoder *d,
                                                const FLAC__Frame *f,
                                                const FLAC__int32 *const buf[], void *arg)
{
    (void)d;
    struct decoded *o = arg;
    size_t need = o->n + (size_t)f->header.blocksize * f->header.channels;
    if (need > o->cap) {
        o->cap = need * 2;
        o->s = realloc(o->s, o->cap * sizeof *o->s);
    }
    for (unsigned i = 0; i < f->header.blocksize; i++)
        for (unsigned c = 0; c < f->header.channels; c++)
            o->s[o->n++] = buf[c][i];
    return FLAC__STREAM_DECODER_WRITE_STATUS_CONTINUE;
}

static void dec_meta(const FLAC__StreamDecoder *d, const FLAC__StreamMetadata *m, void *arg)
{
    (void)d;
    struct decoded *o = arg;
    if (m->type == FLAC__METADATA_TYPE_STREAMINFO) {
        o->channels = m->data.stream_info.channels;
        o->bits = m->data.stream_info.bits_per_sample;
        o->total = m->data.stream_info.total_samples;
    }
}

static int dec_errors;
static void dec_err(const FLAC__StreamDecoder *d, FLAC__StreamDecoderErrorStatus s, void *arg)
{
    (void)d;
    (void)s;
    (void)arg;
    dec_errors++;
}

/* Decodes with MD5 checking; returns 0 when libFLAC says the file is fine. */
static int decode(const char *path, struct decoded *o)
{
    memset(o, 0, sizeof *o);
    dec_errors = 0;
    FLAC__StreamDecoder *d = FLAC__stream_decoder_new();
    FLAC__stream_decoder_set_md5_checking(d, true);
    if (FLAC__stream_decoder_init_file(d, path, dec_write, dec_meta, dec_err, o) !=
        FLAC__STREAM_DECODER_INIT_STATUS_OK) {
        FLAC__stream_decoder_delete(d);
        return -1;
    }
    FLAC__bool ok = FLAC__stream_decoder_process_until_end_of_stream(d);
    FLAC__bool md5 = FLAC__stream_decoder_finish(d);
    FLAC__stream_decoder_delete(d);
    return ok && md5 && dec_errors == 0 ? 0 : -1;
}

static char dir[256];

static int setup(void **st)
{
    (void)st;
    snprintf(dir, sizeof dir, "/tmp/pirec-test-take-flac.XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **st)
{
    (void)st;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* Noise-like but deterministic content using the full depth. */
static int32_t *make_samples(size_t frames, unsigned ch, unsigned bits)
{
    int32_t *s = malloc(frames * ch * sizeof *s);
    uint32_t x = 12345;
    for (size_t i = 0; i < frames * ch; i++) {
        x = x * 1664525u + 1013904223u;
        int64_t v = (int32_t)x;
        s[i] = (int32_t)(v >> (32 - bits));
    }
    return s;
}

static const char *comments[] = {"DEVICE=test", "ENCODER=pirec test"};

static void roundtrip(unsigned bits)
{
    char path[300];
    snprintf(path, sizeof path, "%s/rt%u.flac", dir, bits);
    /* at 24 bits a queue of one frame: every process() waits for the disk thread */
    struct flac_writer_config cfg = {.rate = 48000, .channels = 2, .bits = bits,
                                     .compression = 5, .comments = comments, .n_comments = 2,
                                     .queue_bytes = bits == 24 ? 1 : 0};
    struct flac_writer *w;
    assert_int_equal(flac_writer_open(&w, path, &cfg), 0);
    size_t frames = 48000 + 77;
    int32_t *s = make_samples(frames, 2, bits);
    /* in uneven pieces, like the ring hands them over */
    size_t done = 0, step = 1000;
    while (done < frames) {
        size_t n = frames - done < step ? frames - done : step;
        assert_int_equal(flac_writer_process(w, s + done * 2, n), 0);
        done += n;
        step = step * 3 % 4099 + 1;
    }
    const char *extra[] = {"PIREC_LOSSES=1:10", "PIREC_LOSS=100+10@2026-01-01T00:00:00+00:00"};
    assert_int_equal(flac_writer_finish(w, extra, 2), 0);

    struct decoded d;
    assert_int_equal(decode(path, &d), 0);
    assert_int_equal(d.bits, bits);
    assert_int_equal(d.total, frames);
    assert_int_equal(d.n, frames * 2);
    assert_memory_equal(d.s, s, frames * 2 * sizeof *s);
    free(d.s);
    free(s);

    FLAC__StreamMetadata *tags = NULL;
    assert_true(FLAC__metadata_get_tags(path, &tags));
    assert_int_equal(tags->data.vorbis_comment.num_comments, 4);
    assert_memory_equal(tags->data.vorbis_comment.comments[2].entry, "PIREC_LOSSES=1:10", 17);
    FLAC__metadata_object_delete(tags);
}

static void test_bitexact_16(void **st) { (void)st; roundtrip(16); }
static void test_bitexact_24(void **st) { (void)st; roundtrip(24); }
static void test_bitexact_32(void **st) { (void)st; roundtrip(32); }

static int copy_file(const char *from, const char *to, off_t len)
{
    FILE *a = fopen(from, "rb"), *b = fopen(to, "wb");
    if (!a || !b)
        return -1;
    char buf[65536];
    size_t n;
    off_t left = len;
    while (left > 0 && (n = fread(buf, 1, left < (off_t)sizeof buf ? (size_t)left : sizeof buf, a)) > 0) {
        fwrite(buf, 1, n, b);
        left -= (off_t)n;
    }
    fclose(a);
    fclose(b);
    return 0;
}

/* What a crash right after a flush leaves is a FLAC file that says how long it is. */
static void test_flush_makes_file_readable(void **st)
{
    (void)st;
    char path[300], copy[320];
    snprintf(path, sizeof path, "%s/flush.flac.part", dir);
    snprintf(copy, sizeof copy, "%s/copy.flac", dir);
    struct flac_writer_config cfg = {.rate = 44100, .channels = 1, .bits = 16,
                                     .compression = 5, .comments = comments, .n_comments = 2};
    struct flac_writer *w;
    assert_int_equal(flac_writer_open(&w, path, &cfg), 0);
    int32_t *s = make_samples(100000, 1, 16);
    assert_int_equal(flac_writer_process(w, s, 100000), 0);
    uint64_t whole = flac_writer_samples(w);
    assert_true(whole > 0 && whole <= 100000);
    const char *extra[] = {"PIREC_LOSSES=0:0"};
    assert_int_equal(flac_writer_flush(w, extra, 1), 0);
    /* the disk thread writes the frames and then the snapshot: wait until it is done */
    struct timespec dl;
    clock_gettime(CLOCK_MONOTONIC, &dl);
    dl.tv_sec += 60;
    for (;;) {
        if (flac_writer_queued(w, NULL) == 0)
            break;
        struct timespec now, nap = {0, 2000000};
        clock_gettime(CLOCK_MONOTONIC, &now);
        assert_true(now.tv_sec < dl.tv_sec);
        nanosleep(&nap, NULL);
    }
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal((uint64_t)sb.st_size, flac_writer_bytes(w));
    assert_int_equal(copy_file(path, copy, sb.st_size), 0);

    struct decoded d;
    /* MD5 is zero (unknown) until the end, so the decoder skips that check */
    assert_int_equal(decode(copy, &d), 0);
    assert_int_equal(d.total, whole);
    assert_int_equal(d.n, whole);
    assert_memory_equal(d.s, s, whole * sizeof *s);
    free(d.s);
    assert_int_equal(flac_writer_finish(w, NULL, 0), 0);
    free(s);
}

/* The disk fills in the middle of a frame: the file ends at the last whole frame,
 * STREAMINFO says so, and the error comes back. */
static void test_write_error_leaves_valid_file(void **st)
{
    (void)st;
    char path[300];
    snprintf(path, sizeof path, "%s/full.flac", dir);
    struct flac_writer_config cfg = {.rate = 48000, .channels = 2, .bits = 24,
                                     .compression = 5, .comments = comments, .n_comments = 2};
    struct flac_writer *w;
    assert_int_equal(flac_writer_open(&w, path, &cfg), 0);
    flac_writer_test_fail_after(w, 100000);
    int32_t *s = make_samples(96000, 2, 24);
    /* the disk thread meets the error; process() sees it only if it came in time */
    int rc = flac_writer_process(w, s, 96000);
    assert_true(rc == 0 || rc == -ENOSPC);
    uint64_t whole = 0;
    assert_int_equal(flac_writer_finish_ex(w, NULL, 0, &whole), -ENOSPC);
    assert_true(whole > 0 && whole < 96000);
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    assert_true(sb.st_size <= 100000);
    struct decoded d;
    assert_int_equal(decode(path, &d), 0);
    assert_int_equal(d.total, whole);
    assert_int_equal(d.n, whole * 2);
    assert_memory_equal(d.s, s, whole * 2 * sizeof *s);
    free(d.s);
    free(s);
}

static void test_never_overwrites(void **st)
{
    (void)st;
    char path[300];
    snprintf(path, sizeof path, "%s/exists.flac", dir);
    FILE *f = fopen(path, "w");
    fputs("precious", f);
    fclose(f);
    struct flac_writer_config cfg = {.rate = 48000, .channels = 2, .bits = 16,
                                     .compression = 5};
    struct flac_writer *w;
    assert_int_equal(flac_writer_open(&w, path, &cfg), -EEXIST);
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(sb.st_size, 8);
}

static void test_bad_format_refused(void **st)
{
    (void)st;
    char path[300];
    snprintf(path, sizeof path, "%s/bad.flac", dir);
    struct flac_writer_config cfg = {.rate = 48000, .channels = 2, .bits = 20,
                                     .compression = 5};
    struct flac_writer *w;
    assert_int_equal(flac_writer_open(&w, path, &cfg), -EINVAL);
    assert_int_not_equal(access(path, F_OK), 0);
}

/* take_wait waits for the take to end however the wall clock moves: with the clock an
 * hour behind, a deadline taken from CLOCK_REALTIME is already past and the wait gave up
 * at once. */
static void test_take_wait_ignores_wall_clock_steps(void **st)
{
    (void)st;
    struct audio_source *src;
    struct audio_format fmt = {.sample = SF_S16_LE, .rate = 48000, .channels = 2};
    assert_int_equal(audio_source_open_tone(&src, &fmt), 0);
    struct capture *cap;
    struct capture_config cc = {.ring_seconds = 4};
    assert_int_equal(capture_start(&cap, src, &cc), 0);
    char d[300];
    snprintf(d, sizeof d, "%s/wait", dir);
    struct take_config tc = {.dir = d, .device_id = "tone", .max_frames = 48000 / 5,
                             .min_free_bytes = 1 << 20};
    struct take *t;
    assert_int_equal(take_start(&t, cap, &tc, audio_ring_write_pos(capture_ring(cap))), 0);
    atomic_store(&wall_shift_s, -3600);
    int rc = take_wait(t, 60000); /* the take ends after 0.2 s of tone */
    atomic_store(&wall_shift_s, 0);
    struct take_status fs;
    take_stop(t, &fs);
    capture_stop(cap);
    assert_int_equal(rc, 0);
    assert_int_equal(fs.state, TAKE_LIMIT);
    assert_int_equal(fs.frames, 48000 / 5);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bitexact_16),
        cmocka_unit_test(test_bitexact_24),
        cmocka_unit_test(test_bitexact_32),
        cmocka_unit_test(test_flush_makes_file_readable),
        cmocka_unit_test(test_write_error_leaves_valid_file),
        cmocka_unit_test(test_never_overwrites),
        cmocka_unit_test(test_bad_format_refused),
        cmocka_unit_test(test_take_wait_ignores_wall_clock_steps),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
