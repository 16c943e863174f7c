/* ingest proto: see proto.h. */
#include "ingest/proto.h"

#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int ingest_name_check(const char *name, size_t len, const char **why)
{
    const char *dummy;
    if (!why)
        why = &dummy;
    if (len == 0) {
        *why = "empty name";
        return -EINVAL;
    }
    if (len > 255) {
        *why = "name longer than 255 bytes";
        return -EINVAL;
    }
    if (name[0] == '.') {
        *why = "name starts with '.'";
        return -EINVAL;
    }
    /* <name>.losses is where the losses of stream <name> are logged: a stream of that
     * name would write into another stream's loss record. */
    static const char losses_suffix[] = ".losses";
    size_t sl = sizeof losses_suffix - 1;
    if (len >= sl && memcmp(name + len - sl, losses_suffix, sl) == 0) {
        *why = "name ends in '.losses' (reserved for loss records)";
        return -EINVAL;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)name[i];
        if (c == '/') {
            *why = "name contains '/'";
            return -EINVAL;
        }
        if (c == 0) {
            *why = "name contains NUL";
            return -EINVAL;
        }
        if (c < 0x20 || c == 0x7f) {
            *why = "name contains a control character";
            return -EINVAL;
        }
    }
    return 0;
}

void ingest_name_escape(const char *name, size_t len, char *out, size_t outlen)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)name[i];
        char tmp[5];
        size_t n;
        if (c == '\\' || c == '\'') {
            tmp[0] = '\\';
            tmp[1] = (char)c;
            n = 2;
        } else if (c < 0x20 || c >= 0x7f) {
            snprintf(tmp, sizeof tmp, "\\x%02x", c);
            n = 4;
        } else {
            tmp[0] = (char)c;
            n = 1;
        }
        if (o + n + 4 > outlen) { /* room for "..." and NUL */
            memcpy(out + o, "...", 3);
            o += 3;
            break;
        }
        memcpy(out + o, tmp, n);
        o += n;
    }
    out[o] = '\0';
}

int ingest_split_message(const void *msg, size_t len, const char **name, size_t *name_len,
                         const void **data, size_t *data_len, const char **why)
{
    const char *p = msg;
    size_t look = len < 257 ? len : 257; /* a valid name ends by byte 256 */
    const char *nul = memchr(p, '\0', look);
    *name = p;
    if (!nul) {
        *name_len = look;
        *why = len > 256 ? "no NUL after the name within 256 bytes (name too long or "
                           "not a <name> NUL <data> message)"
                         : "no NUL separator after the name";
        return -EINVAL;
    }
    *name_len = (size_t)(nul - p);
    if (ingest_name_check(p, *name_len, why) < 0)
        return -EINVAL;
    *data = nul + 1;
    *data_len = len - *name_len - 1;
    return 0;
}

int ingest_ctl_parse(const char *text, size_t len, struct ingest_ctl *out, char *err,
                     size_t errlen)
{
    memset(out, 0, sizeof *out);
    json_error_t je;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    if (!root) {
        snprintf(err, errlen, "not valid JSON: %s (at byte %d)", je.text, je.position);
        return -EINVAL;
    }
    int rc = -EINVAL;
    const char *op = NULL, *name = NULL;
    size_t nlen = 0;
    json_int_t at = 0, bytes = 0;
    if (!json_is_object(root)) {
        snprintf(err, errlen, "control message is not a JSON object");
        goto out;
    }
    json_t *jop = json_object_get(root, "op");
    if (!json_is_string(jop)) {
        snprintf(err, errlen, "control message has no string \"op\"");
        goto out;
    }
    op = json_string_value(jop);
    if (!strcmp(op, "stat")) {
        if (json_unpack_ex(root, &je, JSON_STRICT, "{s:s, s:s%}", "op", &op, "name", &name,
                           &nlen) < 0) {
            snprintf(err, errlen, "bad stat message: %s (expected {\"op\":\"stat\","
                     "\"name\":NAME})", je.text);
            goto out;
        }
        out->op = INGEST_OP_STAT;
    } else if (!strcmp(op, "loss")) {
        if (json_unpack_ex(root, &je, JSON_STRICT, "{s:s, s:s%, s:I, s:I}", "op", &op, "name",
                           &name, &nlen, "at", &at, "bytes", &bytes) < 0) {
            snprintf(err, errlen, "bad loss message: %s (expected {\"op\":\"loss\","
                     "\"name\":NAME,\"at\":N,\"bytes\":B})", je.text);
            goto out;
        }
        if (at < 0 || bytes < 0) {
            snprintf(err, errlen, "bad loss message: \"at\" and \"bytes\" must be >= 0");
            goto out;
        }
        out->op = INGEST_OP_LOSS;
        out->at = (uint64_t)at;
        out->bytes = (uint64_t)bytes;
    } else {
        char esc[64];
        ingest_name_escape(op, strlen(op), esc, sizeof esc);
        snprintf(err, errlen, "unknown op '%s' (a client may send \"stat\" or \"loss\")", esc);
        goto out;
    }
    const char *why;
    if (ingest_name_check(name, nlen, &why) < 0) {
        char esc[64];
        ingest_name_escape(name, nlen, esc, sizeof esc);
        snprintf(err, errlen, "bad name '%s': %s", esc, why);
        goto out;
    }
    memcpy(out->name, name, nlen);
    out->name[nlen] = '\0';
    out->name_len = nlen;
    rc = 0;
out:
    json_decref(root);
    return rc;
}

int ingest_ctl_format(const char *op, const char *name, uint64_t size, char *out,
                      size_t outlen)
{
    json_t *o = json_pack("{s:s, s:s, s:I}", "op", op, "name", name, "size",
                          (json_int_t)size);
    if (!o)
        return -EINVAL;
    size_t n = json_dumpb(o, out, outlen, JSON_COMPACT);
    json_decref(o);
    if (n == 0 || n >= outlen)
        return -ENOSPC;
    out[n] = '\0';
    return (int)n;
}

int ingest_parse_listen(const char *s, char *host, size_t hostlen, int *port, int *v6,
                        char *err, size_t errlen)
{
    *v6 = 0;
    host[0] = '\0';
    const char *colon;
    if (!s || !*s) {
        snprintf(err, errlen, "empty --listen value (expected ADDR:PORT, e.g. 0.0.0.0:9090)");
        return -EINVAL;
    }
    if (s[0] == '[') {
        const char *end = strchr(s, ']');
        if (!end || end[1] != ':') {
            snprintf(err, errlen, "bad --listen '%s': an IPv6 address goes in brackets "
                     "followed by :PORT, e.g. [::1]:9090", s);
            return -EINVAL;
        }
        size_t n = (size_t)(end - s - 1);
        if (n == 0 || n >= hostlen) {
            snprintf(err, errlen, "bad --listen '%s': empty or too long address", s);
            return -EINVAL;
        }
        memcpy(host, s + 1, n);
        host[n] = '\0';
        *v6 = 1;
        colon = end + 1;
    } else {
        colon = strrchr(s, ':');
        if (!colon) {
            snprintf(err, errlen, "bad --listen '%s': no port (expected ADDR:PORT, e.g. "
                     "0.0.0.0:9090, [::1]:9090 or :9090)", s);
            return -EINVAL;
        }
        size_t n = (size_t)(colon - s);
        if (memchr(s, ':', n)) {
            snprintf(err, errlen, "bad --listen '%s': put an IPv6 address in brackets, "
                     "e.g. [::1]:9090", s);
            return -EINVAL;
        }
        if (n >= hostlen) {
            snprintf(err, errlen, "bad --listen '%s': address too long", s);
            return -EINVAL;
        }
        memcpy(host, s, n);
        host[n] = '\0';
    }
    const char *ps = colon + 1;
    char *end;
    errno = 0;
    long p = strtol(ps, &end, 10);
    if (!*ps || *end || errno || p < 0 || p > 65535 || *ps == '-' || *ps == '+' ||
        *ps == ' ') {
        snprintf(err, errlen, "bad --listen '%s': port must be a number from 0 to 65535 "
                 "(0 picks a free port)", s);
        return -EINVAL;
    }
    if (host[0]) {
        unsigned char buf[16];
        if (inet_pton(*v6 ? AF_INET6 : AF_INET, host, buf) != 1) {
            snprintf(err, errlen, "bad --listen '%s': '%s' is not a numeric IP%s address "
                     "(e.g. 127.0.0.1, 0.0.0.0, [::1], [::])", s, host, *v6 ? "v6" : "v4");
            return -EINVAL;
        }
    }
    *port = (int)p;
    return 0;
}
