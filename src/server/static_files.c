/* static_files: lookup in the table that web_assets.S builds. */
#include "server/static_files.h"

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

const struct web_asset *static_file_table(size_t *count)
{
    size_t n = 0;
    while (pirec_web_assets[n].path)
        n++;
    if (count)
        *count = n;
    return pirec_web_assets;
}
