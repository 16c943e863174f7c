/* listen_addr: see listen_addr.h. */
#include "common/listen_addr.h"

#include "common/numparse.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

int listen_addr_parse(const char *s, char *host, size_t host_len, unsigned *port)
{
    if (!s || !*s || !host || !host_len)
        return -EINVAL;
    const char *h = s, *portstr;
    size_t hl;
    if (s[0] == '[') {
        const char *rb = strchr(s, ']');
        if (!rb || rb[1] != ':')
            return -EINVAL;
        h = s + 1;
        hl = (size_t)(rb - h);
        portstr = rb + 2;
        if (hl == 0)
            return -EINVAL;
    } else {
        const char *colon = strrchr(s, ':');
        if (!colon) {
            hl = 0;                 /* "PORT" */
            portstr = s;
        } else {
            if (memchr(s, ':', (size_t)(colon - s)))
                return -EINVAL;     /* a bare IPv6 address needs brackets */
            hl = (size_t)(colon - s);
            portstr = colon + 1;
        }
    }
    if (hl >= host_len)
        return -EINVAL;
    if (parse_uint_range(portstr, 0, 65535, port) < 0)
        return -EINVAL;
    memcpy(host, h, hl);
    host[hl] = '\0';
    if (!host[0])
        snprintf(host, host_len, "0.0.0.0");
    return 0;
}
