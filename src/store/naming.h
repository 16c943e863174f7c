/*
 * naming: take file names and the file-system steps around them (mkdir -p, a rename that
 * never overwrites, fsync of a directory). Used by take.c and flac_repair.c.
 *
 * Threads: any; pure functions of their arguments plus the file system.
 */
#ifndef PIREC_STORE_NAMING_H
#define PIREC_STORE_NAMING_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define TAKE_DEFAULT_PATTERN "%D_%Y-%m-%dT%H-%M-%S%z"

/* Expands a name pattern: %D is the device id (characters other than [A-Za-z0-9._-]
 * become '_'), %% a '%', every other conversion is strftime's in local time at *t, with
 * any '/' it produces (%x, %c, ...) replaced by '-'. A '/' that the pattern itself
 * contains is kept (sub-folders; `pirec serve`'s config refuses it). 0, -EINVAL (empty
 * result, ".." component, a '%' at the end), -ENAMETOOLONG. */
int take_name_expand(char *out, size_t n, const char *pattern, const char *device_id,
                     const struct timespec *t);

/* ISO-8601 local time with offset: 2026-11-21T19:30:00+01:00. */
void take_iso_time(char *out, size_t n, const struct timespec *t);
/* "2026-12-01T11:45:12.345Z": CLOCK_REALTIME nanoseconds in UTC to the millisecond. */
void take_utc_time_ms(char *out, size_t n, int64_t realtime_ns);

/* mkdir -p with mode 0755. 0 or negative errno. */
int take_mkdir_p(const char *dir);

/* path with its extension (from the last '.' after the last '/') replaced by
 * "-<k><ext>" when k > 0: "a/b.flac", 2 -> "a/b-2.flac". */
int take_name_suffix(char *out, size_t n, const char *path, unsigned k);

/* Renames `from` to `*to` without ever replacing an existing file: if *to exists, tries
 * "-1", "-2" ... (take_name_suffix) and writes the name used back into to (size n).
 * Then fsyncs the directory. 0 or negative errno. */
int take_rename_noreplace(const char *from, char *to, size_t n);

/* fsync() of the directory that holds path. */
int take_fsync_parent(const char *path);

#endif
