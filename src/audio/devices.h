/*
 * devices: what capture devices exist and what they can do, and the hotplug monitor.
 *
 * devices_scan() walks the ALSA cards (snd_card_next + the card's control and PCM info;
 * with a proc_root other than "/proc/asound" it reads a fake tree instead, for tests:
 * proc_root/cards, proc_root/cardN/id, a directory proc_root/cardN/pcmDc per capture
 * device, and optionally proc_root/cardN/pcmDc/pirec-caps with lines "formats: S16_LE ...",
 * "rates: 44100 48000", "channels: MIN MAX" since a fake device has no hardware to probe,
 * and "pcm: NAME" to open NAME instead of hw:CARD=X, e.g. a file source for pirec serve).
 * The hotplug monitor watches libudev's sound subsystem and inotify on /dev/snd, with a
 * periodic rescan as fallback; a new card is reported only once its PCM really opens
 * (or, for a fake proc tree, once its pcm*c directory exists).
 *
 * Threads: devices_scan from any thread. The monitor runs its own thread and calls the
 * callback there, once per add and once per remove.
 * Ownership: devices_scan fills a caller-provided array.
 */
#ifndef PIREC_AUDIO_DEVICES_H
#define PIREC_AUDIO_DEVICES_H

#include "audio/format.h"

#include <stddef.h>

#define DEVICE_MAX_RATES 16

struct device_info {
    char id[64];            /* the card id in lower case ("usb", "microphone"), or the
                               name given in the config ("scarlett") */
    char card_id[64];       /* ALSA card id as is ("USB") */
    int  card;              /* ALSA card index */
    int  device;            /* PCM device index */
    char name[128];         /* human name ("Scarlett 2i2 USB") */
    char pcm[96];           /* what to open: "hw:CARD=USB,DEV=0" */
    unsigned formats;       /* bit (1 << enum sample_format) per accepted format */
    unsigned rates[DEVICE_MAX_RATES]; /* accepted standard rates, 0-terminated */
    unsigned rate_min, rate_max;
    unsigned channels_min, channels_max;
};

/* Fills up to max entries; returns how many capture devices exist (may be > max), or a
 * negative errno. proc_root NULL = "/proc/asound". */
int devices_scan(const char *proc_root, struct device_info *out, size_t max);

enum hotplug_event { HOTPLUG_ADD = 1, HOTPLUG_REMOVE = 2 };
typedef void (*hotplug_func)(enum hotplug_event ev, const struct device_info *dev, void *arg);

struct hotplug_config {
    const char *proc_root;      /* NULL = "/proc/asound" */
    const char *dev_snd;        /* NULL = "/dev/snd" */
    unsigned rescan_ms;         /* periodic rescan (default 2000; tests use less) */
    int use_udev;               /* default 1; 0 in tests with a fake tree */
};

struct hotplug;
/* Reports every device present at start as HOTPLUG_ADD, then changes. */
int  hotplug_start(struct hotplug **out, const struct hotplug_config *cfg, hotplug_func cb, void *arg);
void hotplug_stop(struct hotplug *h);

#endif
