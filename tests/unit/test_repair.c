/* Unit tests of flac_repair: files cut at every kind of place are finalized to exactly
 * their whole frames; non-FLAC and damaged-in-the-middle files are left untouched; a
 * repaired .part never replaces an existing .flac. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "store/flac_repair.h"
#include "store/flac_writer.h"

#include <FLAC/stream_decoder.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[256];
static uint8_t *full;      /* a complete, unfinished-looking stream: flushed, not finished */
static size_t full_len;
static int32_t *samples;
#define FRAMES 50000u

static int setup(void **st)
{
    (void)st;
    snprintf(dir, sizeof dir, "/tmp/pirec-test-repair.XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    samples = malloc(FRAMES * 2 * sizeof *samples);
    uint32_t x = 99;
    for (size_t i = 0; i < FRAMES * 2; i++) {
        x = x * 1103515245u + 12345u;
        samples[i] = (int32_t)(((int64_t)(int32_t)x) >> 16) / 4 + (int32_t)(i % 300) * 20;
    }
    char path[300];
    snprintf(path, sizeof path, "%s/src.flac", dir);
    struct flac_writer_config cfg = {.rate = 48000, .channels = 2, .bits = 16, .compression = 5};
    struct flac_writer *w;
    if (flac_writer_open(&w, path, &cfg) || flac_writer_process(w, samples, FRAMES) ||
        flac_writer_finish(w, NULL, 0))
        return -1;
    FILE *f = fopen(path, "rb");
    full = malloc(1 << 22);
    full_len = fread(full, 1, 1 << 22, f);
    fclose(f);
    /* pretend nothing was ever refreshed: total samples 0, no MD5 (a crash before the
     * first flush) */
    memset(full + 8 + 13, full[8 + 13] & 0xF0, 1);
    memset(full + 8 + 14, 0, 4 + 16);
    return 0;
}

static int teardown(void **st)
{
    (void)st;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    free(full);
    free(samples);
    return system(cmd) == 0 ? 0 : -1;
}

static void write_file(const char *path, const uint8_t *b, size_t n)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(b, 1, n, f), n);
    fclose(f);
}

struct dec {
    size_t n;
    int bad;
    uint64_t total;
};

static FLAC__StreamDecoderWriteStatus dw(const FLAC__StreamDecoder *d, const FLAC__Frame *f,
                                         const FLAC__int32 *const buf[], void *arg)
{
    (void)d;
    struct dec *o = arg;
    for (unsigned i = 0; i < f->header.blocksize; i++, o->n++)
        for (unsigned c = 0; c < 2; c++)
            if (o->n >= FRAMES || buf[c][i] != samples[o->n * 2 + c])
                o->bad = 1;
    return FLAC__STREAM_DECODER_WRITE_STATUS_CONTINUE;
}
static void dm(const FLAC__StreamDecoder *d, const FLAC__StreamMetadata *m, void *arg)
{
    (void)d;
    if (m->type == FLAC__METADATA_TYPE_STREAMINFO)
        ((struct dec *)arg)->total = m->data.stream_info.total_samples;
}
static void de(const FLAC__StreamDecoder *d, FLAC__StreamDecoderErrorStatus s, void *arg)
{
    (void)d;
    (void)s;
    ((struct dec *)arg)->bad = 1;
}

static struct dec decode(const char *path)
{
    struct dec o = {0};
    FLAC__StreamDecoder *d = FLAC__stream_decoder_new();
    FLAC__stream_decoder_set_md5_checking(d, true);
    assert_int_equal(FLAC__stream_decoder_init_file(d, path, dw, dm, de, &o), 0);
    if (!FLAC__stream_decoder_process_until_end_of_stream(d))
        o.bad = 1;
    if (!FLAC__stream_decoder_finish(d))
        o.bad = 1;
    FLAC__stream_decoder_delete(d);
    return o;
}

/* Cut at many places (inside metadata excluded): repair keeps exactly the whole frames. */
static void test_cut_anywhere(void **st)
{
    (void)st;
    size_t cuts[] = {full_len, full_len - 1, full_len - 7, full_len / 2, full_len / 3 + 1,
                     40000, 60000};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        char part[300], final[300];
        snprintf(part, sizeof part, "%s/cut%zu.flac.part", dir, i);
        snprintf(final, sizeof final, "%s/cut%zu.flac", dir, i);
        write_file(part, full, cuts[i]);
        struct repair_result r;
        assert_int_equal(flac_repair_file(part, &r), 0);
        assert_string_equal(r.final_path, final);
        assert_int_not_equal(access(part, F_OK), 0);
        struct dec d = decode(final);
        assert_false(d.bad);
        assert_int_equal(d.total, r.samples);
        assert_int_equal(d.n, r.samples);
        assert_true(r.frames_kept > 0);
        struct stat sb;
        assert_int_equal(stat(final, &sb), 0);
        assert_int_equal((size_t)sb.st_size + r.bytes_dropped, cuts[i]);
        if (i == 0) {
            assert_int_equal(r.samples, FRAMES);
            assert_int_equal(r.bytes_dropped, 0);
        } else {
            assert_true(r.samples < FRAMES);
        }
        /* nothing left to do the second time */
        struct repair_result again;
        assert_int_equal(flac_repair_file(final, &again), 0);
        assert_true(again.already_ok);
    }
}

static void test_never_replaces_existing(void **st)
{
    (void)st;
    char part[300], taken[300], alt[300];
    snprintf(part, sizeof part, "%s/take.flac.part", dir);
    snprintf(taken, sizeof taken, "%s/take.flac", dir);
    snprintf(alt, sizeof alt, "%s/take-1.flac", dir);
    write_file(taken, (const uint8_t *)"precious", 8);
    write_file(part, full, full_len - 100);
    struct repair_result r;
    assert_int_equal(flac_repair_file(part, &r), 0);
    assert_string_equal(r.final_path, alt);
    struct stat sb;
    assert_int_equal(stat(taken, &sb), 0);
    assert_int_equal(sb.st_size, 8);
    assert_false(decode(alt).bad);
}

static void assert_untouched(const char *path, const uint8_t *b, size_t n)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    uint8_t *got = malloc(n + 1);
    assert_int_equal(fread(got, 1, n + 1, f), n);
    fclose(f);
    assert_memory_equal(got, b, n);
    free(got);
}

static void test_not_flac_untouched(void **st)
{
    (void)st;
    char part[300];
    snprintf(part, sizeof part, "%s/noise.flac.part", dir);
    uint8_t junk[5000];
    for (size_t i = 0; i < sizeof junk; i++)
        junk[i] = (uint8_t)(i * 7 + 3);
    write_file(part, junk, sizeof junk);
    struct repair_result r;
    assert_int_equal(flac_repair_file(part, &r), -EINVAL);
    assert_untouched(part, junk, sizeof junk);
    /* a .flac (not a take being written) cut inside its header */
    char cut[300];
    snprintf(cut, sizeof cut, "%s/cut-header.flac", dir);
    write_file(cut, full, 8200);
    assert_int_equal(flac_repair_file(cut, &r), -EINVAL);
    assert_untouched(cut, full, 8200);
}

static void test_damage_in_middle_untouched(void **st)
{
    (void)st;
    char part[300];
    snprintf(part, sizeof part, "%s/middle.flac.part", dir);
    uint8_t *b = malloc(full_len);
    memcpy(b, full, full_len);
    for (size_t i = full_len / 2; i < full_len / 2 + 50; i++)
        b[i] ^= 0x5A;
    write_file(part, b, full_len);
    struct repair_result r;
    assert_int_equal(flac_repair_file(part, &r), -EBADMSG);
    assert_untouched(part, b, full_len);
    free(b);
}

static uint16_t crc16(const uint8_t *b, size_t n)
{
    uint16_t c = 0;
    for (size_t i = 0; i < n; i++) {
        c ^= (uint16_t)(b[i] << 8);
        for (int k = 0; k < 8; k++)
            c = (uint16_t)((c & 0x8000) ? (c << 1) ^ 0x8005 : c << 1);
    }
    return c;
}

/* Writes n bytes of b as dir/NAME.flac.part and repairs it; final gets dir/NAME.flac. */
static int repair_bytes(const char *name, const uint8_t *b, size_t n, struct repair_result *r,
                        char final[300])
{
    char part[300];
    snprintf(part, sizeof part, "%s/%s.flac.part", dir, name);
    snprintf(final, 300, "%s/%s.flac", dir, name);
    write_file(part, b, n);
    return flac_repair_file(part, r);
}

/* Where the frame holding byte `at` of the full stream starts: repair of a copy cut at
 * `at` keeps exactly the frames before it. */
static size_t frame_start_before(size_t at)
{
    char final[300];
    struct repair_result r;
    assert_int_equal(repair_bytes("probe", full, at, &r, final), 0);
    struct stat sb;
    assert_int_equal(stat(final, &sb), 0);
    unlink(final);
    return (size_t)sb.st_size;
}

/* A torn last frame whose CRC-16 happens to come out 0 at the end of the file (1 in 65536
 * cuts) is still torn: it must be dropped, or `flac -t` fails with LOST_SYNC. The torn
 * bytes are crafted so that their CRC-16 is 0 (their last two bytes are the CRC of the
 * bytes before them). */
static void test_torn_frame_with_zero_crc_dropped(void **st)
{
    (void)st;
    size_t cut = full_len / 2;
    size_t start = frame_start_before(cut);
    assert_true(cut - start > 64); /* well inside the frame, past its header */
    uint8_t *b = malloc(cut);
    memcpy(b, full, cut);
    uint16_t c = crc16(b + start, cut - 2 - start);
    b[cut - 2] = (uint8_t)(c >> 8);
    b[cut - 1] = (uint8_t)c;
    assert_int_equal(crc16(b + start, cut - start), 0);
    char final[300];
    struct repair_result r;
    assert_int_equal(repair_bytes("zerocrc", b, cut, &r, final), 0);
    assert_int_equal(r.bytes_dropped, cut - start);
    struct dec d = decode(final);
    assert_false(d.bad);
    assert_int_equal(d.n, r.samples);
    assert_int_equal(d.total, r.samples);
    free(b);
}

/* End of the metadata blocks: where the first frame starts. */
static size_t audio_start(void)
{
    size_t off = 4;
    for (;;) {
        const uint8_t *h = full + off;
        off += 4 + ((size_t)h[1] << 16 | (size_t)h[2] << 8 | h[3]);
        if (h[0] & 0x80)
            return off;
    }
}

/* A second STREAMINFO (found by fuzzing): decoders would believe it, not the patched
 * first one; such a file is not FLAC and is left alone. */
static void test_second_streaminfo_untouched(void **st)
{
    (void)st;
    size_t a = audio_start(), n = full_len - 100;
    uint8_t *b = malloc(n + 38);
    /* fLaC + STREAMINFO, then a copy of that STREAMINFO block, then the rest */
    memcpy(b, full, 42);
    memcpy(b + 42, full + 4, 38);
    b[42] &= 0x7F;
    memcpy(b + 80, full + 42, n - 42);
    assert_true(a > 42);
    char final[300];
    struct repair_result r;
    assert_int_equal(repair_bytes("twoinfo", b, n + 38, &r, final), -EINVAL);
    char part[310];
    snprintf(part, sizeof part, "%s.part", final);
    assert_untouched(part, b, n + 38);
    free(b);
}

/* SIGKILL right after a split (or after the take started) leaves at most the header and
 * part of the first frame: nothing, part of the header, all of it, a few bytes more. No
 * audio. The take is removed instead of failing at every start; a .flac (not ours to
 * remove) with no frame is left alone. */
static void test_header_only_part_removed(void **st)
{
    (void)st;
    size_t a = audio_start();
    size_t lens[] = {0, 3, 8, 42, 100, a - 1, a, a + 1, a + 100};
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        char part[300], final[300];
        snprintf(part, sizeof part, "%s/empty%zu.flac.part", dir, i);
        snprintf(final, sizeof final, "%s/empty%zu.flac", dir, i);
        write_file(part, full, lens[i]);
        struct repair_result r;
        assert_int_equal(flac_repair_file(part, &r), 0);
        assert_true(r.removed);
        assert_int_not_equal(access(part, F_OK), 0);
        assert_int_not_equal(access(final, F_OK), 0);
    }
    char flac[300];
    snprintf(flac, sizeof flac, "%s/emptyold.flac", dir);
    write_file(flac, full, a);
    struct repair_result r;
    assert_int_equal(flac_repair_file(flac, &r), -EINVAL);
    assert_untouched(flac, full, a);
}

/* The cut falls inside the next frame's header (a few bytes of it made it to disk): the
 * whole frame before it is kept, also when it is the first one (the take is not empty). */
static void test_torn_header_keeps_frame_before(void **st)
{
    (void)st;
    size_t a = audio_start(), f1 = 0;
    for (size_t p = a + 16; p + 5 < full_len && !f1; p++)
        if (full[p] == 0xFF && full[p + 1] == 0xF8 && full[p + 4] == 1)
            f1 = p; /* frame number 1: fixed block size, number in byte 4 */
    assert_true(f1 > 0);
    size_t s = frame_start_before(full_len / 2);
    size_t ends[] = {f1, s};
    for (size_t i = 0; i < 2; i++) {
        for (size_t torn = 1; torn < 8; torn += 3) {
            char name[32], final[300];
            snprintf(name, sizeof name, "th%zu_%zu", i, torn);
            struct repair_result r;
            assert_int_equal(repair_bytes(name, full, ends[i] + torn, &r, final), 0);
            assert_false(r.removed);
            assert_int_equal(r.bytes_dropped, torn);
            if (i == 0)
                assert_int_equal(r.frames_kept, 1);
            struct dec d = decode(final);
            assert_false(d.bad);
            assert_int_equal(d.n, r.samples);
        }
    }
}

/* x.flac.part may be a symbolic link to a file elsewhere: repair must neither follow it
 * nor truncate the target, whether named directly or found in a folder. */
static void test_symlink_not_followed(void **st)
{
    (void)st;
    char in[300], out[300], target[400], sym[400];
    snprintf(in, sizeof in, "%s/in", dir);
    snprintf(out, sizeof out, "%s/outside", dir);
    assert_int_equal(mkdir(in, 0755), 0);
    assert_int_equal(mkdir(out, 0755), 0);
    snprintf(target, sizeof target, "%s/victim.flac.part", out);
    snprintf(sym, sizeof sym, "%s/x.flac.part", in);
    size_t n = full_len - 777; /* a torn take: repair would truncate it */
    write_file(target, full, n);
    assert_int_equal(symlink(target, sym), 0);
    struct repair_result r;
    assert_int_equal(flac_repair_file(sym, &r), -ELOOP);
    unsigned failed = 0;
    assert_int_equal(flac_repair_dir_each(in, NULL, NULL, &failed), 0);
    assert_int_equal(failed, 1);
    assert_untouched(target, full, n);
    struct stat sb;
    assert_int_equal(lstat(sym, &sb), 0);
    assert_true(S_ISLNK(sb.st_mode));
    /* a hard link to a file of another folder is left alone too */
    char hard[400];
    snprintf(hard, sizeof hard, "%s/h.flac.part", in);
    assert_int_equal(link(target, hard), 0);
    assert_int_equal(flac_repair_file(hard, &r), -EMLINK);
    assert_untouched(target, full, n);
}

/* An empty folder has nothing to repair (it passed NULL to qsort before). */
static void test_empty_dir(void **st)
{
    (void)st;
    char empty[300];
    snprintf(empty, sizeof empty, "%s/void", dir);
    assert_int_equal(mkdir(empty, 0755), 0);
    unsigned failed = 7;
    assert_int_equal(flac_repair_dir_each(empty, NULL, NULL, &failed), 0);
    assert_int_equal(failed, 0);
}

static void test_dir(void **st)
{
    (void)st;
    char sub[300], p[400];
    snprintf(sub, sizeof sub, "%s/d", dir);
    mkdir(sub, 0755);
    for (int i = 0; i < 3; i++) {
        snprintf(p, sizeof p, "%s/t%d.flac.part", sub, i);
        write_file(p, full, full_len - (size_t)i * 1000);
    }
    snprintf(p, sizeof p, "%s/other.txt", sub);
    write_file(p, (const uint8_t *)"x", 1);
    assert_int_equal(flac_repair_dir(sub), 3);
    snprintf(p, sizeof p, "%s/t2.flac", sub);
    assert_false(decode(p).bad);
    assert_int_equal(flac_repair_dir("/nonexistent-pirec-dir"), -ENOENT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cut_anywhere),
        cmocka_unit_test(test_never_replaces_existing),
        cmocka_unit_test(test_not_flac_untouched),
        cmocka_unit_test(test_damage_in_middle_untouched),
        cmocka_unit_test(test_second_streaminfo_untouched),
        cmocka_unit_test(test_torn_frame_with_zero_crc_dropped),
        cmocka_unit_test(test_header_only_part_removed),
        cmocka_unit_test(test_torn_header_keeps_frame_before),
        cmocka_unit_test(test_symlink_not_followed),
        cmocka_unit_test(test_empty_dir),
        cmocka_unit_test(test_dir),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
