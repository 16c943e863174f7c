/* devices: scanning a fake /proc/asound tree, and the hotplug monitor on it: a card is
 * reported once when its capture PCM appears and once when it goes. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "audio/devices.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static char root[256];

static void sh(const char *fmt, ...)
{
    char cmd[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    assert_int_equal(system(cmd), 0);
}

static int setup(void **state)
{
    (void)state;
    const char *t = getenv("TEST_TMP");
    snprintf(root, sizeof root, "%s/asoundXXXXXX", t && *t ? t : "/tmp");
    return mkdtemp(root) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    return system(cmd) == 0 ? 0 : -1;
}

static void add_card(int n, const char *id, const char *name, int with_pcm)
{
    sh("mkdir -p '%s/card%d' && printf '%%s\\n' '%s' > '%s/card%d/id'", root, n, id, root, n);
    sh("printf ' %d [%-15s]: USB-Audio - %s\\n                      %s at usb-1\\n' >> '%s/cards'",
       n, id, name, name, root);
    if (with_pcm) {
        sh("mkdir -p '%s/card%d/pcm0c' && printf 'card: %d\\ndevice: 0\\nstream: CAPTURE\\n' > "
           "'%s/card%d/pcm0c/info'", root, n, n, root, n);
    }
}

static void test_scan_fake_tree(void **state)
{
    (void)state;
    struct device_info d[8];
    assert_int_equal(devices_scan(root, d, 8), 0);
    add_card(1, "USB", "Scarlett 2i2 USB", 1);
    sh("printf 'formats: S16_LE S32_LE\\nrates: 44100 48000 192000\\nchannels: 2\\n' > "
       "'%s/card1/pcm0c/pirec-caps'", root);
    add_card(2, "Microphone", "Yeti Stereo Microphone", 1);
    sh("mkdir -p '%s/card2/pcm1c' '%s/card2/pcm0p'", root, root);   /* a 2nd capture, a playback */
    add_card(3, "HDMI", "vc4-hdmi", 0);                            /* playback only */
    assert_int_equal(devices_scan(root, d, 8), 3);
    assert_string_equal(d[0].id, "usb");
    assert_string_equal(d[0].card_id, "USB");
    assert_string_equal(d[0].name, "Scarlett 2i2 USB");
    assert_string_equal(d[0].pcm, "hw:CARD=USB,DEV=0");
    assert_int_equal(d[0].card, 1);
    assert_int_equal(d[0].formats, (1u << SF_S16_LE) | (1u << SF_S32_LE));
    assert_int_equal(d[0].rates[0], 44100);
    assert_int_equal(d[0].rates[2], 192000);
    assert_int_equal(d[0].rates[3], 0);
    assert_int_equal(d[0].rate_min, 44100);
    assert_int_equal(d[0].rate_max, 192000);
    assert_int_equal(d[0].channels_min, 2);
    assert_int_equal(d[0].channels_max, 2);
    assert_string_equal(d[1].id, "microphone");
    assert_string_equal(d[1].name, "Yeti Stereo Microphone");
    assert_int_equal(d[1].formats, 0);   /* no caps file: unknown */
    assert_string_equal(d[2].id, "microphone-1");
    assert_string_equal(d[2].pcm, "hw:CARD=Microphone,DEV=1");
    /* more devices than room: the count says so */
    assert_int_equal(devices_scan(root, d, 1), 3);
    char missing[300];
    snprintf(missing, sizeof missing, "%s/nope", root);
    assert_int_equal(devices_scan(missing, d, 8), -ENOENT);
    sh("rm -rf '%s'/*", root);
}

struct events {
    pthread_mutex_t lock;
    int adds, removes;
    int add_without_pcm;   /* an add reported while the PCM directory did not exist */
    char last_add[64], last_remove[64];
};

static void on_event(enum hotplug_event ev, const struct device_info *d, void *arg)
{
    struct events *e = arg;
    pthread_mutex_lock(&e->lock);
    if (ev == HOTPLUG_ADD) {
        char path[400];
        struct stat st;
        snprintf(path, sizeof path, "%s/card%d/pcm%dc", root, d->card, d->device);
        if (stat(path, &st) < 0)
            e->add_without_pcm++;
        e->adds++;
        snprintf(e->last_add, sizeof e->last_add, "%s", d->id);
    } else {
        e->removes++;
        snprintf(e->last_remove, sizeof e->last_remove, "%s", d->id);
    }
    pthread_mutex_unlock(&e->lock);
}

static void get(struct events *e, int *adds, int *removes)
{
    pthread_mutex_lock(&e->lock);
    *adds = e->adds;
    *removes = e->removes;
    pthread_mutex_unlock(&e->lock);
}

/* polls until the counts reach the wanted values or 10 s pass */
static int wait_counts(struct events *e, int adds, int removes)
{
    for (int i = 0; i < 1000; i++) {
        int a, r;
        get(e, &a, &r);
        if (a >= adds && r >= removes)
            return 0;
        struct timespec ts = {0, 10000000};
        nanosleep(&ts, NULL);
    }
    return -ETIMEDOUT;
}

static void test_hotplug_fake_tree(void **state)
{
    (void)state;
    add_card(0, "PCH", "HDA Intel PCH", 1);   /* present at start: reported as an add */
    struct events e = {.lock = PTHREAD_MUTEX_INITIALIZER};
    struct hotplug *h;
    /* a long rescan period: inotify on the tree must be what notices the changes */
    struct hotplug_config cfg = {.proc_root = root, .rescan_ms = 60000, .use_udev = 0};
    assert_int_equal(hotplug_start(&h, &cfg, on_event, &e), 0);
    assert_int_equal(wait_counts(&e, 1, 0), 0);
    assert_string_equal(e.last_add, "pch");

    /* the card shows up before its PCM: no add yet */
    add_card(1, "USB", "Scarlett 2i2 USB", 0);
    int a, r;
    /* the PCM comes a little later (ALSA lags behind the card); touching the tree makes
     * the monitor rescan meanwhile */
    sh("touch '%s/card1/id' '%s/cards'", root, root);
    sh("mkdir -p '%s/card1/pcm0c'", root);
    assert_int_equal(wait_counts(&e, 2, 0), 0);
    assert_string_equal(e.last_add, "usb");

    /* unplug: one remove, and the other card stays */
    sh("rm -rf '%s/card1'", root);
    assert_int_equal(wait_counts(&e, 2, 1), 0);
    assert_string_equal(e.last_remove, "usb");
    sh("touch '%s/cards'", root);
    hotplug_stop(h);
    /* after the stop every event has been delivered: exactly these */
    get(&e, &a, &r);
    assert_int_equal(a, 2);
    assert_int_equal(r, 1);
    assert_int_equal(e.add_without_pcm, 0);
    sh("rm -rf '%s'/*", root);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scan_fake_tree),
        cmocka_unit_test(test_hotplug_fake_tree),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
