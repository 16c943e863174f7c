/*
 * devices: the capture devices that exist, from alsa-lib or from a fake /proc/asound tree
 * (tests), and the hotplug monitor thread that reports them coming and going.
 *
 * A fake tree looks like /proc/asound: `cards` (for the names), `cardN/id`, and a
 * directory `cardN/pcmDc` per capture device (its `info` is optional). Fake devices have
 * no hardware to probe, so their abilities come from an optional text file
 * `cardN/pcmDc/pirec-caps`, one "key: values" per line:
 *     formats: S16_LE S24_3LE
 *     rates: 44100 48000 96000
 *     channels: 1 2          (min max, or one number)
 */
#include "audio/devices.h"
#include "common/log.h"

#include <alsa/asoundlib.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <libudev.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#define DEFAULT_PROC "/proc/asound"
#define HOTPLUG_MAX 64

static const unsigned std_rates[] = {8000, 11025, 16000, 22050, 32000, 44100, 48000, 88200,
                                     96000, 176400, 192000, 352800, 384000};
#define N_STD_RATES (sizeof std_rates / sizeof std_rates[0])

static int is_real_proc(const char *root)
{
    return !root || strcmp(root, DEFAULT_PROC) == 0;
}

static void fill_ids(struct device_info *d, const char *card_id, int card, int dev)
{
    snprintf(d->card_id, sizeof d->card_id, "%s", card_id);
    size_t i = 0;
    for (; card_id[i] && i < sizeof d->id - 1; i++)
        d->id[i] = (char)tolower((unsigned char)card_id[i]);
    d->id[i] = 0;
    if (dev > 0) {
        size_t l = strlen(d->id);
        snprintf(d->id + l, sizeof d->id - l, "-%d", dev);
    }
    d->card = card;
    d->device = dev;
    snprintf(d->pcm, sizeof d->pcm, "hw:CARD=%.60s,DEV=%d", card_id, dev);
}

/* ---- alsa-lib ---------------------------------------------------------------------- */

static const struct { enum sample_format f; snd_pcm_format_t a; } fmt_map[] = {
    {SF_S16_LE, SND_PCM_FORMAT_S16_LE},
    {SF_S24_3LE, SND_PCM_FORMAT_S24_3LE},
    {SF_S24_LE, SND_PCM_FORMAT_S24_LE},
    {SF_S32_LE, SND_PCM_FORMAT_S32_LE},
};

/* Opens the PCM without blocking and reads what it accepts. 0, or the open error. */
static int probe_pcm(struct device_info *d)
{
    snd_pcm_t *pcm;
    int r = snd_pcm_open(&pcm, d->pcm, SND_PCM_STREAM_CAPTURE, SND_PCM_NONBLOCK);
    if (r < 0)
        return r;
    snd_pcm_hw_params_t *hw;
    snd_pcm_hw_params_alloca(&hw);
    if ((r = snd_pcm_hw_params_any(pcm, hw)) >= 0) {
        for (size_t i = 0; i < 4; i++)
            if (snd_pcm_hw_params_test_format(pcm, hw, fmt_map[i].a) == 0)
                d->formats |= 1u << fmt_map[i].f;
        size_t n = 0;
        for (size_t i = 0; i < N_STD_RATES && n < DEVICE_MAX_RATES - 1; i++)
            if (snd_pcm_hw_params_test_rate(pcm, hw, std_rates[i], 0) == 0)
                d->rates[n++] = std_rates[i];
        d->rates[n] = 0;
        snd_pcm_hw_params_get_rate_min(hw, &d->rate_min, NULL);
        snd_pcm_hw_params_get_rate_max(hw, &d->rate_max, NULL);
        snd_pcm_hw_params_get_channels_min(hw, &d->channels_min);
        snd_pcm_hw_params_get_channels_max(hw, &d->channels_max);
        r = 0;
    }
    snd_pcm_close(pcm);
    return r;
}

static int scan_alsa(struct device_info *out, size_t max, int ready_only)
{
    int card = -1, count = 0;
    while (snd_card_next(&card) == 0 && card >= 0) {
        char ctlname[32];
        snprintf(ctlname, sizeof ctlname, "hw:%d", card);
        snd_ctl_t *ctl;
        if (snd_ctl_open(&ctl, ctlname, 0) < 0)
            continue;
        snd_ctl_card_info_t *ci;
        snd_ctl_card_info_alloca(&ci);
        if (snd_ctl_card_info(ctl, ci) < 0) {
            snd_ctl_close(ctl);
            continue;
        }
        int dev = -1;
        while (snd_ctl_pcm_next_device(ctl, &dev) == 0 && dev >= 0) {
            snd_pcm_info_t *pi;
            snd_pcm_info_alloca(&pi);
            snd_pcm_info_set_device(pi, (unsigned)dev);
            snd_pcm_info_set_subdevice(pi, 0);
            snd_pcm_info_set_stream(pi, SND_PCM_STREAM_CAPTURE);
            if (snd_ctl_pcm_info(ctl, pi) < 0)
                continue;   /* playback only */
            struct device_info d = {0};
            fill_ids(&d, snd_ctl_card_info_get_id(ci), card, dev);
            snprintf(d.name, sizeof d.name, "%s", snd_ctl_card_info_get_name(ci));
            int r = probe_pcm(&d);
            /* busy = someone (maybe our own capture) has it open: it is there */
            if (ready_only && r < 0 && r != -EBUSY)
                continue;
            if ((size_t)count < max)
                out[count] = d;
            count++;
        }
        snd_ctl_close(ctl);
    }
    return count;
}

/* ---- fake tree --------------------------------------------------------------------- */

static int read_line(const char *path, char *buf, size_t len)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return -errno;
    if (!fgets(buf, (int)len, f))
        buf[0] = 0;
    fclose(f);
    buf[strcspn(buf, "\r\n")] = 0;
    return 0;
}

static void card_name(const char *root, int card, char *name, size_t len)
{
    char path[4096], line[512];
    snprintf(path, sizeof path, "%s/cards", root);
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    while (fgets(line, sizeof line, f)) {
        int n;
        char *dash = strstr(line, " - ");
        if (sscanf(line, " %d [", &n) == 1 && n == card && dash) {
            snprintf(name, len, "%s", dash + 3);
            name[strcspn(name, "\r\n")] = 0;
            break;
        }
    }
    fclose(f);
}

static void read_caps(const char *dir, struct device_info *d)
{
    char path[4400], line[512];
    snprintf(path, sizeof path, "%s/pirec-caps", dir);
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    while (fgets(line, sizeof line, f)) {
        char *v = strchr(line, ':');
        if (!v)
            continue;
        *v++ = 0;
        char *save = NULL;
        if (strcmp(line, "formats") == 0) {
            for (char *t = strtok_r(v, " \t\r\n", &save); t; t = strtok_r(NULL, " \t\r\n", &save)) {
                enum sample_format sf;
                if (sample_format_parse(t, &sf) == 0)
                    d->formats |= 1u << sf;
            }
        } else if (strcmp(line, "rates") == 0) {
            size_t n = 0;
            for (char *t = strtok_r(v, " \t\r\n", &save); t && n < DEVICE_MAX_RATES - 1;
                 t = strtok_r(NULL, " \t\r\n", &save)) {
                unsigned r = (unsigned)strtoul(t, NULL, 10);
                if (r == 0)
                    continue;
                d->rates[n++] = r;
                if (!d->rate_min || r < d->rate_min)
                    d->rate_min = r;
                if (r > d->rate_max)
                    d->rate_max = r;
            }
            d->rates[n] = 0;
        } else if (strcmp(line, "pcm") == 0) {
            /* what to open instead of hw:CARD=X: lets a test plug in a fake card that really
             * opens (e.g. "file:/x.wav?realtime=1&loop=1", which pirec serve understands) */
            v += strspn(v, " \t");
            v[strcspn(v, "\r\n")] = 0;
            if (*v && strlen(v) < sizeof d->pcm)
                snprintf(d->pcm, sizeof d->pcm, "%s", v);
        } else if (strcmp(line, "channels") == 0) {
            unsigned a = 0, b = 0;
            int k = sscanf(v, "%u %u", &a, &b);
            d->channels_min = a;
            d->channels_max = k == 2 ? b : a;
        }
    }
    fclose(f);
}

static int cmp_int(const void *a, const void *b)
{
    return *(const int *)a - *(const int *)b;
}

/* numbers N of the entries "<prefix>N<suffix>" in dir, sorted */
static size_t list_numbered(const char *dir, const char *prefix, char suffix, int *out, size_t max)
{
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    size_t n = 0, pl = strlen(prefix);
    struct dirent *e;
    while ((e = readdir(d)) && n < max) {
        if (strncmp(e->d_name, prefix, pl) != 0 || !isdigit((unsigned char)e->d_name[pl]))
            continue;
        char *end;
        long v = strtol(e->d_name + pl, &end, 10);
        if ((suffix && (end[0] != suffix || end[1])) || (!suffix && *end))
            continue;
        out[n++] = (int)v;
    }
    closedir(d);
    qsort(out, n, sizeof out[0], cmp_int);
    return n;
}

static int scan_fake(const char *root, struct device_info *out, size_t max)
{
    struct stat st;
    if (stat(root, &st) < 0)
        return -errno;
    int cards[64], count = 0;
    size_t nc = list_numbered(root, "card", 0, cards, 64);
    for (size_t i = 0; i < nc; i++) {
        char dir[4096], path[4200], id[64];
        snprintf(dir, sizeof dir, "%s/card%d", root, cards[i]);
        snprintf(path, sizeof path, "%s/id", dir);
        if (read_line(path, id, sizeof id) < 0 || !id[0])
            continue;   /* card still being set up */
        int pcms[32];
        size_t np = list_numbered(dir, "pcm", 'c', pcms, 32);
        for (size_t j = 0; j < np; j++) {
            struct device_info d = {0};
            fill_ids(&d, id, cards[i], pcms[j]);
            snprintf(d.name, sizeof d.name, "%s", id);
            card_name(root, cards[i], d.name, sizeof d.name);
            snprintf(path, sizeof path, "%s/pcm%dc", dir, pcms[j]);
            read_caps(path, &d);
            if ((size_t)count < max)
                out[count] = d;
            count++;
        }
    }
    return count;
}

static int scan(const char *proc_root, struct device_info *out, size_t max, int ready_only)
{
    if (is_real_proc(proc_root))
        return scan_alsa(out, max, ready_only);
    return scan_fake(proc_root, out, max);
}

int devices_scan(const char *proc_root, struct device_info *out, size_t max)
{
    return scan(proc_root, out, max, 0);
}

/* ---- hotplug ----------------------------------------------------------------------- */

struct hotplug {
    char *proc_root;      /* NULL = real */
    char *dev_snd;
    unsigned rescan_ms;
    int use_udev;
    hotplug_func cb;
    void *arg;
    int stop_fd;
    pthread_t thread;
    struct device_info cur[HOTPLUG_MAX];
    size_t ncur;
    struct device_info scan[HOTPLUG_MAX];   /* the monitor thread's scratch */
};

static int same_device(const struct device_info *a, const struct device_info *b)
{
    return strcmp(a->pcm, b->pcm) == 0 && strcmp(a->name, b->name) == 0 && a->card == b->card;
}

static void rescan(struct hotplug *h)
{
    struct device_info *now = h->scan;
    int n = scan(h->proc_root, now, HOTPLUG_MAX, 1);
    if (n < 0)
        n = 0;   /* the tree vanished: every device is gone */
    if (n > HOTPLUG_MAX)
        n = HOTPLUG_MAX;
    for (size_t i = 0; i < h->ncur;) {
        int found = 0;
        for (int j = 0; j < n && !found; j++)
            found = same_device(&h->cur[i], &now[j]);
        if (found) {
            i++;
            continue;
        }
        struct device_info gone = h->cur[i];
        h->cur[i] = h->cur[--h->ncur];
        log_info("hotplug", "removed %s (%s)", gone.id, gone.pcm);
        h->cb(HOTPLUG_REMOVE, &gone, h->arg);
    }
    for (int j = 0; j < n; j++) {
        int found = 0;
        for (size_t i = 0; i < h->ncur && !found; i++)
            found = same_device(&h->cur[i], &now[j]);
        if (found || h->ncur >= HOTPLUG_MAX)
            continue;
        h->cur[h->ncur++] = now[j];
        log_info("hotplug", "added %s (%s, %s)", now[j].id, now[j].pcm, now[j].name);
        h->cb(HOTPLUG_ADD, &now[j], h->arg);
    }
}

/* inotify on the fake tree: its root and each card directory (pcm dirs appear there) */
static void watch_tree(struct hotplug *h, int ifd)
{
    const uint32_t mask = IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_CLOSE_WRITE |
                          IN_ATTRIB | IN_DELETE_SELF;
    if (ifd < 0)
        return;
    if (h->dev_snd)
        inotify_add_watch(ifd, h->dev_snd, mask);
    if (!h->proc_root)
        return;   /* /proc does not support inotify */
    inotify_add_watch(ifd, h->proc_root, mask);
    int cards[64];
    size_t nc = list_numbered(h->proc_root, "card", 0, cards, 64);
    for (size_t i = 0; i < nc; i++) {
        char dir[4096];
        snprintf(dir, sizeof dir, "%s/card%d", h->proc_root, cards[i]);
        inotify_add_watch(ifd, dir, mask);
    }
}

static void *hotplug_main(void *arg)
{
    struct hotplug *h = arg;
    struct udev *udev = NULL;
    struct udev_monitor *mon = NULL;
    if (h->use_udev && (udev = udev_new()) &&
        (mon = udev_monitor_new_from_netlink(udev, "udev")) &&
        udev_monitor_filter_add_match_subsystem_devtype(mon, "sound", NULL) >= 0 &&
        udev_monitor_enable_receiving(mon) >= 0) {
        log_debug("hotplug", "udev monitor on the sound subsystem");
    } else if (h->use_udev) {
        log_debug("hotplug", "no udev monitor; rescanning every %u ms", h->rescan_ms);
        if (mon)
            udev_monitor_unref(mon);
        mon = NULL;
    }
    int ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    watch_tree(h, ifd);
    rescan(h);
    int quick = 0;   /* after an event, rescan soon a few times: ALSA lags behind udev */
    for (;;) {
        struct pollfd p[3] = {{h->stop_fd, POLLIN, 0}, {ifd, POLLIN, 0},
                              {mon ? udev_monitor_get_fd(mon) : -1, POLLIN, 0}};
        int timeout = quick > 0 ? 100 : (int)h->rescan_ms;
        int r = poll(p, 3, timeout);
        if (r < 0 && errno != EINTR)
            break;
        if (p[0].revents)
            break;
        if (r > 0 && p[1].revents) {
            char buf[4096];
            while (read(ifd, buf, sizeof buf) > 0)
                ;
            quick = 5;
        }
        if (r > 0 && p[2].revents) {
            struct udev_device *d;
            while ((d = udev_monitor_receive_device(mon)))
                udev_device_unref(d);
            quick = 20;
        }
        if (quick > 0)
            quick--;
        watch_tree(h, ifd);   /* new card directories need their own watch */
        rescan(h);
    }
    if (ifd >= 0)
        close(ifd);
    if (mon)
        udev_monitor_unref(mon);
    if (udev)
        udev_unref(udev);
    return NULL;
}

int hotplug_start(struct hotplug **out, const struct hotplug_config *cfg, hotplug_func cb, void *arg)
{
    if (!out || !cb)
        return -EINVAL;
    struct hotplug *h = calloc(1, sizeof *h);
    if (!h)
        return -ENOMEM;
    const char *root = cfg ? cfg->proc_root : NULL;
    const char *dev = cfg && cfg->dev_snd ? cfg->dev_snd : "/dev/snd";
    h->proc_root = is_real_proc(root) ? NULL : strdup(root);
    struct stat st;
    h->dev_snd = stat(dev, &st) == 0 ? strdup(dev) : NULL;
    h->rescan_ms = cfg && cfg->rescan_ms ? cfg->rescan_ms : 2000;
    h->use_udev = cfg ? cfg->use_udev : 1;
    h->cb = cb;
    h->arg = arg;
    h->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    int r = h->stop_fd < 0 ? -errno : 0;
    if (r == 0 && (r = -pthread_create(&h->thread, NULL, hotplug_main, h)) == 0) {
        pthread_setname_np(h->thread, "hotplug");
        *out = h;
        return 0;
    }
    if (h->stop_fd >= 0)
        close(h->stop_fd);
    free(h->proc_root);
    free(h->dev_snd);
    free(h);
    return r;
}

void hotplug_stop(struct hotplug *h)
{
    if (!h)
        return;
    uint64_t one = 1;
    if (write(h->stop_fd, &one, sizeof one) < 0)
        log_warn("hotplug", "cannot wake the monitor: %s", strerror(errno));
    pthread_join(h->thread, NULL);
    close(h->stop_fd);
    free(h->proc_root);
    free(h->dev_snd);
    free(h);
}
