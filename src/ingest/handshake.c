/* handshake: see handshake.h. */
#include "ingest/handshake.h"

#include "record/wsproto.h"

#include <openssl/evp.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

static int is_tchar(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* Does the comma-separated header value v[0..n) hold token tok (case-insensitive)? */
static int has_token(const char *v, size_t n, const char *tok)
{
    size_t tl = strlen(tok), i = 0;
    while (i < n) {
        while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
            i++;
        size_t s = i;
        while (i < n && v[i] != ',')
            i++;
        size_t e = i;
        while (e > s && (v[e - 1] == ' ' || v[e - 1] == '\t'))
            e--;
        if (e - s == tl && !strncasecmp(v + s, tok, tl))
            return 1;
    }
    return 0;
}

static size_t fail(struct handshake *hs, int status, const char **why, const char *w,
                   size_t len)
{
    hs->status = status;
    *why = w;
    return len;
}

size_t handshake_parse(const char *buf, size_t n, struct handshake *hs, const char **why)
{
    memset(hs, 0, sizeof *hs);
    hs->status = 400;
    hs->proto = HS_LEGACY;
    hs->accept[0] = '\0';
    size_t lim = n < HANDSHAKE_MAX ? n : HANDSHAKE_MAX;
    size_t head = 0;
    for (size_t i = 3; i < lim; i++)
        if (buf[i] == '\n' && buf[i - 1] == '\r' && buf[i - 2] == '\n' && buf[i - 3] == '\r') {
            head = i + 1;
            break;
        }
    if (!head) {
        if (n < HANDSHAKE_MAX)
            return 0;
        return fail(hs, 431, why, "request head larger than 8192 bytes", n);
    }
    /* Request line: METHOD SP TARGET SP HTTP/1.1 CRLF */
    const char *p = buf, *end = buf + head;
    const char *eol = memchr(p, '\r', (size_t)(end - p));
    if (!eol || eol[1] != '\n')
        return fail(hs, 400, why, "malformed request line", head);
    const char *sp1 = memchr(p, ' ', (size_t)(eol - p));
    const char *sp2 = sp1 ? memchr(sp1 + 1, ' ', (size_t)(eol - sp1 - 1)) : NULL;
    if (!sp1 || !sp2 || sp2 == sp1 + 1 || sp1[1] != '/' || eol - sp2 - 1 != 8 ||
        memcmp(sp2 + 1, "HTTP/1.", 7) || (sp2[8] != '1' && sp2[8] != '0'))
        return fail(hs, 400, why, "malformed request line (expected GET /path HTTP/1.1)",
                    head);
    for (const char *q = p; q < sp1; q++)
        if (!is_tchar((unsigned char)*q))
            return fail(hs, 400, why, "malformed method", head);
    for (const char *q = sp1 + 1; q < sp2; q++)
        if ((unsigned char)*q <= 0x20 || *q == 0x7f)
            return fail(hs, 400, why, "control character in the request path", head);
    int is_get = sp1 - p == 3 && !memcmp(p, "GET", 3);
    int http11 = sp2[8] == '1';

    int upgrade = 0, connection = 0, version = 0, nkey = 0, offered = 0;
    const char *key = NULL;
    size_t keylen = 0;
    p = eol + 2;
    while (p < end - 2) {
        eol = memchr(p, '\r', (size_t)(end - p));
        if (!eol || eol[1] != '\n')
            return fail(hs, 400, why, "malformed header line", head);
        const char *colon = memchr(p, ':', (size_t)(eol - p));
        if (!colon || colon == p)
            return fail(hs, 400, why, "malformed header line (no name or colon)", head);
        for (const char *q = p; q < colon; q++)
            if (!is_tchar((unsigned char)*q))
                return fail(hs, 400, why, "malformed header name", head);
        const char *v = colon + 1, *ve = eol;
        while (v < ve && (*v == ' ' || *v == '\t'))
            v++;
        while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
            ve--;
        for (const char *q = v; q < ve; q++)
            if (((unsigned char)*q < 0x20 && *q != '\t') || *q == 0x7f)
                return fail(hs, 400, why, "control character in a header value", head);
        size_t nl = (size_t)(colon - p), vl = (size_t)(ve - v);
#define IS(h) (nl == sizeof h - 1 && !strncasecmp(p, h, nl))
        if (IS("Upgrade"))
            upgrade |= has_token(v, vl, "websocket");
        else if (IS("Connection"))
            connection |= has_token(v, vl, "upgrade");
        else if (IS("Sec-WebSocket-Version"))
            version = vl == 2 && !memcmp(v, "13", 2) ? 13 : -1;
        else if (IS("Sec-WebSocket-Key")) {
            key = v;
            keylen = vl;
            nkey++;
        } else if (IS("Sec-WebSocket-Protocol")) {
            /* offers are case-sensitive tokens (RFC 6455 4.1) */
            for (size_t i = 0; i < vl;) {
                while (i < vl && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
                    i++;
                size_t s = i;
                while (i < vl && v[i] != ',' && v[i] != ' ' && v[i] != '\t')
                    i++;
                if (i == s)
                    continue;
                offered = 1;
                if (i - s == sizeof WSPROTO_SUBPROTOCOL - 1 &&
                    !memcmp(v + s, WSPROTO_SUBPROTOCOL, i - s))
                    hs->proto = HS_RESUME;
                else if (i - s == 12 && !memcmp(v + s, "pirec-legacy", 12) &&
                         hs->proto != HS_RESUME)
                    hs->proto = HS_LEGACY_NAMED;
            }
        }
#undef IS
        p = eol + 2;
    }
    (void)offered;
    if (!upgrade && !connection && !key)
        return fail(hs, 400, why, "pirec ingest: WebSocket connections only", head);
    if (!is_get)
        return fail(hs, 405, why, "a WebSocket upgrade must be a GET", head);
    if (!http11)
        return fail(hs, 400, why, "a WebSocket upgrade needs HTTP/1.1", head);
    if (!upgrade || !connection)
        return fail(hs, 400, why, "missing Upgrade: websocket or Connection: Upgrade", head);
    if (version != 13)
        return fail(hs, 426, why, "Sec-WebSocket-Version must be 13", head);
    if (nkey != 1 || keylen != 24 || key[22] != '=' || key[23] != '=')
        return fail(hs, 400, why, "Sec-WebSocket-Key must be one base64 16-byte value",
                    head);
    unsigned char raw[18];
    if (EVP_DecodeBlock(raw, (const unsigned char *)key, 24) != 18)
        return fail(hs, 400, why, "Sec-WebSocket-Key is not base64", head);
    char cat[24 + sizeof WS_GUID];
    memcpy(cat, key, 24);
    memcpy(cat + 24, WS_GUID, sizeof WS_GUID);
    unsigned char sha[SHA_DIGEST_LENGTH];
    SHA1((const unsigned char *)cat, 24 + sizeof WS_GUID - 1, sha);
    EVP_EncodeBlock((unsigned char *)hs->accept, sha, SHA_DIGEST_LENGTH);
    hs->status = 101;
    *why = NULL;
    return head;
}

size_t handshake_response(const struct handshake *hs, const char *why, char *out,
                          size_t outlen)
{
    int n;
    if (hs->status == 101) {
        const char *proto = hs->proto == HS_RESUME ? WSPROTO_SUBPROTOCOL
                          : hs->proto == HS_LEGACY_NAMED ? "pirec-legacy" : NULL;
        n = snprintf(out, outlen,
                     "HTTP/1.1 101 Switching Protocols\r\n"
                     "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Accept: %s\r\n%s%s%s\r\n",
                     hs->accept, proto ? "Sec-WebSocket-Protocol: " : "", proto ? proto : "",
                     proto ? "\r\n" : "");
    } else {
        const char *text = hs->status == 405 ? "Method Not Allowed"
                         : hs->status == 426 ? "Upgrade Required"
                         : hs->status == 431 ? "Request Header Fields Too Large"
                         : hs->status == 503 ? "Service Unavailable" : "Bad Request";
        const char *body = why ? why : text;
        n = snprintf(out, outlen,
                     "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\n"
                     "%sConnection: close\r\n\r\n%s\n",
                     hs->status, text, strlen(body) + 1,
                     hs->status == 426 ? "Sec-WebSocket-Version: 13\r\n" : "", body);
    }
    return n > 0 && (size_t)n < outlen ? (size_t)n : 0;
}
