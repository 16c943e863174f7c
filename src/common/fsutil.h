/*
 * fsutil: small file-system steps several modules need.
 * Any thread; no shared state.
 */
#ifndef PIREC_FSUTIL_H
#define PIREC_FSUTIL_H

#include <sys/types.h>

/* mkdir -p: creates path and its missing parents with mode (existing ones are left as
 * they are). 0, -ENOTDIR when path exists but is not a directory, -ENAMETOOLONG, or the
 * negative errno of the mkdir that failed. */
int fs_mkdir_p(const char *path, mode_t mode);

#endif
