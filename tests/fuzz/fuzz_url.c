/* Fuzzes record URLs (src/record/url.c), what record_register() gets from a caller:
 * the first byte picks source or sink, the rest is the URL. */
#include "fuzz_util.h"

#include "record/url.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    char *url = fuzz_cstr(data + 1, size - 1);
    static struct rec_url u;
    rec_url_parse(url, data[0] & 1 ? REC_URL_SINK : REC_URL_SOURCE, &u);
    uint8_t *num = fuzz_copy(data + 1, size - 1);
    uint64_t v;
    rec_url_parse_u64((const char *)num, size - 1, &v);
    free(num);
    free(url);
    return 0;
}
