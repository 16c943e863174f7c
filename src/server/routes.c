/* routes: request line -> action. See routes.h for the rules. */
#include "server/routes.h"

#include <stdio.h>
#include <string.h>

#define MAX_SEGS 8

static int set_error(struct route *r, int status, const char *msg)
{
    r->action = ROUTE_ERROR;
    r->status = status;
    r->error = msg;
    return 0;
}

static int copy(char *dst, size_t cap, const char *s, size_t n)
{
    if (n >= cap)
        return -1;
    memcpy(dst, s, n);
    dst[n] = '\0';
    return 0;
}

/* Letters, digits, '_', '-', '.': device ids, and base64url with the dots of a JWT. */
static int only_id_chars(const char *s)
{
    for (; *s; s++) {
        char c = *s;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-' || c == '.'))
            return 0;
    }
    return 1;
}

int route_valid_id(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n >= ROUTE_ID_MAX || s[0] == '.')
        return 0;
    return only_id_chars(s);
}

int route_valid_token(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n >= JWT_MAX)
        return 0;
    return only_id_chars(s);   /* base64url and the two dots of a JWT */
}

int route_valid_name(const char *s)
{
    size_t n = strlen(s);
    if (n <= 5 || n >= ROUTE_NAME_MAX || s[0] == '.' || strcmp(s + n - 5, ".flac") != 0)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f || c == '/' || c == '\\' || c == '"')
            return 0;
    }
    return 1;
}

static int is_method(const char *m, const char *want)
{
    return strcmp(m, want) == 0;
}

static int get_like(const char *m)
{
    return is_method(m, "GET") || is_method(m, "HEAD");
}

static int control_verb(const char *v, size_t n, enum route_action *a)
{
    static const struct { const char *name; enum route_action a; } verbs[] = {
        {"take", ROUTE_TAKE},   {"renew", ROUTE_RENEW}, {"release", ROUTE_RELEASE},
        {"start", ROUTE_START}, {"stop", ROUTE_STOP}, {"takeover", ROUTE_TAKEOVER},
    };
    for (size_t i = 0; i < sizeof verbs / sizeof verbs[0]; i++)
        if (strlen(verbs[i].name) == n && memcmp(verbs[i].name, v, n) == 0) {
            *a = verbs[i].a;
            return 1;
        }
    return 0;
}

#define SEG_IS(i, lit) (len[i] == sizeof(lit) - 1 && memcmp(seg[i], lit, len[i]) == 0)

int route_parse(const char *method, const char *path, struct route *r)
{
    memset(r, 0, sizeof *r);
    if (!method || !path || path[0] != '/')
        return set_error(r, 400, "bad path");
    size_t plen = strlen(path);
    if (plen >= ROUTE_PATH_MAX)
        return set_error(r, 414, "path too long");
    r->is_api = strncmp(path, "/api", 4) == 0 && (path[4] == '/' || path[4] == '\0');

    /* Split into segments and refuse anything that could walk a tree or hide a byte. */
    const char *seg[MAX_SEGS];
    size_t len[MAX_SEGS];
    int nseg = 0;
    if (plen > 1) {
        const char *p = path + 1;
        for (;;) {
            const char *e = strchr(p, '/');
            size_t n = e ? (size_t)(e - p) : strlen(p);
            if (n == 0)
                return set_error(r, 400, "bad path: empty segment");
            if ((n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
                return set_error(r, 400, "bad path: dot segment");
            for (size_t i = 0; i < n; i++) {
                unsigned char c = (unsigned char)p[i];
                if (c < 0x20 || c == 0x7f || c == '\\')
                    return set_error(r, 400, "bad path: forbidden character");
            }
            if (nseg == MAX_SEGS)
                return set_error(r, 404, "not found");
            seg[nseg] = p;
            len[nseg] = n;
            nseg++;
            if (!e)
                break;
            p = e + 1;
        }
    }

    if (!r->is_api) {
        if (!get_like(method)) {
            r->allow = "GET, HEAD";
            return set_error(r, 405, "method not allowed");
        }
        r->action = ROUTE_STATIC;
        if (copy(r->name, sizeof r->name, nseg == 0 ? "/index.html" : path,
                 nseg == 0 ? strlen("/index.html") : plen) < 0)
            return set_error(r, 404, "not found");
        return 0;
    }

    /* /api/recording/:id/VERB[/:token] */
    if (nseg >= 4 && nseg <= 5 && SEG_IS(1, "recording")) {
        enum route_action a;
        if (!control_verb(seg[3], len[3], &a))
            return set_error(r, 404, "unknown action");
        int tokenless = a == ROUTE_TAKE || a == ROUTE_TAKEOVER;
        if ((tokenless && nseg != 4) || (!tokenless && nseg > 5))
            return set_error(r, 404, "not found");
        /* Not HEAD: a control call changes state, and a HEAD must not (a prefetcher or a
         * link checker would take the device). */
        if (!is_method(method, "GET") && !is_method(method, "POST")) {
            r->allow = "GET, POST";
            return set_error(r, 405, "method not allowed");
        }
        if (copy(r->id, sizeof r->id, seg[2], len[2]) < 0 || !route_valid_id(r->id))
            return set_error(r, 404, "no such device");
        r->action = a;
        r->needs_token = !tokenless;
        if (nseg == 5) {
            if (copy(r->token, sizeof r->token, seg[4], len[4]) < 0 ||
                !route_valid_token(r->token)) {
                r->token[0] = '\0';
                return set_error(r, 401, "bad token");
            }
        }
        return 0;
    }
    /* /api/record_all/VERB[/:token] */
    if (nseg >= 3 && nseg <= 4 && SEG_IS(1, "record_all")) {
        if (!SEG_IS(2, "start") && !SEG_IS(2, "stop"))
            return set_error(r, 404, "unknown action");
        if (!get_like(method) && !is_method(method, "POST")) {
            r->allow = "GET, POST";
            return set_error(r, 405, "method not allowed");
        }
        r->action = SEG_IS(2, "start") ? ROUTE_START_ALL : ROUTE_STOP_ALL;
        r->needs_token = 1;
        if (nseg == 4 && (copy(r->token, sizeof r->token, seg[3], len[3]) < 0 ||
                          !route_valid_token(r->token))) {
            r->token[0] = '\0';
            return set_error(r, 401, "bad token");
        }
        return 0;
    }
    if (nseg == 2 && SEG_IS(1, "clock")) {
        if (!is_method(method, "POST")) {
            r->allow = "POST";
            return set_error(r, 405, "method not allowed");
        }
        r->action = ROUTE_CLOCK;
        r->needs_token = 1;
        return 0;
    }
    if (nseg == 2 && SEG_IS(1, "status")) {
        if (!get_like(method)) {
            r->allow = "GET, HEAD";
            return set_error(r, 405, "method not allowed");
        }
        r->action = ROUTE_STATUS;
        return 0;
    }
    if (nseg == 3 && SEG_IS(1, "status")) {
        if (!get_like(method)) {
            r->allow = "GET";
            return set_error(r, 405, "method not allowed");
        }
        if (copy(r->subid, sizeof r->subid, seg[2], len[2]) < 0)
            return set_error(r, 400, "subscription id too long");
        r->action = ROUTE_EVENTS;
        return 0;
    }
    if (nseg >= 2 && nseg <= 4 && SEG_IS(1, "recordings")) {
        if (nseg == 2) {
            if (!get_like(method)) {
                r->allow = "GET, HEAD";
                return set_error(r, 405, "method not allowed");
            }
            r->action = ROUTE_LIST;
            return 0;
        }
        if (nseg == 4 && !SEG_IS(3, "delete") && !SEG_IS(3, "peaks"))
            return set_error(r, 404, "not found");
        if (copy(r->name, sizeof r->name, seg[2], len[2]) < 0 || !route_valid_name(r->name)) {
            r->name[0] = '\0';
            return set_error(r, 400, "bad recording name");
        }
        if (nseg == 4 && SEG_IS(3, "peaks")) {
            if (!get_like(method)) {
                r->allow = "GET, HEAD";
                return set_error(r, 405, "method not allowed");
            }
            r->action = ROUTE_PEAKS;
            return 0;
        }
        if (nseg == 4) {
            if (!is_method(method, "POST")) {
                r->allow = "POST";
                return set_error(r, 405, "method not allowed");
            }
            r->action = ROUTE_DELETE;
        } else if (get_like(method)) {
            r->action = ROUTE_DOWNLOAD;
        } else if (is_method(method, "DELETE")) {
            r->action = ROUTE_DELETE;
        } else {
            r->allow = "GET, HEAD, DELETE";
            return set_error(r, 405, "method not allowed");
        }
        r->needs_token = r->action == ROUTE_DELETE;
        return 0;
    }
    return set_error(r, 404, "no such API route");
}

int route_request_line_ok(const char *line, size_t len)
{
    if (len < 2 || line[len - 1] != '\n')
        return 0;
    len--;
    if (line[len - 1] == '\r')
        len--;
    size_t i = 0;
    while (i < len && line[i] >= 'A' && line[i] <= 'Z')
        i++;
    if (i == 0 || i > 16 || i >= len || line[i] != ' ')
        return 0;
    size_t t = ++i;
    while (i < len && (unsigned char)line[i] > 0x20 && line[i] != 0x7f)
        i++;
    if (i == t || i >= len || line[i] != ' ')
        return 0;
    i++;
    return len - i == 8 && memcmp(line + i, "HTTP/", 5) == 0 && line[i + 5] >= '0' &&
           line[i + 5] <= '9' && line[i + 6] == '.' && line[i + 7] >= '0' && line[i + 7] <= '9';
}

void route_mask_path(const char *path, char *out, size_t out_len)
{
    if (!out_len)
        return;
    snprintf(out, out_len, "%s", path ? path : "");
    /* /api/recording/ID/VERB/TOKEN: cut after the 4th '/' following the prefix;
     * /api/record_all/VERB/TOKEN after the 3rd */
    int skip = 2;
    char *p;
    if (strncmp(out, "/api/recording/", 15) == 0)
        p = out + 15;
    else if (strncmp(out, "/api/record_all/", 16) == 0)
        p = out + 16, skip = 1;
    else
        return;
    for (int i = 0; i < skip && p; i++) {
        p = strchr(p, '/');
        if (p)
            p++;
    }
    if (p && *p)
        snprintf(p, out_len - (size_t)(p - out), "***");
}
