/*
 * static_files: the web page, embedded in the binary (src/server/web_assets.S X
 * the files in web/). A fixed table maps a URL path to bytes and a content type; no URL is ever turned
 * into a filesystem path, so there is nothing to traverse.
 *
 * Threads: any (read-only data).
 */
#ifndef PIREC_SERVER_STATIC_FILES_H
#define PIREC_SERVER_STATIC_FILES_H

#include <stddef.h>
#include <stdint.h>

struct web_asset {
    const char *path;            /* "/index.html" */
    const char *content_type;
    const unsigned char *data;
    uintptr_t size;
};

/* The asset for an exact path, or NULL. */
const struct web_asset *static_file_find(const char *path);
/* For listing/tests: the table and its length. */
const struct web_asset *static_file_table(size_t *count);

#endif
