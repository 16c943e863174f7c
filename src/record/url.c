/*
 * url: strict parser for the record module's endpoint URLs.
 *
 * The original matched schemes and keys with strstr() anywhere in the string and numbers
 * with atoi(), so "xmem://address=12abc" still gave a handle. Here a URL is accepted only
 * if every byte of it is understood; anything else is one log line and -EINVAL.
 */
#include "record/url.h"

#include <pirec/ringbuffer.h>

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "common/log.h"
#include "record/wsproto.h"

const char *rec_url_kind_name(enum rec_url_kind kind)
{
    switch (kind) {
    case REC_URL_RING: return "ringbuffer";
    case REC_URL_MEM: return "mem";
    case REC_URL_FILE: return "file";
    case REC_URL_WS: return "ws";
    }
    return "?";
}

/* One line: what is wrong, and the URL when it is safe to echo (a '@' may mean
 * user:password, which must not reach a log). */
__attribute__((format(printf, 3, 4)))
static int reject(const char *url, int err, const char *fmt, ...)
{
    char why[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    char shown[128];
    size_t n = 0;
    if (url && !strchr(url, '@')) {
        for (; url[n] && n < sizeof shown - 4; n++) {
            unsigned char c = (unsigned char)url[n];
            shown[n] = (c < 0x20 || c >= 0x7f) ? '?' : (char)c;
        }
        if (url[n])
            memcpy(shown + n, "...", 3), n += 3;
    }
    shown[n] = 0;
    if (url && !strchr(url, '@'))
        log_err("record", "bad URL \"%s\": %s", shown, why);
    else
        log_err("record", "bad URL: %s", why);
    return err;
}

int rec_url_parse_u64(const char *s, size_t len, uint64_t *out)
{
    if (!s || len == 0)
        return -EINVAL;
    uint64_t v = 0;
    if (len > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
        for (size_t i = 2; i < len; i++) {
            char c = s[i];
            unsigned d;
            if (c >= '0' && c <= '9') d = (unsigned)(c - '0');
            else if (c >= 'a' && c <= 'f') d = (unsigned)(c - 'a' + 10);
            else if (c >= 'A' && c <= 'F') d = (unsigned)(c - 'A' + 10);
            else return -EINVAL;
            if (v > (UINT64_MAX >> 4))
                return -ERANGE;
            v = (v << 4) | d;
        }
    } else {
        for (size_t i = 0; i < len; i++) {
            char c = s[i];
            if (c < '0' || c > '9')
                return -EINVAL;
            unsigned d = (unsigned)(c - '0');
            if (v > (UINT64_MAX - d) / 10)
                return -ERANGE;
            v = v * 10 + d;
        }
    }
    *out = v;
    return 0;
}

struct param {
    const char *key;
    const char *val;
    size_t val_len;
    int seen;
};

/* Splits "k=v&k=v" into the given known keys: each exactly once, none unknown, no value
 * empty. */
static int parse_params(const char *url, const char *q, struct param *ps, size_t nps)
{
    if (!*q)
        return reject(url, -EINVAL, "nothing after \"://\" (expected %s=...)", ps[0].key);
    const char *p = q;
    for (;;) {
        const char *amp = strchr(p, '&');
        size_t len = amp ? (size_t)(amp - p) : strlen(p);
        const char *eq = memchr(p, '=', len);
        if (!eq)
            return reject(url, -EINVAL, "\"%.*s\" is not key=value", (int)(len > 40 ? 40 : len), p);
        size_t klen = (size_t)(eq - p);
        struct param *hit = NULL;
        for (size_t i = 0; i < nps; i++)
            if (strlen(ps[i].key) == klen && !memcmp(ps[i].key, p, klen))
                hit = &ps[i];
        if (!hit)
            return reject(url, -EINVAL, "unknown key \"%.*s\"", (int)(klen > 40 ? 40 : klen), p);
        if (hit->seen)
            return reject(url, -EINVAL, "key \"%s\" given twice", hit->key);
        hit->seen = 1;
        hit->val = eq + 1;
        hit->val_len = len - klen - 1;
        if (hit->val_len == 0)
            return reject(url, -EINVAL, "key \"%s\" has no value", hit->key);
        if (!amp)
            break;
        p = amp + 1;
    }
    for (size_t i = 0; i < nps; i++)
        if (!ps[i].seen)
            return reject(url, -EINVAL, "missing key \"%s\"", ps[i].key);
    return 0;
}

static int parse_addr(const char *url, const struct param *p, uint64_t *out)
{
    int rc = rec_url_parse_u64(p->val, p->val_len, out);
    if (rc == -ERANGE)
        return reject(url, -EINVAL, "%s does not fit in 64 bits", p->key);
    if (rc)
        return reject(url, -EINVAL, "%s must be a decimal or 0x-hex number", p->key);
    return 0;
}

static int check_pointer(const char *url, uint64_t a, size_t align)
{
    if (a == 0)
        return reject(url, -EINVAL, "address is 0");
    if (a > UINTPTR_MAX)   /* never truncated: that would name some other memory */
        return reject(url, -EINVAL, "address 0x%llx is wider than a pointer on this %d-bit "
                      "build: refused, not truncated", (unsigned long long)a,
                      (int)(sizeof(void *) * 8));
    if (a % align)
        return reject(url, -EINVAL, "address is not aligned for a dev_ringbuf_t");
    return 0;
}

static int parse_ring(const char *url, const char *rest, struct rec_url *out)
{
    struct param ps[] = {{.key = "handle"}};
    int rc = parse_params(url, rest, ps, 1);
    if (!rc) rc = parse_addr(url, &ps[0], &out->addr);
    if (!rc) rc = check_pointer(url, out->addr, _Alignof(dev_ringbuf_t));
    if (!rc) out->kind = REC_URL_RING;
    return rc;
}

static int parse_mem(const char *url, const char *rest, struct rec_url *out)
{
    struct param ps[] = {{.key = "address"}, {.key = "size"}};
    int rc = parse_params(url, rest, ps, 2);
    if (!rc) rc = parse_addr(url, &ps[0], &out->addr);
    if (!rc) rc = parse_addr(url, &ps[1], &out->size);
    if (!rc) rc = check_pointer(url, out->addr, 1);
    if (rc)
        return rc;
    if (out->size == 0)
        return reject(url, -EINVAL, "size is 0");
    if (out->size > UINTPTR_MAX - out->addr)
        return reject(url, -EINVAL, "address + size wraps around the address space");
    out->kind = REC_URL_MEM;
    return 0;
}

static int parse_path(const char *url, const char *path, struct rec_url *out)
{
    size_t len = strlen(path);
    if (len == 0)
        return reject(url, -EINVAL, "the file path is empty");
    if (len > REC_PATH_MAX)
        return reject(url, -ENAMETOOLONG, "the file path is longer than %d bytes", REC_PATH_MAX);
    memcpy(out->path, path, len + 1);
    out->kind = REC_URL_FILE;
    return 0;
}

static int host_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '-' || c == '.' || c == '_';
}

/* Characters of a path segment we pass through verbatim. No '%': we do not decode escapes,
 * and a literal "%00" in a name would be a NUL on the server's side. */
static int path_char(char c)
{
    return host_char(c) || (unsigned char)c >= 0x80 /* UTF-8; the name rule checks it */ || c == '/' || c == '~' || c == '!' || c == '$' || c == '\'' ||
           c == '(' || c == ')' || c == '*' || c == '+' || c == ',' || c == ';' || c == '=' ||
           c == ':';
}

static int parse_ws(const char *url, const char *rest, int tls, struct rec_url *out)
{
    struct ws_target *t = &out->ws;
    memset(t, 0, sizeof *t);
    t->tls = tls;
    const char *slash = strchr(rest, '/');
    if (!slash)
        return reject(url, -EINVAL, "no stream name: write %s://host[:port]/name", tls ? "wss" : "ws");
    const char *auth = rest, *auth_end = slash;
    if (memchr(auth, '@', (size_t)(auth_end - auth)))
        return reject(url, -EINVAL, "user names or passwords in ws URLs are not supported");
    const char *h = auth, *h_end, *after;
    if (*h == '[') {
        const char *close = memchr(h, ']', (size_t)(auth_end - h));
        if (!close)
            return reject(url, -EINVAL, "IPv6 host is missing its ']'");
        h++;
        h_end = close;
        if (h_end == h)
            return reject(url, -EINVAL, "empty IPv6 host \"[]\"");
        for (const char *c = h; c < h_end; c++)
            if (!((*c >= '0' && *c <= '9') || (*c >= 'a' && *c <= 'f') ||
                  (*c >= 'A' && *c <= 'F') || *c == ':' || *c == '.'))
                return reject(url, -EINVAL, "bad character '%c' in IPv6 host", *c);
        if (!memchr(h, ':', (size_t)(h_end - h)))
            return reject(url, -EINVAL, "brackets are only for IPv6 addresses");
        after = close + 1;
    } else {
        h_end = h;
        while (h_end < auth_end && *h_end != ':')
            h_end++;
        if (h_end == h)
            return reject(url, -EINVAL, "the host is empty");
        for (const char *c = h; c < h_end; c++)
            if (!host_char(*c))
                return reject(url, -EINVAL, "bad character '%c' in host", *c);
        after = h_end;
    }
    if ((size_t)(h_end - h) >= sizeof t->host)
        return reject(url, -ENAMETOOLONG, "the host is longer than %zu bytes", sizeof t->host - 1);
    memcpy(t->host, h, (size_t)(h_end - h));
    t->port = tls ? 443 : 80;
    if (after < auth_end) {
        if (*after != ':')
            return reject(url, -EINVAL, "junk after the host (expected ':port' or '/')");
        after++;
        uint64_t port;
        size_t plen = (size_t)(auth_end - after);
        if (plen == 0)
            return reject(url, -EINVAL, "':' without a port number");
        int rc = plen > 5 ? -ERANGE : 0;
        for (size_t i = 0; !rc && i < plen; i++)
            if (after[i] < '0' || after[i] > '9')
                rc = -EINVAL;
        if (rc == -EINVAL)
            return reject(url, -EINVAL, "the port must be a decimal number");
        if (!rc)
            rc = rec_url_parse_u64(after, plen, &port);
        if (rc || port < 1 || port > 65535)
            return reject(url, -EINVAL, "the port must be 1..65535");
        t->port = (int)port;
    }
    const char *path = slash;
    size_t plen = strlen(path);
    for (size_t i = 0; i < plen; i++) {
        char c = path[i];
        if (c == '?' || c == '#')
            return reject(url, -EINVAL, "queries and fragments ('%c') are not allowed after the name", c);
        if (c == '%')
            return reject(url, -EINVAL, "percent-escapes are not supported in the path");
        if (!path_char(c))
            return reject(url, -EINVAL, "bad character '%c' in the path", c);
    }
    if (plen >= sizeof t->path)
        return reject(url, -ENAMETOOLONG, "the path is longer than %zu bytes", sizeof t->path - 1);
    const char *name = strrchr(path, '/') + 1;
    size_t nlen = strlen(name);
    if (nlen == 0)
        return reject(url, -EINVAL, "no stream name after the last '/'");
    if (nlen >= sizeof t->name)
        return reject(url, -ENAMETOOLONG, "the stream name is longer than %zu bytes", sizeof t->name - 1);
    const char *why;
    if (wsproto_name_check(name, nlen, &why))   /* the same rule as the server's */
        return reject(url, -EINVAL, "bad stream name: %s", why);
    memcpy(t->path, path, plen + 1);
    memcpy(t->name, name, nlen + 1);
    out->kind = REC_URL_WS;
    return 0;
}

int rec_url_parse(const char *url, enum rec_url_role role, struct rec_url *out)
{
    if (!url || !out)
        return reject(NULL, -EINVAL, "no URL given");
    memset(out, 0, sizeof *out);
    size_t len = strnlen(url, REC_URL_MAX + 1);
    if (len > REC_URL_MAX)
        return reject(url, -ENAMETOOLONG, "longer than %d bytes", REC_URL_MAX);
    if (len == 0)
        return reject(url, -EINVAL, "the URL is empty");
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)url[i];
        if (c < 0x20 || c == 0x7f)
            return reject(url, -EINVAL, "control character at offset %zu", i);
    }
    if (url[0] == ' ' || url[len - 1] == ' ')
        return reject(url, -EINVAL, "leading or trailing space");
    const char *sep = strstr(url, "://");
    if (!sep || sep == url)
        return reject(url, -EINVAL, "no scheme (expected e.g. file://, ws://, ringbuffer://)");
    size_t slen = (size_t)(sep - url);
    const char *rest = sep + 3;
    const char *role_name = role == REC_URL_SOURCE ? "source" : "sink";
#define IS(s) (slen == sizeof(s) - 1 && !strncasecmp(url, s, slen))
    int not_file = !(IS("file") || IS("sdbuffer"));
    if (not_file && strchr(url, ' '))
        return reject(url, -EINVAL, "spaces are not allowed here");
    if (IS("ringbuffer"))
        return parse_ring(url, rest, out);
    if (IS("mem"))
        return parse_mem(url, rest, out);
    if (IS("file"))
        return parse_path(url, rest, out);
    if (IS("sdbuffer")) {
        if (role != REC_URL_SOURCE)
            return reject(url, -EINVAL, "sdbuffer:// can only be a source (use file:// as a sink)");
        if (strncmp(rest, "handle=", 7))
            return reject(url, -EINVAL, "expected sdbuffer://handle=<path>");
        return parse_path(url, rest + 7, out);
    }
    if (IS("ws") || IS("wss")) {
        if (role != REC_URL_SINK)
            return reject(url, -EINVAL, "%.*s:// can only be a sink", (int)slen, url);
        return parse_ws(url, rest, IS("wss"), out);
    }
#undef IS
    return reject(url, -EINVAL, "unknown %s scheme \"%.*s\" (expected ringbuffer, mem, file%s)",
                  role_name, (int)(slen > 20 ? 20 : slen), url,
                  role == REC_URL_SOURCE ? ", sdbuffer" : ", ws, wss");
}
