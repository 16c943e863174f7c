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
    const unsigned char *gz_data;   /* gzip -9n of data (built by make); NULL: none (PNG) */
    uintptr_t gz_size;
};

/* The asset for an exact path, or NULL. */
const struct web_asset *static_file_find(const char *path);
/* The strong ETag of an asset's variant: "\"" + hex of the first 8 bytes of the SHA-256
 * of data + "\"", with "-gz" before the closing quote for the gzip variant (computed once). */
const char *static_file_etag(const struct web_asset *a, int gz);
/* For listing/tests: the table and its length. */
const struct web_asset *static_file_table(size_t *count);

#endif
