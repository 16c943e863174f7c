/*
 * numparse: strict decimal numbers with a range, for command-line options and config
 * values. Any thread; no state.
 */
#ifndef PIREC_NUMPARSE_H
#define PIREC_NUMPARSE_H

#include <stddef.h>

/* s must be all decimal digits (no sign, no spaces, no suffix) and min <= value <= max.
 * 0 and *out, or -EINVAL (not a number) / -ERANGE (outside min..max). */
int parse_ullong_range(const char *s, unsigned long long min, unsigned long long max,
                       unsigned long long *out);
/* The same into an unsigned. */
int parse_uint_range(const char *s, unsigned min, unsigned max, unsigned *out);

/* A decimal number (seconds, megabytes): digits with an optional fraction ("2", "0.5",
 * "10."), no sign, exponent, spaces or suffix, and min <= value <= max. 0 and *out, or
 * -EINVAL / -ERANGE. */
int parse_double_range(const char *s, double min, double max, double *out);

/* For an option or a key: the same, and on failure a sentence in err that names the option
 * and its range, e.g. "--rate must be a whole number 1000..768000, not 'abc'". */
int parse_option_ull(const char *opt, const char *s, unsigned long long min,
                     unsigned long long max, unsigned long long *out, char *err, size_t n);
int parse_option_double(const char *opt, const char *s, double min, double max, double *out,
                        char *err, size_t n);

#endif
