/* http_range: the Range header of a download. See http_range.h. */
#include "server/http_range.h"

#include <stddef.h>
#include <strings.h>

struct span {
    int ok;                /* satisfiable against the size */
    uint64_t first, last;
};

static const char *skip_ows(const char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    return s;
}

/* Decimal digits at *s, saturating at UINT64_MAX; advances *s. -1 when there is none. */
static int digits(const char **s, uint64_t *out)
{
    const char *p = *s;
    uint64_t v = 0;
    if (*p < '0' || *p > '9')
        return -1;
    for (; *p >= '0' && *p <= '9'; p++) {
        unsigned d = (unsigned)(*p - '0');
        v = v > (UINT64_MAX - d) / 10 ? UINT64_MAX : v * 10 + d;
    }
    *s = p;
    *out = v;
    return 0;
}

/* One byte-range-spec or suffix-byte-range-spec at *s, up to the next ',' or the end.
 * 0 and *sp, or -1 when it is malformed. */
static int element(const char **s, uint64_t size, struct span *sp)
{
    const char *p = *s;
    uint64_t a = 0, b = UINT64_MAX;
    int suffix = *p == '-';
    if (!suffix && digits(&p, &a) < 0)
        return -1;
    if (*p++ != '-')
        return -1;
    int has_b = digits(&p, &b) == 0;
    if (suffix && !has_b)
        return -1;
    p = skip_ows(p);
    if (*p && *p != ',')
        return -1;
    *s = p;
    sp->ok = 0;
    if (suffix) {                  /* the last b bytes; "-0" asks for nothing */
        if (b == 0 || size == 0)
            return 0;
        sp->ok = 1;
        sp->first = b >= size ? 0 : size - b;
        sp->last = size - 1;
        return 0;
    }
    if (has_b && b < a)            /* RFC 7233 2.1: invalid, the header is ignored */
        return -1;
    if (a >= size)
        return 0;
    sp->ok = 1;
    sp->first = a;
    sp->last = b >= size ? size - 1 : b;
    return 0;
}

enum http_range http_range_parse(const char *h, uint64_t size, uint64_t *first,
                                 uint64_t *last)
{
    if (!h || strncasecmp(h, "bytes=", 6) != 0)
        return HTTP_RANGE_WHOLE;
    const char *p = h + 6;
    unsigned n = 0, satisfiable = 0;
    struct span one = {0};
    for (;;) {
        p = skip_ows(p);
        if (*p == ',') {           /* an empty list element */
            p++;
            continue;
        }
        if (!*p)
            break;
        if (++n > HTTP_RANGE_MAX_ELEMENTS)
            return HTTP_RANGE_WHOLE;
        struct span sp;
        if (element(&p, size, &sp) < 0)
            return HTTP_RANGE_WHOLE;
        if (sp.ok && satisfiable++ == 0)
            one = sp;
    }
    if (n == 0)
        return HTTP_RANGE_WHOLE;   /* "bytes=" with no range: malformed */
    if (satisfiable == 0)
        return HTTP_RANGE_UNSATISFIABLE;
    if (n > 1)
        return HTTP_RANGE_WHOLE;   /* no multipart answers: everything, with 200 */
    *first = one.first;
    *last = one.last;
    return HTTP_RANGE_ONE;
}
