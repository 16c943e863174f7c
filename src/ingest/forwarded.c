/*
 * ingest forwarded: see forwarded.h. The MD5 check decodes the whole copy (seconds for an
 * hour of 192 kHz audio), so it runs on its own thread and never holds up the service
 * thread; its result is kept by name until the recorder asks again.
 */
#include "ingest/forwarded.h"

#include "common/log.h"
#include "ingest/store.h"

#include <FLAC/stream_decoder.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum verdict { V_RUNNING, V_OK, V_FAILED };

struct check {
    struct check *next;
    char main[256];           /* the copy's flat stream name */
    char rec[64], dev[64], file[256];
    uint64_t size;
    size_t hlen;
    uint8_t *header;
    enum verdict verdict;     /* under lock */
    pthread_t thread;
    char head[256];           /* the head's stream name */
    uint8_t *msg;             /* the head message, held until the copy is verified */
    size_t mlen;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct check *checks;
static char *base_dir;

int forwarded_init(const char *dir)
{
    free(base_dir);
    base_dir = strdup(dir);
    return base_dir ? 0 : -ENOMEM;
}

void forwarded_shutdown(void)
{
    pthread_mutex_lock(&lock);
    struct check *c = checks;
    checks = NULL;
    pthread_mutex_unlock(&lock);
    while (c) {
        struct check *n = c->next;
        pthread_join(c->thread, NULL);
        free(c->header);
        free(c->msg);
        free(c);
        c = n;
    }
    free(base_dir);
    base_dir = NULL;
}

int forwarded_is_head(const char *name, size_t len)
{
    return len > 9 && memcmp(name, "fwd~", 4) == 0 && memcmp(name + len - 5, ".head", 5) == 0;
}

/* A folder name: [A-Za-z0-9._-], not starting with '.' or '-'. */
static int folder_ok(const char *s, size_t n)
{
    if (n == 0 || n >= 64 || s[0] == '.' || s[0] == '-')
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '.' && s[i] != '_' && s[i] != '-')
            return 0;
    return 1;
}

/* "fwd~REC~DEV~FILE.head" -> the parts. The ingest already checked the whole name. */
static int split_name(const char *name, size_t len, struct check *c)
{
    size_t mlen = len - 5;
    if (mlen >= sizeof c->main)
        return -EINVAL;
    memcpy(c->main, name, mlen);
    c->main[mlen] = 0;
    char *rec = c->main + 4;
    char *t1 = strchr(rec, '~');
    char *t2 = t1 ? strchr(t1 + 1, '~') : NULL;
    if (!t1 || !t2 || !folder_ok(rec, (size_t)(t1 - rec)) ||
        !folder_ok(t1 + 1, (size_t)(t2 - t1 - 1)) || !t2[1] || t2[1] == '.')
        return -EINVAL;
    snprintf(c->rec, sizeof c->rec, "%.*s", (int)(t1 - rec), rec);
    snprintf(c->dev, sizeof c->dev, "%.*s", (int)(t2 - t1 - 1), t1 + 1);
    snprintf(c->file, sizeof c->file, "%s", t2 + 1);
    return 0;
}

/* "pirec-forward-head 1 SIZE HLEN MD5\n" + HLEN header bytes whose STREAMINFO holds MD5. */
static int parse_head(const uint8_t *p, size_t n, struct check *c, const char **why)
{
    const uint8_t *nl = memchr(p, '\n', n < 200 ? n : 200);
    char line[201];
    if (!nl) {
        *why = "no header line";
        return -EINVAL;
    }
    memcpy(line, p, (size_t)(nl - p));
    line[nl - p] = 0;
    uint64_t size;
    unsigned long long hlen;
    char md5[33];
    int used = 0;
    if (sscanf(line, "pirec-forward-head 1 %" SCNu64 " %llu %32[0-9a-f]%n", &size, &hlen, md5,
               &used) != 3 || line[used] != 0 || strlen(md5) != 32) {
        *why = "the header line is not 'pirec-forward-head 1 SIZE HLEN MD5'";
        return -EINVAL;
    }
    const uint8_t *h = nl + 1;
    if ((size_t)(p + n - h) != hlen || hlen < 42 || memcmp(h, "fLaC", 4) != 0 ||
        hlen > size) {
        *why = "the FLAC header does not match its announced length";
        return -EINVAL;
    }
    char have[33];
    for (int i = 0; i < 16; i++)
        snprintf(have + 2 * i, 3, "%02x", h[26 + i]);
    if (strcmp(have, md5) != 0) {
        *why = "the MD5 of the line differs from the one in STREAMINFO";
        return -EINVAL;
    }
    c->size = size;
    c->hlen = (size_t)hlen;
    c->header = malloc(c->hlen);
    if (!c->header)
        return -ENOMEM;
    memcpy(c->header, h, c->hlen);
    return 0;
}

/* ---- the check: patch, decode with MD5 checking, move into REC/DEV/ ------------------- */

struct decode_state {
    int error;
};

static FLAC__StreamDecoderWriteStatus dec_write(const FLAC__StreamDecoder *d,
                                                const FLAC__Frame *f,
                                                const FLAC__int32 *const buf[], void *arg)
{
    (void)d, (void)f, (void)buf, (void)arg;
    return FLAC__STREAM_DECODER_WRITE_STATUS_CONTINUE;
}

static void dec_error(const FLAC__StreamDecoder *d, FLAC__StreamDecoderErrorStatus st,
                      void *arg)
{
    (void)d, (void)st;
    ((struct decode_state *)arg)->error = 1;
}

/* 0 when the file decodes without error, has an MD5, and the MD5 of its samples matches. */
static int decode_md5(int fd, const char **why)
{
    int dfd = dup(fd);
    FILE *fp = dfd >= 0 ? fdopen(dfd, "rb") : NULL;
    if (!fp) {
        if (dfd >= 0)
            close(dfd);
        *why = "cannot read the copy";
        return -EIO;
    }
    FLAC__StreamDecoder *d = FLAC__stream_decoder_new();
    if (!d) {
        fclose(fp);
        return -ENOMEM;
    }
    FLAC__stream_decoder_set_md5_checking(d, true);
    struct decode_state ds = {0};
    if (FLAC__stream_decoder_init_FILE(d, fp, dec_write, NULL, dec_error, &ds) !=
        FLAC__STREAM_DECODER_INIT_STATUS_OK) {
        FLAC__stream_decoder_delete(d);   /* closes fp only after a successful init */
        fclose(fp);
        *why = "libFLAC cannot open the copy";
        return -EIO;
    }
    int ok = FLAC__stream_decoder_process_until_end_of_stream(d);
    ok = ok && FLAC__stream_decoder_get_state(d) == FLAC__STREAM_DECODER_END_OF_STREAM;
    int md5_ok = FLAC__stream_decoder_finish(d);   /* false: MD5 mismatch */
    FLAC__stream_decoder_delete(d);
    if (!ok || ds.error) {
        *why = "the copy does not decode cleanly";
        return -EIO;
    }
    if (!md5_ok) {
        *why = "the MD5 of the copy's samples differs from the recorder's";
        return -EIO;
    }
    return 0;
}

/* Opens (creating) folder `name` in dirfd, refusing a symlink. */
static int sub_dir(int dirfd, const char *name)
{
    if (mkdirat(dirfd, name, 0755) < 0 && errno != EEXIST)
        return -errno;
    int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    return fd < 0 ? -errno : fd;
}

static int run_check(struct check *c, const char **why)
{
    int dirfd = open(base_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dirfd < 0) {
        *why = "cannot open the ingest folder";
        return -errno;
    }
    int recfd = -1, devfd = -1, fd = -1, rc;
    if ((recfd = sub_dir(dirfd, c->rec)) < 0 || (devfd = sub_dir(recfd, c->dev)) < 0) {
        rc = recfd < 0 ? recfd : devfd;
        *why = "cannot create its folder";
        goto out;
    }
    int flat = 1;
    fd = openat(dirfd, c->main, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT) {   /* moved already by an earlier check */
        flat = 0;
        fd = openat(devfd, c->file, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
    }
    if (fd < 0) {
        rc = -errno;
        *why = "the copy is missing";
        goto out;
    }
    struct stat sb;
    if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode) || (uint64_t)sb.st_size != c->size) {
        rc = -EIO;
        *why = "the copy's length differs from the recorder's file";
        goto out;
    }
    if (pwrite(fd, c->header, c->hlen, 0) != (ssize_t)c->hlen || fsync(fd) < 0) {
        rc = -errno ? -errno : -EIO;
        *why = "cannot write the final header";
        goto out;
    }
    if ((rc = decode_md5(fd, why)) < 0)
        goto out;
    if (flat) {
        if (linkat(dirfd, c->main, devfd, c->file, 0) < 0) {
            rc = -errno;
            *why = errno == EEXIST ? "a different file of that name is already in its folder"
                                   : "cannot move it into its folder";
            goto out;
        }
        unlinkat(dirfd, c->main, 0);
        fsync(devfd);
        fsync(dirfd);
    }
    rc = 0;
out:
    if (fd >= 0)
        close(fd);
    if (devfd >= 0)
        close(devfd);
    if (recfd >= 0)
        close(recfd);
    close(dirfd);
    return rc;
}

static void *check_main(void *arg)
{
    struct check *c = arg;
    const char *why = "";
    int rc = run_check(c, &why);
    free(c->header);   /* results are kept by name; the header is not needed any more */
    c->header = NULL;
    if (rc == 0)
        log_info("ingest", "forwarded take %s/%s/%s complete: %" PRIu64 " bytes, MD5 verified",
                 c->rec, c->dev, c->file, c->size);
    else
        log_err("ingest", "forwarded take %s/%s/%s: %s (%s); it stays unverified as %s",
                c->rec, c->dev, c->file, why, strerror(-rc), c->main);
    pthread_mutex_lock(&lock);
    c->verdict = rc == 0 ? V_OK : V_FAILED;
    pthread_mutex_unlock(&lock);
    return NULL;
}

void forwarded_stored(const char *name, size_t len)
{
    char flat[256];
    if (!base_dir || len >= sizeof flat)
        return;
    memcpy(flat, name, len);
    flat[len] = 0;
    int dirfd = open(base_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dirfd >= 0) {
        unlinkat(dirfd, flat, 0);
        close(dirfd);
    }
}

void forwarded_tick(struct ingest_store *st)
{
    pthread_mutex_lock(&lock);
    for (struct check *c = checks; c; c = c->next) {
        if (c->verdict != V_OK || !c->msg)
            continue;
        /* the recorder's connection still owns the head stream: store it there, the next
         * ack round tells the recorder; otherwise its resend is stored at once */
        struct ingest_stream *s = ingest_store_find(st, c->head, strlen(c->head));
        if (s && ingest_store_append(st, s, c->msg, c->mlen) == 0)
            forwarded_stored(c->head, strlen(c->head));
        free(c->msg);
        c->msg = NULL;
    }
    pthread_mutex_unlock(&lock);
}

int forwarded_on_head(const char *name, size_t len, const void *data, size_t dlen)
{
    struct check tmp;
    memset(&tmp, 0, sizeof tmp);
    if (!base_dir || split_name(name, len, &tmp) < 0) {
        log_warn("ingest", "'%.*s': not a forwarded take name (fwd~RECORDER~DEVICE~FILE)",
                 (int)len, name);
        return 0;
    }
    pthread_mutex_lock(&lock);
    struct check *c = checks;
    while (c && strcmp(c->main, tmp.main) != 0)
        c = c->next;
    int verdict = c ? (int)c->verdict : -1;
    pthread_mutex_unlock(&lock);
    if (verdict == V_OK)
        return 1;
    if (verdict == V_RUNNING)
        return 0;
    if (verdict == V_FAILED) {
        /* a resend after a failed check: look again (the copy may have been repaired),
         * but not more often than the recorder asks */
        pthread_mutex_lock(&lock);
        struct check **pp = &checks;
        while (*pp != c)
            pp = &(*pp)->next;
        *pp = c->next;
        pthread_mutex_unlock(&lock);
        pthread_join(c->thread, NULL);
        free(c->header);
        free(c->msg);
        free(c);
    }
    const char *why = "";
    if (parse_head(data, dlen, &tmp, &why) < 0) {
        log_err("ingest", "forwarded take '%s': bad head message: %s", tmp.main, why);
        return 0;
    }
    c = malloc(sizeof *c);
    if (!c) {
        free(tmp.header);
        return 0;
    }
    *c = tmp;
    c->verdict = V_RUNNING;
    snprintf(c->head, sizeof c->head, "%.*s", (int)len, name);
    c->msg = malloc(dlen);
    if (c->msg) {
        memcpy(c->msg, data, dlen);
        c->mlen = dlen;
    }
    pthread_mutex_lock(&lock);
    if (pthread_create(&c->thread, NULL, check_main, c) != 0) {
        pthread_mutex_unlock(&lock);
        free(c->header);
        free(c->msg);
        free(c);
        return 0;
    }
    c->next = checks;
    checks = c;
    pthread_mutex_unlock(&lock);
    return 0;
}
