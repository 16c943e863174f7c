/* Fuzzes the Range header of downloads (src/server/http_range.c): the first 8 bytes are
 * the file size (little-endian; also tried modulo 4096, where ranges land inside the
 * file), the rest is the header's value. Checks what a client would see: a range answered
 * with 206 lies inside the file and is not empty, and an empty file never gets one. */
#include "fuzz_util.h"

#include "server/http_range.h"

static void check(const char *h, uint64_t size)
{
    uint64_t first = 0, last = 0;
    enum http_range r = http_range_parse(h, size, &first, &last);
    if (r != HTTP_RANGE_ONE && r != HTTP_RANGE_WHOLE && r != HTTP_RANGE_UNSATISFIABLE)
        abort();
    if (r == HTTP_RANGE_ONE && (size == 0 || first > last || last >= size))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 8)
        return 0;
    uint64_t fsize = 0;
    for (int i = 7; i >= 0; i--)
        fsize = fsize << 8 | data[i];
    char *h = fuzz_cstr(data + 8, size - 8);
    check(h, fsize);
    check(h, fsize % 4096);
    check(h, UINT64_MAX);
    free(h);
    return 0;
}
