/*
 * pirec devices: lists the capture devices and what they can do, as a table or JSON;
 * with --watch, prints them as they come and go until interrupted. Main thread only
 * (the --watch callback runs on the hotplug thread and only prints).
 */
#include "audio/devices.h"
#include "cli/commands.h"

#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEVICES 64

static void usage(FILE *f)
{
    fprintf(f,
            "usage: pirec devices [--json] [--proc DIR] [--watch [--interval MS]]\n"
            "  Lists the capture devices (ALSA cards) and the formats, rates and channels\n"
            "  they accept.\n"
            "  --json          machine-readable output\n"
            "  --proc DIR      read a /proc/asound-like tree instead of ALSA (for tests)\n"
            "  --watch         print devices as they are plugged in and removed (Ctrl-C ends)\n"
            "  --interval MS   rescan period while watching (default 2000)\n");
}

static void formats_text(unsigned formats, char *buf, size_t len)
{
    buf[0] = 0;
    static const enum sample_format all[] = {SF_S16_LE, SF_S24_3LE, SF_S24_LE, SF_S32_LE};
    for (size_t i = 0; i < 4; i++)
        if (formats & (1u << all[i])) {
            size_t l = strlen(buf);
            snprintf(buf + l, len - l, "%s%s", l ? "," : "", sample_format_name(all[i]));
        }
    if (!buf[0])
        snprintf(buf, len, "?");
}

static void rates_text(const struct device_info *d, char *buf, size_t len)
{
    buf[0] = 0;
    for (size_t i = 0; i < DEVICE_MAX_RATES && d->rates[i]; i++) {
        size_t l = strlen(buf);
        snprintf(buf + l, len - l, "%s%u", l ? "," : "", d->rates[i]);
    }
    if (!buf[0])
        snprintf(buf, len, "?");
}

static json_t *device_json(const struct device_info *d)
{
    json_t *fm = json_array(), *rt = json_array();
    static const enum sample_format all[] = {SF_S16_LE, SF_S24_3LE, SF_S24_LE, SF_S32_LE};
    for (size_t i = 0; i < 4; i++)
        if (d->formats & (1u << all[i]))
            json_array_append_new(fm, json_string(sample_format_name(all[i])));
    for (size_t i = 0; i < DEVICE_MAX_RATES && d->rates[i]; i++)
        json_array_append_new(rt, json_integer(d->rates[i]));
    return json_pack("{s:s, s:s, s:i, s:i, s:s, s:s, s:o, s:o, s:i, s:i, s:i, s:i}",
                     "id", d->id, "card_id", d->card_id, "card", d->card, "device", d->device,
                     "name", d->name, "pcm", d->pcm, "formats", fm, "rates", rt,
                     "rate_min", (int)d->rate_min, "rate_max", (int)d->rate_max,
                     "channels_min", (int)d->channels_min, "channels_max", (int)d->channels_max);
}

static void print_table(const struct device_info *d, size_t n)
{
    printf("%-12s %-4s %-24s %-20s %-24s %-30s %s\n", "ID", "CARD", "NAME", "PCM", "FORMATS",
           "RATES", "CHANNELS");
    for (size_t i = 0; i < n; i++) {
        char fm[64], rt[200], ch[32];
        formats_text(d[i].formats, fm, sizeof fm);
        rates_text(&d[i], rt, sizeof rt);
        if (d[i].channels_max)
            snprintf(ch, sizeof ch, d[i].channels_min == d[i].channels_max ? "%u" : "%u-%u",
                     d[i].channels_min, d[i].channels_max);
        else
            snprintf(ch, sizeof ch, "?");
        printf("%-12s %-4d %-24s %-20s %-24s %-30s %s\n", d[i].id, d[i].card, d[i].name,
               d[i].pcm, fm, rt, ch);
    }
}

static pthread_mutex_t out_lock = PTHREAD_MUTEX_INITIALIZER;

static void on_event(enum hotplug_event ev, const struct device_info *d, void *arg)
{
    int json = *(int *)arg;
    pthread_mutex_lock(&out_lock);
    if (json) {
        json_t *o = device_json(d);
        json_object_set_new(o, "event", json_string(ev == HOTPLUG_ADD ? "add" : "remove"));
        char *s = json_dumps(o, JSON_COMPACT);
        if (s)
            printf("%s\n", s);
        free(s);
        json_decref(o);
    } else {
        printf("%s %s %s \"%s\"\n", ev == HOTPLUG_ADD ? "add" : "remove", d->id, d->pcm,
               d->name);
    }
    fflush(stdout);
    pthread_mutex_unlock(&out_lock);
}

static int watch(const char *proc, unsigned interval, int json)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    /* blocked before the monitor thread starts, so it inherits the mask */
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    struct hotplug_config cfg = {.proc_root = proc, .rescan_ms = interval,
                                 .use_udev = proc == NULL};
    struct hotplug *h;
    int r = hotplug_start(&h, &cfg, on_event, &json);
    if (r < 0) {
        fprintf(stderr, "pirec devices: cannot watch for devices: %s\n", strerror(-r));
        return 1;
    }
    int sig = 0;
    sigwait(&set, &sig);
    hotplug_stop(h);
    return 0;
}

int cmd_devices(int argc, char **argv)
{
    static const struct option opts[] = {
        {"json", no_argument, NULL, 'j'},     {"proc", required_argument, NULL, 'p'},
        {"watch", no_argument, NULL, 'w'},    {"interval", required_argument, NULL, 'i'},
        {"help", no_argument, NULL, 'h'},     {NULL, 0, NULL, 0},
    };
    int json = 0, do_watch = 0, c;
    const char *proc = NULL;
    unsigned interval = 2000;
    optind = 1;
    while ((c = getopt_long(argc, argv, "jp:wi:h", opts, NULL)) != -1) {
        switch (c) {
        case 'j': json = 1; break;
        case 'p': proc = optarg; break;
        case 'w': do_watch = 1; break;
        case 'i': {
            char *end;
            unsigned long v = strtoul(optarg, &end, 10);
            if (*end || v < 10 || v > 600000) {
                fprintf(stderr, "pirec devices: --interval wants milliseconds between 10 and "
                        "600000, not '%s'\n", optarg);
                return 2;
            }
            interval = (unsigned)v;
            break;
        }
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "pirec devices: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return 2;
    }
    if (do_watch)
        return watch(proc, interval, json);

    struct device_info *d = calloc(MAX_DEVICES, sizeof *d);
    if (!d)
        return 1;
    int n = devices_scan(proc, d, MAX_DEVICES);
    if (n < 0) {
        fprintf(stderr, "pirec devices: cannot read %s: %s\n", proc ? proc : "the ALSA cards",
                strerror(-n));
        free(d);
        return 1;
    }
    size_t shown = n < MAX_DEVICES ? (size_t)n : MAX_DEVICES;
    if (json) {
        json_t *arr = json_array();
        for (size_t i = 0; i < shown; i++)
            json_array_append_new(arr, device_json(&d[i]));
        json_t *o = json_pack("{s:o}", "devices", arr);
        char *s = json_dumps(o, JSON_INDENT(2));
        printf("%s\n", s ? s : "{}");
        free(s);
        json_decref(o);
    } else if (shown == 0) {
        printf("no capture devices found\n");
    } else {
        print_table(d, shown);
    }
    free(d);
    return 0;
}
