/* ingest proto: see proto.h. */
#include "ingest/proto.h"

#include "common/listen_addr.h"

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
    if (!s || !*s) {
        snprintf(err, errlen, "empty --listen value (expected ADDR:PORT, e.g. 0.0.0.0:9090)");
        return -EINVAL;
    }
    /* The grammar is the shared one (common/listen_addr.h); what follows only finds words
     * for what is wrong. */
    unsigned p;
    if (listen_addr_parse(s, host, hostlen, &p) < 0) {
        const char *colon = strrchr(s, ':');
        const char *rb = strchr(s, ']');
        if ((s[0] == '[' && (!rb || rb[1] != ':')) ||
            (s[0] != '[' && colon && memchr(s, ':', (size_t)(colon - s))))
            snprintf(err, errlen, "bad --listen '%s': an IPv6 address goes in brackets "
                     "followed by :PORT, e.g. [::1]:9090", s);
        else if (!colon)
            snprintf(err, errlen, "bad --listen '%s': no port (expected ADDR:PORT, e.g. "
                     "0.0.0.0:9090, [::1]:9090 or :9090)", s);
        else if (s[0] == '[' && rb == s + 1)
            snprintf(err, errlen, "bad --listen '%s': empty or too long address", s);
        else
            snprintf(err, errlen, "bad --listen '%s': port must be a number from 0 to 65535 "
                     "(0 picks a free port)", s);
        return -EINVAL;
    }
    *v6 = s[0] == '[';
    if (s[0] == ':' || !strchr(s, ':'))
        host[0] = '\0';   /* no address given: every address (IPv6 too where there is) */
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
