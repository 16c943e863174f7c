/*
 * numparse: strict decimal numbers with a range, for command-line options and config
 * values. Any thread; no state.
 */
#ifndef PIREC_NUMPARSE_H
#define PIREC_NUMPARSE_H

/* s must be all decimal digits (no sign, no spaces, no suffix) and min <= value <= max.
 * 0 and *out, or -EINVAL (not a number) / -ERANGE (outside min..max). */
int parse_ullong_range(const char *s, unsigned long long min, unsigned long long max,
                       unsigned long long *out);
/* The same into an unsigned. */
int parse_uint_range(const char *s, unsigned min, unsigned max, unsigned *out);

#endif
