/*
 * utf8: copying text that came from a stranger into a bounded buffer without breaking it.
 * Any thread; no state.
 */
#ifndef PIREC_UTF8_H
#define PIREC_UTF8_H

#include <stddef.h>

/* Copies the well-formed, printable UTF-8 characters of src into dst (cap bytes with the
 * terminating NUL), dropping control characters (C0, DEL, C1) and malformed or overlong
 * sequences, and stopping before a character that would not fit whole: the result is
 * always valid UTF-8. Returns the bytes written (without the NUL). */
size_t utf8_copy_printable(char *dst, size_t cap, const char *src);

#endif
