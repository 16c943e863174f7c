/* ingest proto: see proto.h. */
#include "ingest/proto.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
