/* static_files: lookup in the table that web_assets.S builds. */
#include "server/static_files.h"

#include <openssl/sha.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

/* Ends with an all-zero entry. */
extern const struct web_asset pirec_web_assets[];

const struct web_asset *static_file_find(const char *path)
{
    if (!path)
        return NULL;
    for (const struct web_asset *a = pirec_web_assets; a->path; a++)
        if (strcmp(a->path, path) == 0)
            return a;
    return NULL;
}

#define MAX_ASSETS 32

static char etags[MAX_ASSETS][2][24];
static pthread_once_t etags_once = PTHREAD_ONCE_INIT;

static void compute_etags(void)
{
    for (size_t i = 0; i < MAX_ASSETS && pirec_web_assets[i].path; i++) {
        unsigned char md[SHA256_DIGEST_LENGTH];
        SHA256(pirec_web_assets[i].data, (size_t)pirec_web_assets[i].size, md);
        char hex[17];
        for (int k = 0; k < 8; k++)
            snprintf(hex + 2 * k, 3, "%02x", md[k]);
        snprintf(etags[i][0], sizeof(etags[i][0]), "\"%s\"", hex);
        snprintf(etags[i][1], sizeof(etags[i][1]), "\"%s-gz\"", hex);
    }
}

const char *static_file_etag(const struct web_asset *a, int gz)
{
    if (!a)
        return NULL;
    size_t i = (size_t)(a - pirec_web_assets);
    if (i >= MAX_ASSETS)
        return NULL;
    pthread_once(&etags_once, compute_etags);
    return etags[i][gz ? 1 : 0];
}

const struct web_asset *static_file_table(size_t *count)
{
    size_t n = 0;
    while (pirec_web_assets[n].path)
        n++;
    if (count)
        *count = n;
    return pirec_web_assets;
}
