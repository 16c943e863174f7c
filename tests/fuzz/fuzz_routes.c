/* Fuzzes the HTTP request routing (src/server/routes.c) with what a client on the LAN
 * controls: method and decoded path (split at the first NUL; libmicrohttpd never hands
 * over a NUL inside them), and the listen-address parser of http.h. The Range header has
 * its own harness (fuzz_range.c). */
#include "fuzz_util.h"

#include "common/listen_addr.h"
#include "server/routes.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nul = memchr(data, 0, size);
    size_t mlen = nul ? (size_t)(nul - data) : 0;
    char *method = fuzz_cstr(data, mlen);
    char *path = nul ? fuzz_cstr(nul + 1, size - mlen - 1) : fuzz_cstr(data, size);
    static struct route r;
    route_parse(nul ? method : "GET", path, &r);
    if (r.action == ROUTE_ERROR && (r.status < 400 || r.status > 499 || !r.error))
        abort();
    char masked[ROUTE_PATH_MAX + 8];
    route_mask_path(path, masked, sizeof masked);
    route_valid_id(path);
    route_valid_token(path);
    route_valid_name(path);
    char host[256];
    unsigned port;
    listen_addr_parse(path, host, sizeof host, &port);
    free(method);
    free(path);
    return 0;
}
