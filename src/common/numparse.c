/* numparse: see numparse.h. strtoull alone accepts "-1", " 7" and "7x". */
#include "common/numparse.h"

#include <errno.h>
#include <stdlib.h>

int parse_ullong_range(const char *s, unsigned long long min, unsigned long long max,
                       unsigned long long *out)
{
    if (!s || *s < '0' || *s > '9')
        return -EINVAL;
    for (const char *p = s; *p; p++)
        if (*p < '0' || *p > '9')
            return -EINVAL;
    errno = 0;
    unsigned long long v = strtoull(s, NULL, 10);
    if (errno == ERANGE || v < min || v > max)
        return -ERANGE;
    *out = v;
    return 0;
}

int parse_uint_range(const char *s, unsigned min, unsigned max, unsigned *out)
{
    unsigned long long v;
    int rc = parse_ullong_range(s, min, max, &v);
    if (rc == 0)
        *out = (unsigned)v;
    return rc;
}
