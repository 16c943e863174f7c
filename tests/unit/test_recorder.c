/* recorder: the demo tone through lease, take, events and files; lease expiry; a take
 * outliving its lease; a device that vanishes mid-take; recordings list/open/delete. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "server/jwt.h"
#include "server/recorder.h"
#include "recorder_fixture.h"

#include <errno.h>
#include <fcntl.h>
#include <FLAC/metadata.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define DEADLINE_MS 15000

struct fixture {
    char dir[64];
    struct server_config cfg;
    struct event_hub *hub;
    struct event_sub *sub;
    struct recorder *rec;
    /* Non-level events seen so far: "type data" lines. */
    char log[64 * 1024];
    size_t log_len;
    int levels;
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Reads what the hub has and appends non-level events to f->log. */
static void pump(struct fixture *f)
{
    static char buf[EVENT_READ_MIN];
    for (;;) {
        ssize_t n = event_sub_read(f->sub, buf, sizeof(buf) - 1);
        assert_true(n >= 0);
        if (n == 0)
            return;
        buf[n] = 0;
        for (char *p = buf; (p = strstr(p, "event: ")); ) {
            char *type = p + 7, *nl = strchr(type, '\n');
            char *data = strstr(nl, "data: ") + 6, *end = strchr(data, '\n');
            if (strncmp(type, "level", 5) == 0) {
                f->levels++;
            } else {
                int w = snprintf(f->log + f->log_len, sizeof(f->log) - f->log_len, "%.*s %.*s\n",
                                 (int)(nl - type), type, (int)(end - data), data);
                if (w > 0 && f->log_len + (size_t)w < sizeof(f->log))
                    f->log_len += (size_t)w;
            }
            p = end;
        }
    }
}

/* Polls until `needle` appears in the event log (deadline, no fixed sleeps). */
static int wait_log(struct fixture *f, const char *needle)
{
    int64_t end = now_ms() + DEADLINE_MS;
    do {
        pump(f);
        if (strstr(f->log, needle))
            return 1;
        sleep_ms(10);
    } while (now_ms() < end);
    print_error("no '%s' in the events:\n%s\n", needle, f->log);
    return 0;
}

static int wait_levels(struct fixture *f, int n)
{
    int64_t end = now_ms() + DEADLINE_MS;
    do {
        pump(f);
        if (f->levels >= n)
            return 1;
        sleep_ms(10);
    } while (now_ms() < end);
    return 0;
}

static void fixture_init(struct fixture *f)
{
    memset(f, 0, sizeof(*f));
    fixture_folder(f->dir, sizeof(f->dir), "rec", &f->cfg);
    f->cfg.preroll_seconds = 1;
    f->cfg.flush_ms = 200;
    assert_int_equal(event_hub_create(&f->hub, 8192), 0);
    assert_int_equal(event_hub_subscribe(f->hub, 0, NULL, NULL, &f->sub, NULL), 0);
}

static void fixture_start(struct fixture *f)
{
    assert_int_equal(recorder_create(&f->rec, &f->cfg, f->hub), 0);
}

static void fixture_free(struct fixture *f)
{
    recorder_destroy(f->rec);
    event_sub_close(f->sub);
    event_hub_destroy(f->hub);
    fixture_folder_remove(f->dir);
}


/* Index of needle in the event log, or -1. */
static long at(struct fixture *f, const char *needle)
{
    const char *p = strstr(f->log, needle);
    return p ? p - f->log : -1;
}

/* The status of one device (copied), 0 when found. */
static int device_status(struct recorder *r, const char *id, struct recorder_device_status *out)
{
    struct recorder_status st;
    assert_int_equal(recorder_get_status(r, &st), 0);
    int rc = -1;
    for (size_t i = 0; i < st.n_devices; i++)
        if (strcmp(st.devices[i].id, id) == 0) {
            *out = st.devices[i];
            rc = 0;
        }
    recorder_status_free(&st);
    return rc;
}

static void test_tone_take_record_stop(void **state)
{
    (void)state;
    struct fixture f;
    fixture_init(&f);
    f.cfg.demo = 1;
    fixture_start(&f);

    /* Levels flow without anyone recording (25/s): wait for more than the 1 s pre-roll. */
    assert_true(wait_levels(&f, 35));
    struct recorder_status st;
    assert_int_equal(recorder_get_status(f.rec, &st), 0);
    assert_int_equal(st.n_devices, 1);
    assert_string_equal(st.devices[0].id, "tone");
    assert_true(st.devices[0].connected);
    assert_false(st.devices[0].taken);
    assert_true(st.devices[0].has_format);
    assert_int_equal(st.devices[0].format.rate, 48000);
    assert_int_equal(st.devices[0].bits, 16);
    assert_true(st.server_time[0] != 0);
    assert_true(st.free_bytes > 0);
    recorder_status_free(&st);

    struct recorder_lease l;
    assert_int_equal(recorder_take(f.rec, "tone", "ipad", &l), 0);
    char token[JWT_MAX];
    snprintf(token, sizeof(token), "%s", l.token);
    assert_true(strlen(token) > 20);
    assert_string_equal(l.holder, "ipad");
    assert_int_equal(l.lease_seconds, 300);
    assert_true(l.expires > time(NULL));

    /* Someone else: busy, told who holds it. */
    struct recorder_lease other;
    assert_int_equal(recorder_take(f.rec, "tone", "phone", &other), -EBUSY);
    assert_string_equal(other.token, "");
    assert_string_equal(other.holder, "ipad");
    assert_int_equal(other.expires, l.expires);

    struct take_status ts;
    assert_int_equal(recorder_stop(f.rec, "tone", token, &ts), -EALREADY);
    struct recorder_take_info ti;
    assert_int_equal(recorder_start(f.rec, "tone", "forged.token.x", &ti), -EACCES);
    assert_int_equal(recorder_start(f.rec, "tone", token, &ti), 0);
    char file[256];
    snprintf(file, sizeof(file), "%s", ti.file);
    assert_true(strncmp(file, "tone_", 5) == 0);
    assert_non_null(strstr(file, ".flac"));
    assert_true(ti.started[0] != 0);
    struct recorder_take_info again;
    assert_int_equal(recorder_start(f.rec, "tone", token, &again), -EALREADY);
    assert_string_equal(again.file, file);

    /* Recording shows in the status; wait until half a second is written. */
    int64_t end = now_ms() + DEADLINE_MS;
    double elapsed = 0;
    while (now_ms() < end) {
        struct recorder_device_status d;
        assert_int_equal(device_status(f.rec, "tone", &d), 0);
        assert_true(d.recording);
        assert_string_equal(d.file, file);
        assert_string_equal(d.holder, "ipad");
        elapsed = d.elapsed;
        if (elapsed >= 0.5)
            break;
        sleep_ms(20);
    }
    assert_true(elapsed >= 0.5);
    /* The take being written cannot be deleted or downloaded yet. */
    assert_int_equal(recorder_delete_recording(f.rec, file, token), -EBUSY);

    assert_int_equal(recorder_stop(f.rec, "tone", token, &ts), 0);
    assert_string_equal(strrchr(ts.path, '/') + 1, file);
    double secs = ts.seconds;
    /* Without the 1 s pre-roll this would be about 0.5 s. */
    assert_true(secs >= 0.95);
    assert_true(ts.bytes > 0);
    assert_int_equal(ts.error, 0);
    assert_int_equal(recorder_stop(f.rec, "tone", token, &ts), -EALREADY);
    assert_int_equal(recorder_release(f.rec, "tone", token), 0);
    assert_int_equal(recorder_release(f.rec, "tone", token), -EACCES);

    /* Events in order: take, record, stop, release. */
    assert_true(wait_log(&f, "release {\"id\":\"tone\""));
    long t = at(&f, "take {\"id\":\"tone\",\"holder\":\"ipad\""), r = at(&f, "record {\"id\":\"tone\""),
         s = at(&f, "stop {\"id\":\"tone\""), rl = at(&f, "release {\"id\":\"tone\",\"holder\":\"ipad\"");
    assert_true(t >= 0 && r > t && s > r && rl > s);
    assert_non_null(strstr(f.log, "\"reason\":\"stopped\""));

    /* The file: valid FLAC, the tone's format, as long as reported. */
    char path[4400];
    snprintf(path, sizeof(path), "%s/%s", f.cfg.recordings, file);
    FLAC__StreamMetadata si;
    assert_true(FLAC__metadata_get_streaminfo(path, &si));
    assert_int_equal(si.data.stream_info.sample_rate, 48000);
    assert_int_equal(si.data.stream_info.channels, 2);
    assert_int_equal(si.data.stream_info.bits_per_sample, 16);
    double fsecs = (double)si.data.stream_info.total_samples / 48000;
    assert_true(fabs(fsecs - secs) < 0.05);
    if (system("command -v flac >/dev/null 2>&1") == 0) {
        char cmd[4500];
        snprintf(cmd, sizeof(cmd), "flac -s -t '%s'", path);
        assert_int_equal(system(cmd), 0);
    }

    /* Listed (newest first), openable, deletable with a lease token. */
    struct recording_info *list = NULL;
    size_t n = 0;
    assert_int_equal(recorder_list_recordings(f.rec, &list, &n), 0);
    assert_true(n >= 1);
    assert_string_equal(list[0].name, file);
    assert_string_equal(list[0].device, "tone");
    assert_true(list[0].complete);
    assert_int_equal(list[0].rate, 48000);
    assert_int_equal(list[0].bits, 16);
    free(list);
    int fd = -1;
    struct stat fst;
    assert_int_equal(recorder_open_recording(f.rec, file, &fd, &fst), 0);
    assert_true(fst.st_size > 0);
    char magic[4];
    assert_int_equal(read(fd, magic, 4), 4);
    assert_memory_equal(magic, "fLaC", 4);
    close(fd);
    assert_int_equal(recorder_open_recording(f.rec, "../state/jwt.key", &fd, NULL), -EINVAL);
    assert_int_equal(recorder_open_recording(f.rec, ".hidden.flac", &fd, NULL), -EINVAL);
    assert_int_equal(recorder_open_recording(f.rec, "a/b.flac", &fd, NULL), -EINVAL);
    assert_int_equal(recorder_open_recording(f.rec, "nope.flac", &fd, NULL), -ENOENT);
    char link[4400];
    snprintf(link, sizeof(link), "%s/evil.flac", f.cfg.recordings);
    assert_int_equal(symlink("/etc/passwd", link), 0);
    assert_int_equal(recorder_open_recording(f.rec, "evil.flac", &fd, NULL), -ENOENT);

    assert_int_equal(recorder_delete_recording(f.rec, file, token), -EACCES);   /* released */
    assert_int_equal(recorder_take(f.rec, "tone", "pc", &l), 0);
    snprintf(token, sizeof(token), "%s", l.token);
    assert_int_equal(recorder_delete_recording(f.rec, "../x.flac", token), -EINVAL);
    assert_int_equal(recorder_delete_recording(f.rec, "nope.flac", token), -ENOENT);
    assert_int_equal(recorder_delete_recording(f.rec, file, token), 0);
    assert_int_equal(access(path, F_OK), -1);
    assert_int_equal(recorder_open_recording(f.rec, file, &fd, NULL), -ENOENT);
    fixture_free(&f);
}

static void test_unknown_device(void **state)
{
    (void)state;
    struct fixture f;
    fixture_init(&f);
    f.cfg.demo = 1;
    fixture_start(&f);
    struct recorder_lease l;
    assert_int_equal(recorder_take(f.rec, "scarlett", "ipad", &l), -ENOENT);
    assert_int_equal(recorder_start(f.rec, "scarlett", "x", NULL), -ENOENT);
    assert_int_equal(recorder_stop(f.rec, "scarlett", "x", NULL), -ENOENT);
    assert_int_equal(recorder_renew(f.rec, "scarlett", "x", NULL), -ENOENT);
    assert_int_equal(recorder_release(f.rec, NULL, "x"), -ENOENT);
    fixture_free(&f);
}

/* A client label cut at 63 bytes in the middle of a character used to make take fail
 * (the page's own field allows 40 x "é" = 80 bytes); control characters are dropped. */
static void test_client_label_is_cut_on_a_character(void **state)
{
    (void)state;
    struct fixture f;
    fixture_init(&f);
    f.cfg.demo = 1;
    fixture_start(&f);
    char name[128] = "";
    for (int i = 0; i < 40; i++)
        strcat(name, "\xc3\xa9");
    struct recorder_lease l;
    assert_int_equal(recorder_take(f.rec, "tone", name, &l), 0);
    assert_int_equal(strlen(l.holder), 62);   /* 31 whole characters */
    assert_memory_equal(l.holder, name, 62);
    assert_true(wait_log(&f, "take {\"id\":\"tone\""));
    assert_int_equal(recorder_release(f.rec, "tone", l.token), 0);
    assert_int_equal(recorder_take(f.rec, "tone", "a\x01" "b\x7f\xc3" "c\xe2\x82", &l), 0);
    assert_string_equal(l.holder, "abc");
    assert_int_equal(recorder_release(f.rec, "tone", l.token), 0);
    assert_int_equal(recorder_take(f.rec, "tone", "\x01\x02", &l), 0);
    assert_string_equal(l.holder, "anonymous");
    fixture_free(&f);
}

static void test_lease_expiry_and_take_keeps_lease(void **state)
{
    (void)state;
    struct fixture f;
    fixture_init(&f);
    f.cfg.demo = 1;
    f.cfg.lease_seconds = 1;
    fixture_start(&f);
    struct recorder_lease l;
    assert_int_equal(recorder_take(f.rec, "tone", "ipad", &l), 0);
    char token[JWT_MAX];
    snprintf(token, sizeof(token), "%s", l.token);
    assert_int_equal(recorder_start(f.rec, "tone", token, NULL), 0);
    /* The take keeps the lease (docs/api.md): still held well past its expiry... */
    while (time(NULL) <= l.expires + 1)
        sleep_ms(20);
    pump(&f);
    assert_int_equal(at(&f, "expire {"), -1);
    struct recorder_device_status d;
    assert_int_equal(device_status(f.rec, "tone", &d), 0);
    assert_true(d.recording && d.taken && d.kept_by_take);
    struct recorder_lease other;
    assert_int_equal(recorder_take(f.rec, "tone", "phone", &other), -EBUSY);
    /* ...and its holder stops the take with the token it had. */
    struct take_status ts;
    assert_int_equal(recorder_stop(f.rec, "tone", token, &ts), 0);
    assert_true(ts.seconds > 0);
    assert_true(wait_log(&f, "stop {\"id\":\"tone\""));
    assert_true(wait_log(&f, "\"kept_by_take\":false"));
    /* Then the timer runs again and the server expires the lease by itself. */
    assert_true(wait_log(&f, "expire {\"id\":\"tone\",\"holder\":\"ipad\""));
    assert_true(wait_log(&f, "release {\"id\":\"tone\",\"holder\":\"ipad\""));
    assert_true(at(&f, "expire {") < at(&f, "release {"));
    int rc = recorder_stop(f.rec, "tone", token, NULL);
    assert_true(rc == -ETIME || rc == -EACCES);
    fixture_free(&f);
}

/* A raw S16_LE stereo 48 kHz file with a tone, `seconds` long. */
static void write_raw(const char *path, double seconds)
{
    FILE *w = fopen(path, "wb");
    assert_non_null(w);
    size_t n = (size_t)(seconds * 48000);
    for (size_t i = 0; i < n; i++) {
        int16_t s[2];
        s[0] = (int16_t)(8000 * sin(2 * M_PI * 440 * (double)i / 48000));
        s[1] = (int16_t)(4000 * sin(2 * M_PI * 660 * (double)i / 48000));
        fwrite(s, sizeof(s), 1, w);
    }
    fclose(w);
}

static void test_device_gone_mid_take(void **state)
{
    (void)state;
    struct fixture f;
    fixture_init(&f);
    char raw[200];
    snprintf(raw, sizeof(raw), "%s/in.raw", f.dir);
    write_raw(raw, 6);
    f.cfg.n_devices = 1;
    struct device_config *dc = &f.cfg.devices[0];
    snprintf(dc->id, sizeof(dc->id), "usbmic");
    /* Fails like an unplugged USB device after 1.5 s of audio, played in real time. */
    snprintf(dc->pcm, sizeof(dc->pcm), "file:%.60s?realtime=1&fail_at=72000", raw);
    dc->format = (struct audio_format){SF_S16_LE, 48000, 2};
    fixture_start(&f);

    struct recorder_lease l;
    assert_int_equal(recorder_take(f.rec, "usbmic", "ipad", &l), 0);
    char token[JWT_MAX];
    snprintf(token, sizeof(token), "%s", l.token);
    struct recorder_take_info ti;
    assert_int_equal(recorder_start(f.rec, "usbmic", token, &ti), 0);
    char file[256];
    snprintf(file, sizeof(file), "%s", ti.file);

    assert_true(wait_log(&f, "remove {\"id\":\"usbmic\"}"));
    long s = at(&f, "stop {\"id\":\"usbmic\""), rl = at(&f, "release {\"id\":\"usbmic\""),
         r = at(&f, "remove {\"id\":\"usbmic\"}");
    assert_true(s >= 0 && rl > s && r > rl);
    assert_non_null(strstr(f.log, "\"reason\":\"device_gone\""));

    /* The take was finalized with what was captured (up to 1.5 s). */
    char path[4400];
    snprintf(path, sizeof(path), "%s/%s", f.cfg.recordings, file);
    FLAC__StreamMetadata si;
    assert_true(FLAC__metadata_get_streaminfo(path, &si));
    assert_true(si.data.stream_info.total_samples > 0);
    assert_true(si.data.stream_info.total_samples <= 72000);
    /* The device is gone: 404 for everything, status says disconnected. */
    assert_int_equal(recorder_take(f.rec, "usbmic", "ipad", &l), -ENODEV);
    assert_int_equal(recorder_stop(f.rec, "usbmic", token, NULL), -ENODEV);
    struct recorder_device_status d;
    assert_int_equal(device_status(f.rec, "usbmic", &d), 0);
    assert_false(d.connected);
    assert_false(d.recording);
    fixture_free(&f);
}

static void put(const char *dir, const char *rel, const char *text)
{
    char path[4400];
    snprintf(path, sizeof(path), "%s/%s", dir, rel);
    if (!text) {
        assert_int_equal(mkdir(path, 0755), 0);
        return;
    }
    FILE *w = fopen(path, "w");
    assert_non_null(w);
    fputs(text, w);
    fclose(w);
}

/* Cards from a fake /proc/asound: a configured "hw:CARD=USB" keeps its configured id, an
 * unknown card gets its own; neither opens here (no hardware), which must be said. */
static void test_hotplug_ids(void **state)
{
    (void)state;
    struct fixture f;
    fixture_init(&f);
    const char *pr = f.cfg.proc_asound;
    put(pr, "cards", " 0 [USB            ]: USB-Audio - Scarlett 2i2 USB\n"
                     " 1 [Mic            ]: USB-Audio - Yeti Stereo Microphone\n");
    put(pr, "card0", NULL);
    put(pr, "card0/id", "USB\n");
    put(pr, "card0/pcm0c", NULL);
    put(pr, "card1", NULL);
    put(pr, "card1/id", "Mic\n");
    put(pr, "card1/pcm0c", NULL);
    f.cfg.n_devices = 1;
    snprintf(f.cfg.devices[0].id, sizeof(f.cfg.devices[0].id), "scarlett");
    snprintf(f.cfg.devices[0].pcm, sizeof(f.cfg.devices[0].pcm), "hw:CARD=USB");
    fixture_start(&f);
    assert_true(wait_log(&f, "error {\"id\":\"scarlett\""));
    assert_true(wait_log(&f, "error {\"id\":\"mic\""));
    struct recorder_device_status d;
    assert_int_equal(device_status(f.rec, "scarlett", &d), 0);
    assert_false(d.connected);
    assert_string_equal(d.name, "Scarlett 2i2 USB");
    struct recorder_lease l;
    assert_int_equal(recorder_take(f.rec, "scarlett", "ipad", &l), -ENODEV);   /* not connected */
    assert_null(strstr(f.log, "add {"));
    fixture_free(&f);
}

static void test_bad_configured_device(void **state)
{
    (void)state;
    struct fixture f;
    fixture_init(&f);
    f.cfg.n_devices = 1;
    snprintf(f.cfg.devices[0].id, sizeof(f.cfg.devices[0].id), "x");
    snprintf(f.cfg.devices[0].pcm, sizeof(f.cfg.devices[0].pcm), "file:/a?bogus=1");
    assert_int_equal(recorder_create(&f.rec, &f.cfg, f.hub), -EINVAL);
    f.rec = NULL;
    fixture_free(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tone_take_record_stop),
        cmocka_unit_test(test_unknown_device),
        cmocka_unit_test(test_client_label_is_cut_on_a_character),
        cmocka_unit_test(test_lease_expiry_and_take_keeps_lease),
        cmocka_unit_test(test_device_gone_mid_take),
        cmocka_unit_test(test_hotplug_ids),
        cmocka_unit_test(test_bad_configured_device),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
