/*
 * fuzz_util: what the libFuzzer harnesses of tests/fuzz/ share. Each harness is one
 * fuzz_<name>.c defining LLVMFuzzerTestOneInput over public functions only, so that it
 * survives refactoring of the code behind them. Built by `make fuzz` (clang,
 * -fsanitize=fuzzer,address,undefined) into build-fuzz/fuzz/; see tests/fuzz/README.md.
 */
#ifndef PIREC_FUZZ_UTIL_H
#define PIREC_FUZZ_UTIL_H

#include "common/log.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* A NUL-terminated copy in a buffer of exactly size+1 bytes (ASan sees any overread). */
static inline char *fuzz_cstr(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (!s)
        abort();
    memcpy(s, data, size);
    s[size] = 0;
    return s;
}

/* A copy of exactly size bytes, not terminated. */
static inline uint8_t *fuzz_copy(const uint8_t *data, size_t size)
{
    uint8_t *b = malloc(size ? size : 1);
    if (!b)
        abort();
    memcpy(b, data, size);
    return b;
}

/* The parsers log what they refuse; a fuzzer would print millions of lines. */
static inline void fuzz_quiet(void)
{
    plog_set_level(0);
}

#ifndef FUZZ_OWN_INIT
/* A harness with more to set up defines FUZZ_OWN_INIT and its own initializer. */
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_quiet();
    return 0;
}
#endif

/* An in-memory file holding data, for parsers that take a path: writes path
 * ("/proc/self/fd/N") and returns the fd (kept open for the next input). */
static inline int fuzz_memfile(const uint8_t *data, size_t size, char *path, size_t n)
{
    static int fd = -1;
    if (fd < 0 && (fd = memfd_create("fuzz-input", MFD_CLOEXEC)) < 0)
        abort();
    if (ftruncate(fd, 0) < 0 || (size && pwrite(fd, data, size, 0) != (ssize_t)size))
        abort();
    snprintf(path, n, "/proc/self/fd/%d", fd);
    return fd;
}

#endif
