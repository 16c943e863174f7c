/* Fuzzes FLAC repair (src/store/flac_repair.c), which reads whatever a crash, a full disk
 * or a stranger with access to the folder left as x.flac.part. Two kinds of input:
 *   first byte even: the rest is the .part file as it is;
 *   first byte odd:  bytes 1-4 pick a cut of a real take (made at start-up), the rest is
 *                    appended to it (a torn write, garbage, a forged frame).
 * Checked: a file repair refuses is left byte for byte as it was; a file it repairs
 * decodes with libFLAC without any error and holds the samples STREAMINFO says; from a
 * real take, its MD5 checks too (a .part as found may carry any MD5: repair keeps the
 * one of a complete file without decoding it all, and only a damaged one mismatches). */
#define FUZZ_OWN_INIT
#include "fuzz_util.h"

#include "store/flac_repair.h"
#include "store/flac_writer.h"

#include <FLAC/stream_decoder.h>

#include <errno.h>
#include <sys/stat.h>

static char dir[64], part[96], final[96];
static uint8_t *take;
static size_t take_len;

static void cleanup(void)
{
    unlink(part);
    unlink(final);
    rmdir(dir);
}

static int read_all(const char *path, uint8_t **out, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    *out = malloc(n > 0 ? (size_t)n : 1);
    *len = fread(*out, 1, (size_t)n, f);
    fclose(f);
    return 0;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_quiet();
    const char *tmp = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(dir, sizeof dir, "%s/pirec-fuzz-repair.XXXXXX", tmp);
    if (!mkdtemp(dir))
        abort();
    atexit(cleanup);
    snprintf(part, sizeof part, "%s/x.flac.part", dir);
    snprintf(final, sizeof final, "%s/x.flac", dir);
    /* a real take of 2 s mono 16-bit noise-like audio, small frames so cuts vary */
    struct flac_writer_config cfg = {.rate = 8000, .channels = 1, .bits = 16,
                                     .compression = 5, .blocksize = 576, .padding = 64};
    struct flac_writer *w;
    static int32_t s[16000];
    uint32_t x = 7;
    for (size_t i = 0; i < 16000; i++) {
        x = x * 1103515245u + 12345u;
        s[i] = (int32_t)(i % 400) * 50 - 10000 + (int32_t)(x >> 24);
    }
    if (flac_writer_open(&w, final, &cfg) || flac_writer_process(w, s, 16000) ||
        flac_writer_finish(w, NULL, 0) || read_all(final, &take, &take_len))
        abort();
    unlink(final);
    return 0;
}

struct dec {
    uint64_t n;
    int bad;
    uint64_t total;
};

static FLAC__StreamDecoderWriteStatus dw(const FLAC__StreamDecoder *d, const FLAC__Frame *f,
                                         const FLAC__int32 *const b[], void *arg)
{
    (void)d;
    (void)b;
    ((struct dec *)arg)->n += f->header.blocksize;
    return FLAC__STREAM_DECODER_WRITE_STATUS_CONTINUE;
}

static void dm(const FLAC__StreamDecoder *d, const FLAC__StreamMetadata *m, void *arg)
{
    (void)d;
    if (m->type == FLAC__METADATA_TYPE_STREAMINFO)
        ((struct dec *)arg)->total = m->data.stream_info.total_samples;
}

static void de(const FLAC__StreamDecoder *d, FLAC__StreamDecoderErrorStatus st, void *arg)
{
    (void)d;
    (void)st;
    ((struct dec *)arg)->bad = 1;
}

static void check_decodes(const char *path, uint64_t samples, int md5)
{
    struct dec o = {0};
    FLAC__StreamDecoder *d = FLAC__stream_decoder_new();
    FLAC__stream_decoder_set_md5_checking(d, md5);
    if (FLAC__stream_decoder_init_file(d, path, dw, dm, de, &o) !=
        FLAC__STREAM_DECODER_INIT_STATUS_OK)
        abort();
    if (!FLAC__stream_decoder_process_until_end_of_stream(d) ||
        !FLAC__stream_decoder_finish(d))
        o.bad = 1;
    FLAC__stream_decoder_delete(d);
    if (o.bad || o.n != samples || o.total != samples) {
        fprintf(stderr, "repaired file does not decode cleanly: bad=%d decoded=%llu "
                "streaminfo=%llu repair said=%llu\n", o.bad, (unsigned long long)o.n,
                (unsigned long long)o.total, (unsigned long long)samples);
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > (1u << 20))
        return 0;
    uint8_t *file;
    size_t len;
    int cut_of_take = data[0] & 1;
    if (cut_of_take) {
        if (size < 5)
            return 0;
        uint32_t cut = (uint32_t)data[1] << 24 | (uint32_t)data[2] << 16 |
                       (uint32_t)data[3] << 8 | data[4];
        cut %= (uint32_t)take_len + 1;
        len = cut + (size - 5);
        file = malloc(len ? len : 1);
        memcpy(file, take, cut);
        memcpy(file + cut, data + 5, size - 5);
    } else {
        len = size - 1;
        file = fuzz_copy(data + 1, len);
    }
    FILE *f = fopen(part, "wb");
    if (!f || fwrite(file, 1, len, f) != len || fclose(f) != 0)
        abort();
    struct repair_result r;
    int rc = flac_repair_file(part, &r);
    if (rc < 0) {
        uint8_t *back;
        size_t blen;
        if (read_all(part, &back, &blen) < 0 || blen != len || memcmp(back, file, len))
            abort(); /* refused, yet changed */
        free(back);
    } else if (!r.removed) {
        if (strcmp(r.final_path, final) != 0)
            abort();
        check_decodes(final, r.samples, cut_of_take);
    }
    unlink(part);
    unlink(final);
    free(file);
    return 0;
}
