/* capture on a real, clock-paced ALSA device whose sound server dies and comes back:
 * JACK's dummy backend behind the ALSA jack plugin (see docs/audio.md). Killing jackd
 * makes the PCM fall silent without an error (SIGTERM: a SIGKILLed server keeps its slot
 * in JACK's 8-slot server registry, which unique names would fill); the watchdog reports the stall, the capture
 * reopens the PCM with backoff while the server is away, and once a new jackd serves,
 * the device is back: frames flow again at the following ring positions and the whole
 * gap is filed as losses. Prints the watchdog's detection time (kill -> stalled event).
 * jackd2 and libasound2-plugins come from scripts/install-deps.sh --test. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "audio/capture.h"
#include "audio/source.h"
#include "capture_waits.h"

#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <signal.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static const char conf[] =
    "pcm.jackcap { type jack\n"
    "  capture_ports { 0 system:capture_1 1 system:capture_2 }\n"
    "  playback_ports { 0 system:playback_1 1 system:playback_2 } }\n"
    "pcm.jackplug { type plug slave.pcm \"jackcap\" }\n";

static char server[64];
static char jack_log[512];
static pid_t jackd = -1;

static void print_jack_log(void)
{
    FILE *f = fopen(jack_log, "r");
    char line[256];
    while (f && fgets(line, sizeof line, f))
        printf("jackd| %s", line);
    if (f)
        fclose(f);
}

/* Starts jackd and waits until the PCM opens (the ALSA plugin reaches the server). */
static void start_jackd(void)
{
    char *argv[] = {"jackd", "--no-realtime", "-d", "dummy", "-r", "48000", "-p", "480",
                    "-C", "2", "-P", "2", NULL};
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, jack_log, O_WRONLY | O_CREAT | O_APPEND, 0600);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    int r = posix_spawnp(&jackd, "jackd", &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (r != 0)
        fail_msg("cannot start jackd (%s): run scripts/install-deps.sh --test (jackd2)",
                 strerror(r));
    int64_t end = now_ms() + 30000;
    while (now_ms() < end) {
        struct audio_source *s;
        struct audio_format want = {SF_S32_LE, 48000, 2};
        if (audio_source_open_alsa(&s, "jackplug", conf, &want) == 0) {
            audio_source_close(s);
            return;
        }
        int st;
        if (waitpid(jackd, &st, WNOHANG) == jackd) {
            jackd = -1;
            print_jack_log();
            fail_msg("jackd exited at once (status %d)", st);
        }
        nap_ms(100);
    }
    print_jack_log();
    fail_msg("jackd did not serve within 30 s (or the ALSA jack plugin is missing: "
             "libasound2-plugins)");
}

static void kill_jackd(void)
{
    if (jackd <= 0)
        return;
    kill(jackd, SIGTERM);
    waitpid(jackd, NULL, 0);
    jackd = -1;
}

static int setup(void **state)
{
    (void)state;
    snprintf(server, sizeof server, "pirec-unit-%d", (int)getpid());
    const char *tmp = getenv("TEST_TMP");
    snprintf(jack_log, sizeof jack_log, "%s/jackd-%d.log", tmp && *tmp ? tmp : "/tmp",
             (int)getpid());
    setenv("JACK_DEFAULT_SERVER", server, 1);
    setenv("JACK_NO_AUDIO_RESERVATION", "1", 1);
    setenv("JACK_NO_START_SERVER", "1", 1);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    kill_jackd();
    /* a killed server leaves semaphores and segments named after it */
    char pat[128];
    snprintf(pat, sizeof pat, "/dev/shm/*%s*", server);
    glob_t g;
    if (glob(pat, 0, NULL, &g) == 0) {
        for (size_t i = 0; i < g.gl_pathc; i++)
            unlink(g.gl_pathv[i]);
        globfree(&g);
    }
    unlink(jack_log);
    return 0;
}

static void test_server_dies_and_comes_back(void **state)
{
    (void)state;
    start_jackd();
    struct audio_source *s;
    struct audio_format want = {SF_S32_LE, 48000, 2};
    assert_int_equal(audio_source_open_alsa(&s, "jackplug", conf, &want), 0);
    static struct seen seen;
    struct capture_config cfg = {.ring_seconds = 3, .on_event = on_event, .on_event_arg = &seen};
    struct capture *c;
    assert_int_equal(capture_start(&c, s, &cfg), 0);
    wait_frames(c, 48000 / 2, 20000);
    assert_int_equal(atomic_load(&seen.n), 0);

    int64_t killed = now_ms();
    kill_jackd();
    wait_events(&seen, 1, 60000);
    assert_int_equal(seen.ev[0].kind, CAPTURE_EV_STALLED);
    struct capture_stats st;
    capture_get_stats(c, &st);
    printf("watchdog: stalled %.3f s after jackd was killed (bound %.1f s, silent %.3f s "
           "at detection)\n", (double)(seen.at_ms[0] - killed) / 1e3,
           (double)st.stall_bound_ns / 1e9, (double)seen.ev[0].duration_ns / 1e9);
    assert_true(st.stalled);
    assert_int_equal(capture_get_state(c), CAPTURE_RUNNING);
    uint64_t end_pos = audio_ring_write_pos(capture_ring(c));
    assert_int_equal(seen.ev[0].at_frame, end_pos - 1);

    /* while the server is away, reopening fails (and is retried) */
    int64_t end = now_ms() + 30000;
    do {
        capture_get_stats(c, &st);
        if (st.reopens >= 2 && st.reopen_error < 0)
            break;
        nap_ms(20);
    } while (now_ms() < end);
    assert_true(st.reopens >= 2);
    assert_true(st.reopen_error < 0);

    /* a new server: the device is back, frames go on after the gap */
    start_jackd();
    wait_events(&seen, 2, 60000);
    assert_int_equal(seen.ev[1].kind, CAPTURE_EV_BACK);
    assert_int_equal(seen.ev[1].at_frame, end_pos);
    wait_frames(c, end_pos + 48000 / 2, 20000);
    capture_get_stats(c, &st);
    assert_false(st.stalled);
    assert_int_equal(st.stalls, 1);
    assert_int_equal(st.reopen_error, 0);
    printf("back after %.3f s of silence, %u reopen attempts\n",
           (double)seen.ev[1].duration_ns / 1e9, st.reopens);
    struct capture_loss l[4];
    uint64_t total = 0;
    assert_int_equal(capture_get_losses(c, 0, l, 4, &total), 2);
    assert_int_equal(l[0].kind, CAPTURE_LOSS_STALL);
    assert_int_equal(l[1].kind, CAPTURE_LOSS_STALL);
    assert_int_equal(l[1].at_frame, end_pos);
    assert_int_equal(l[0].frames + l[1].frames, seen.ev[1].frames);
    capture_stop(c);
    kill_jackd();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_server_dies_and_comes_back),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
