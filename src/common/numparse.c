/* numparse: see numparse.h. strtoull alone accepts "-1", " 7" and "7x". */
#include "common/numparse.h"

#include <errno.h>
#include <stdio.h>
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

int parse_double_range(const char *s, double min, double max, double *out)
{
    if (!s || *s < '0' || *s > '9')
        return -EINVAL;
    int dots = 0;
    for (const char *p = s; *p; p++) {
        if (*p == '.' && ++dots == 1)
            continue;
        if (*p < '0' || *p > '9')
            return -EINVAL;
    }
    errno = 0;
    double v = strtod(s, NULL);
    if (errno == ERANGE || !(v >= min && v <= max))
        return -ERANGE;
    *out = v;
    return 0;
}

int parse_option_ull(const char *opt, const char *s, unsigned long long min,
                     unsigned long long max, unsigned long long *out, char *err, size_t n)
{
    int rc = parse_ullong_range(s, min, max, out);
    if (rc < 0 && err && n) {
        if (max == min + 1)
            snprintf(err, n, "%s must be %llu or %llu, not '%s'", opt, min, max, s);
        else
            snprintf(err, n, "%s must be a whole number %llu..%llu, not '%s'", opt, min, max,
                     s);
    }
    return rc;
}

int parse_option_double(const char *opt, const char *s, double min, double max, double *out,
                        char *err, size_t n)
{
    int rc = parse_double_range(s, min, max, out);
    if (rc < 0 && err && n)
        snprintf(err, n, "%s must be a number %g..%g, not '%s'", opt, min, max, s);
    return rc;
}
