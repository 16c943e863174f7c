/* http_files: JSON answers, downloads, the page. See http_files.h. */
#include "server/http_files.h"

#include "server/http_range.h"
#include "server/static_files.h"
#include "server/workers.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/types.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

static const char CSP[] =
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
    "form-action 'self'";

static void common_headers(struct MHD_Response *resp, int api)
{
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
    if (api)
        MHD_add_response_header(resp, "Cache-Control", "no-store");
}

static enum MHD_Result queue(struct MHD_Connection *c, unsigned status, struct MHD_Response *resp)
{
    enum MHD_Result ret = MHD_queue_response(c, status, resp);
    MHD_destroy_response(resp);
    return ret;
}

/* Sends an API answer (its body is consumed). */
enum MHD_Result http_send_reply(struct MHD_Connection *c, struct api_reply *a)
{
    if (!a->body)
        return MHD_NO;
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(strlen(a->body), a->body, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        api_reply_free(a);
        return MHD_NO;
    }
    a->body = NULL;
    MHD_add_response_header(resp, "Content-Type", "application/json");
    common_headers(resp, 1);
    if (a->allow)
        MHD_add_response_header(resp, "Allow", a->allow);
    return queue(c, a->status, resp);
}

enum MHD_Result http_send_refusal(struct MHD_Connection *c, enum api_refusal why)
{
    struct api_reply a;
    api_refuse(&a, why);
    return http_send_reply(c, &a);
}

int http_parse_u64(const char *s, const char *end, uint64_t *out)
{
    if (s == end)
        return -1;
    uint64_t v = 0;
    for (; s < end; s++) {
        if (*s < '0' || *s > '9')
            return -1;
        if (v > (UINT64_MAX - 9) / 10)
            return -1;
        v = v * 10 + (uint64_t)(*s - '0');
    }
    *out = v;
    return 0;
}

/* A download read by a worker, a block at a time, while its connection is suspended:
 * libmicrohttpd's own file responses read (sendfile) on its event thread, which a slow
 * SD card would stall for every client. */
#define READ_BLOCK (64 * 1024)

struct file_reader {
    struct MHD_Connection *conn;
    struct workers *w;
    int fd;
    uint64_t off, end;         /* file range still to read */
    char *buf;
    size_t len, pos;           /* bytes in buf, bytes handed out */
    int error;
};

static void read_block(void *arg)
{
    struct file_reader *f = arg;
    size_t want = f->end - f->off < READ_BLOCK ? (size_t)(f->end - f->off) : READ_BLOCK;
    ssize_t n = pread(f->fd, f->buf, want, (off_t)f->off);
    if (n <= 0) {
        f->error = 1;          /* shortened under us, or an I/O error: end the response */
    } else {
        f->len = (size_t)n;
        f->pos = 0;
        f->off += (uint64_t)n;
    }
    MHD_resume_connection(f->conn);   /* last touch: the response may be freed after it */
}

static ssize_t reader_read(void *cls, uint64_t pos, char *out, size_t max)
{
    (void)pos;
    struct file_reader *f = cls;
    if (f->pos < f->len) {
        size_t n = f->len - f->pos < max ? f->len - f->pos : max;
        memcpy(out, f->buf + f->pos, n);
        f->pos += n;
        return (ssize_t)n;
    }
    if (f->error)
        return MHD_CONTENT_READER_END_WITH_ERROR;
    if (f->off >= f->end)
        return MHD_CONTENT_READER_END_OF_STREAM;
    MHD_suspend_connection(f->conn);
    if (workers_submit(f->w, read_block, f) < 0) {
        f->error = 1;
        MHD_resume_connection(f->conn);
    }
    return 0;
}

static void reader_free(void *cls)
{
    struct file_reader *f = cls;
    close(f->fd);
    free(f->buf);
    free(f);
}

/* Owns fd on success. */
static struct MHD_Response *reader_response(struct MHD_Connection *c, struct workers *w, int fd,
                                            uint64_t first, uint64_t len)
{
    struct file_reader *f = calloc(1, sizeof(*f));
    char *buf = malloc(READ_BLOCK);
    struct MHD_Response *resp = NULL;
    if (f && buf) {
        *f = (struct file_reader){.conn = c, .w = w, .fd = fd, .off = first,
                                  .end = first + len, .buf = buf};
        resp = MHD_create_response_from_callback(len, READ_BLOCK, reader_read, f, reader_free);
    }
    if (!resp) {
        free(f);
        free(buf);
    }
    return resp;
}

enum MHD_Result http_send_recording(struct MHD_Connection *c, struct recorder *rec,
                                    struct workers *readers, const struct route *r)
{
    int fd = -1;
    struct stat st;
    int rc = recorder_open_recording(rec, r->name, &fd, &st);
    if (rc < 0) {
        struct api_reply a;
        api_errno(&a, rc);
        return http_send_reply(c, &a);
    }
    uint64_t size = (uint64_t)st.st_size, first = 0, last = size ? size - 1 : 0;
    int ranged = http_range_parse(MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Range"), size,
                             &first, &last);
    char cr[96];
    if (ranged < 0) {
        close(fd);
        struct MHD_Response *resp =
            MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
        if (!resp)
            return MHD_NO;
        snprintf(cr, sizeof cr, "bytes */%" PRIu64, size);
        MHD_add_response_header(resp, "Content-Range", cr);
        common_headers(resp, 1);
        return queue(c, MHD_HTTP_RANGE_NOT_SATISFIABLE, resp);
    }
    uint64_t len = ranged ? last - first + 1 : size;
    struct MHD_Response *resp = reader_response(c, readers, fd, first, len);
    if (!resp) {
        close(fd);
        return MHD_NO;
    }
    MHD_add_response_header(resp, "Content-Type", "audio/flac");
    MHD_add_response_header(resp, "Accept-Ranges", "bytes");
    char disp[ROUTE_NAME_MAX + 40];
    snprintf(disp, sizeof disp, "attachment; filename=\"%s\"", r->name);
    MHD_add_response_header(resp, "Content-Disposition", disp);
    common_headers(resp, 1);
    if (ranged) {
        snprintf(cr, sizeof cr, "bytes %" PRIu64 "-%" PRIu64 "/%" PRIu64, first, last, size);
        MHD_add_response_header(resp, "Content-Range", cr);
    }
    return queue(c, ranged ? MHD_HTTP_PARTIAL_CONTENT : MHD_HTTP_OK, resp);
}

/* Does Accept-Encoding allow gzip? Tokens separated by commas, each maybe with ;q=; gzip
 * (or *) counts unless its q is 0. Written here: libmicrohttpd has no parser for it. */
static int accepts_gzip(const char *ae)
{
    while (ae && *ae) {
        while (*ae == ' ' || *ae == '\t' || *ae == ',')
            ae++;
        size_t n = strcspn(ae, ",; \t");
        int named = (n == 4 && strncasecmp(ae, "gzip", 4) == 0) || (n == 1 && ae[0] == '*');
        const char *end = ae + strcspn(ae, ",");
        const char *q = strstr(ae, "q=");
        int zero = q && q < end && strtod(q + 2, NULL) == 0.0;   /* "gzip;q=0": refused */
        if (named && n && !zero)
            return 1;
        ae = end;
    }
    return 0;
}

/* Does If-None-Match name etag (or say "*")? Weak comparison, as RFC 9110 asks for it. */
static int etag_listed(const char *inm, const char *etag)
{
    size_t el = strlen(etag);
    while (inm && *inm) {
        while (*inm == ' ' || *inm == '\t' || *inm == ',')
            inm++;
        if (inm[0] == '*')
            return 1;
        if (strncmp(inm, "W/", 2) == 0)
            inm += 2;
        size_t n = strcspn(inm, ",");
        while (n && (inm[n - 1] == ' ' || inm[n - 1] == '\t'))
            n--;
        if (n == el && memcmp(inm, etag, el) == 0)
            return 1;
        inm += strcspn(inm, ",");
    }
    return 0;
}

enum MHD_Result http_send_static(struct MHD_Connection *c, const struct route *r)
{
    const struct web_asset *a = static_file_find(r->name);
    if (!a)
    {
        struct api_reply e;
        api_errno(&e, -ENOENT);
        return http_send_reply(c, &e);
    }
    int gz = a->gz_data &&
             accepts_gzip(MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Accept-Encoding"));
    const char *etag = static_file_etag(a, gz);
    int unchanged = etag && etag_listed(MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                                    "If-None-Match"), etag);
    struct MHD_Response *resp;
    if (unchanged)
        resp = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    else if (gz)
        resp = MHD_create_response_from_buffer((size_t)a->gz_size, (void *)a->gz_data,
                                               MHD_RESPMEM_PERSISTENT);
    else
        resp = MHD_create_response_from_buffer((size_t)a->size, (void *)a->data,
                                               MHD_RESPMEM_PERSISTENT);
    if (!resp)
        return MHD_NO;
    if (!unchanged)
        MHD_add_response_header(resp, "Content-Type", a->content_type);
    if (gz && !unchanged)
        MHD_add_response_header(resp, "Content-Encoding", "gzip");
    if (a->gz_data)
        MHD_add_response_header(resp, "Vary", "Accept-Encoding");
    if (etag)
        MHD_add_response_header(resp, "ETag", etag);
    MHD_add_response_header(resp, "Content-Security-Policy", CSP);
    MHD_add_response_header(resp, "X-Frame-Options", "DENY");
    MHD_add_response_header(resp, "Cache-Control", "no-cache");
    common_headers(resp, 0);
    return queue(c, unchanged ? MHD_HTTP_NOT_MODIFIED : MHD_HTTP_OK, resp);
}

