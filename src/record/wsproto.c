/*
 * wsproto: the record module's WebSocket protocol (docs/protocol.md), shared by the client
 * (ws_link.c, url.c) and the server (`pirec ingest`): see wsproto.h.
 */
#include "record/wsproto.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Well-formed UTF-8 (RFC 3629): no overlong forms, no surrogates, nothing above U+10FFFF.
 * By hand: a dozen lines, and no library in use here offers it for a byte range. */
static int utf8_valid(const unsigned char *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        unsigned char c = s[i];
        size_t n;
        uint32_t cp;
        if (c < 0x80) {
            i++;
            continue;
        } else if (c >= 0xc2 && c <= 0xdf) {
            n = 1, cp = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
            n = 2, cp = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            n = 3, cp = c & 0x07;
        } else {
            return 0;
        }
        if (len - i - 1 < n)
            return 0;
        for (size_t k = 1; k <= n; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return 0;
            cp = cp << 6 | (s[i + k] & 0x3f);
        }
        if ((n == 2 && cp < 0x800) || (n == 3 && (cp < 0x10000 || cp > 0x10ffff)) ||
            (cp >= 0xd800 && cp <= 0xdfff))
            return 0;
        i += n + 1;
    }
    return 1;
}

int wsproto_name_check(const char *name, size_t len, const char **why)
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
    if (name[0] == '.') {   /* also ".", ".." and hidden files */
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
    if (!utf8_valid((const unsigned char *)name, len)) {
        *why = "name is not valid UTF-8";
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

void wsproto_name_escape(const char *name, size_t len, char *out, size_t outlen)
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

int wsproto_split_message(const void *msg, size_t len, const char **name, size_t *name_len,
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
    if (wsproto_name_check(p, *name_len, why) < 0)
        return -EINVAL;
    *data = nul + 1;
    *data_len = len - *name_len - 1;
    return 0;
}

int wsproto_ctl_parse(const char *text, size_t len, struct wsproto_ctl *out, char *err,
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
        out->op = WSPROTO_OP_STAT;
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
        out->op = WSPROTO_OP_LOSS;
        out->at = (uint64_t)at;
        out->bytes = (uint64_t)bytes;
    } else {
        char esc[64];
        wsproto_name_escape(op, strlen(op), esc, sizeof esc);
        snprintf(err, errlen, "unknown op '%s' (a client may send \"stat\" or \"loss\")", esc);
        goto out;
    }
    const char *why;
    if (wsproto_name_check(name, nlen, &why) < 0) {
        char esc[64];
        wsproto_name_escape(name, nlen, esc, sizeof esc);
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

int wsproto_ctl_format(const char *op, const char *name, uint64_t size, char *out,
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

const char *wsproto_close_meaning(int code, int *fatal)
{
    int f = 0;
    const char *m;
    switch (code) {
    case WSPROTO_CLOSE_NORMAL: m = "normal close"; break;
    case WSPROTO_CLOSE_GOING_AWAY: m = "the server is shutting down"; break;
    case WSPROTO_CLOSE_UNSUPPORTED: m = "a message type the server does not accept"; f = 1; break;
    case WSPROTO_CLOSE_POLICY: m = "refused by a protocol rule"; f = 1; break;
    case WSPROTO_CLOSE_TOO_BIG: m = "message too large"; f = 1; break;
    case WSPROTO_CLOSE_SERVER_ERROR: m = "server error (e.g. its disk is full)"; break;
    case WSPROTO_CLOSE_TRY_LATER: m = "the server is at a limit; try again later"; break;
    case WSPROTO_CLOSE_TAKEN_OVER: m = "stream taken over by a newer connection"; break;
    default: m = "unknown close code"; break;
    }
    if (fatal)
        *fatal = f;
    return m;
}
