/* disk: free space and recording time left; see take.h (disk_space). */
#include "store/take.h"

#include <errno.h>
#include <sys/statvfs.h>

int disk_space(const char *dir, const struct audio_format *fmt, uint64_t *free_bytes,
               double *seconds_left)
{
    struct statvfs vfs;
    if (statvfs(dir, &vfs) < 0)
        return -errno;
    /* f_bavail: what an unprivileged writer may use, the honest figure */
    uint64_t avail = (uint64_t)vfs.f_bavail * vfs.f_frsize;
    if (free_bytes)
        *free_bytes = avail;
    if (seconds_left) {
        double raw = fmt ? (double)audio_frame_bytes(fmt) * fmt->rate : 0;
        /* FLAC of real recordings: about 60 % of the raw PCM */
        *seconds_left = raw > 0 ? (double)avail / (raw * 0.6) : 0;
    }
    return 0;
}
