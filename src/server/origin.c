/* origin: Host and Origin checks. See origin.h. */
#include "server/origin.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

/* Letters, digits, '-', '.', '_' (some LANs use it), at most 253, no empty label. */
static int valid_name(const char *s, size_t n)
{
    if (n == 0 || n >= ORIGIN_NAME_MAX || s[0] == '.' || s[0] == '-')
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!isalnum(c) && c != '-' && c != '.' && c != '_')
            return 0;
        if (c == '.' && i + 1 < n && s[i + 1] == '.')
            return 0;
    }
    return 1;
}

static int add_name(struct origin_policy *p, const char *s, size_t n)
{
    while (n && s[n - 1] == '.')
        n--;
    if (!valid_name(s, n))
        return -EINVAL;
    if (p->n >= ORIGIN_MAX_NAMES)
        return -E2BIG;
    for (size_t i = 0; i < n; i++)
        p->names[p->n][i] = (char)tolower((unsigned char)s[i]);
    p->names[p->n][n] = 0;
    p->n++;
    return 0;
}

/* Calls add_name for each name of a comma/space separated list. */
static int add_list(struct origin_policy *p, const char *list, char *err, size_t err_len)
{
    const char *s = list ? list : "";
    while (*s) {
        s += strspn(s, ", \t");
        size_t n = strcspn(s, ", \t");
        if (!n)
            break;
        int rc = add_name(p, s, n);
        if (rc < 0) {
            if (err && err_len)
                snprintf(err, err_len, rc == -E2BIG ? "too many host names (at most %d)" :
                         "'%.*s' is not a host name", rc == -E2BIG ? ORIGIN_MAX_NAMES - 4 :
                         (int)(n > 100 ? 100 : n), s);
            return rc;
        }
        s += n;
    }
    return 0;
}

int origin_names_valid(const char *list, char *err, size_t err_len)
{
    static struct origin_policy scratch;   /* ~5 KiB; the config is read on one thread */
    scratch.n = 4;                          /* as many as origin_policy_init adds first */
    return add_list(&scratch, list, err, err_len);
}

int origin_policy_init(struct origin_policy *p, const char *extra, char *err, size_t err_len)
{
    memset(p, 0, sizeof(*p));
    add_name(p, "localhost", 9);
    char host[256];
    if (gethostname(host, sizeof(host)) == 0) {
        host[sizeof(host) - 1] = 0;
        size_t n = strcspn(host, ".");   /* "pi" of "pi.lan": both are names of ours */
        if (add_name(p, host, strlen(host)) == 0 && n < strlen(host))
            add_name(p, host, n);
        char local[300];
        snprintf(local, sizeof(local), "%.*s.local", (int)n, host);
        add_name(p, local, strlen(local));
    }
    return add_list(p, extra, err, err_len);
}

/* Splits "name[:port]" / "[v6][:port]" into the host part (brackets removed). */
static int host_part(const char *h, char *out, size_t n)
{
    size_t l;
    if (h[0] == '[') {
        const char *rb = strchr(h, ']');
        if (!rb || (rb[1] && rb[1] != ':'))
            return -1;
        h++;
        l = (size_t)(rb - h);
    } else {
        const char *colon = strchr(h, ':');
        l = colon ? (size_t)(colon - h) : strlen(h);
        if (colon)
            for (const char *d = colon + 1; *d; d++)
                if (!isdigit((unsigned char)*d))
                    return -1;
    }
    if (l == 0 || l >= n)
        return -1;
    memcpy(out, h, l);
    out[l] = 0;
    while (l && out[l - 1] == '.')
        out[--l] = 0;
    return 0;
}

int origin_host_allowed(const struct origin_policy *p, const char *host)
{
    if (!host)
        return 1;
    char name[ORIGIN_NAME_MAX];
    if (host_part(host, name, sizeof(name)) < 0)
        return 0;
    unsigned char buf[16];
    if (inet_pton(AF_INET, name, buf) == 1 || inet_pton(AF_INET6, name, buf) == 1)
        return 1;
    size_t l = strlen(name);
    if (l > 10 && strcasecmp(name + l - 10, ".localhost") == 0)
        return 1;
    for (unsigned i = 0; i < p->n; i++)
        if (strcasecmp(p->names[i], name) == 0)
            return 1;
    return 0;
}

/* "host:80" and "host" are the same authority for http (443 for https). */
static void authority(const char *a, size_t n, const char *default_port, char *out, size_t cap)
{
    size_t dl = strlen(default_port);
    if (n > dl + 1 && a[n - dl - 1] == ':' && strncmp(a + n - dl, default_port, dl) == 0 &&
        a[n - dl - 2] != ':')
        n -= dl + 1;
    if (n >= cap)
        n = cap - 1;
    for (size_t i = 0; i < n; i++)
        out[i] = (char)tolower((unsigned char)a[i]);
    out[n] = 0;
}

int origin_same_origin(const char *host, const char *origin, const char *sec_fetch_site,
                       const char *referer)
{
    if (sec_fetch_site)
        return strcasecmp(sec_fetch_site, "same-origin") == 0 ||
               strcasecmp(sec_fetch_site, "none") == 0;
    if (!origin)
        origin = referer;   /* a full URL: only its scheme and authority are compared */
    if (!origin)
        return 1;
    const char *sep = strstr(origin, "://");
    if (!sep || !host)
        return 0;   /* "null" (sandboxed frames, file: pages) and anything odd */
    const char *def = strncasecmp(origin, "https", 5) == 0 ? "443" : "80";
    const char *a = sep + 3;
    size_t an = strcspn(a, "/");
    char from[300], to[300];
    authority(a, an, def, from, sizeof(from));
    authority(host, strlen(host), def, to, sizeof(to));
    return strcmp(from, to) == 0;
}
