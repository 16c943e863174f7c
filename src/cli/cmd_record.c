/*
 * pirec record: one take from the command line, no server. Opens a source, runs a
 * capture (ring + meter) and a take on it, waits for the length, the source's end or
 * SIGINT, and says what was written and whether anything was lost.
 *
 * A file source read "as fast as possible" would overrun the ring (the capture never
 * waits for readers, by design), so here it is wrapped in a small throttle that holds the
 * capture thread back while the take writer is more than half a ring behind. The same
 * goes for a PCM defined by --alsa-conf (the ALSA file plugin delivers unpaced). This is
 * a property of the command, not of the capture: live sources are never held back.
 */
#include "cli/commands.h"

#include "audio/capture.h"
#include "audio/devices.h"
#include "audio/source.h"
#include "audio/source_spec.h"
#include "common/log.h"
#include "common/numparse.h"
#include "store/take.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static volatile sig_atomic_t interrupted;

/* What the capture thread tells the command (its on_event: flags only). */
struct capture_news {
    _Atomic int stalled;          /* the watchdog fired: the take ends */
    _Atomic int64_t stall_ns;     /* how long nothing had arrived when it fired */
    _Atomic uint32_t timing;      /* windows that delivered clearly too few frames */
};

static void on_capture_event(const struct capture_event *ev, void *arg)
{
    struct capture_news *n = arg;
    if (ev->kind == CAPTURE_EV_STALLED) {
        atomic_store(&n->stall_ns, ev->duration_ns);
        atomic_store(&n->stalled, 1);
    } else if (ev->kind == CAPTURE_EV_TIMING) {
        atomic_fetch_add(&n->timing, 1);
    }
}

static void on_sigint(int sig)
{
    (void)sig;
    interrupted = 1;
}

/* ---- throttle for sources faster than real time ---------------------------------- */

struct throttle {
    struct audio_source base;
    struct audio_source *inner;
    _Atomic(struct audio_ring *) ring;
    _Atomic(struct take *) take;
    _Atomic int users;           /* reads inside the take (it is freed only at 0) */
    _Atomic int cancel;
};

static ssize_t throttle_read(struct audio_source *s, void *buf, size_t max)
{
    struct throttle *th = s->priv;
    for (;;) {
        if (atomic_load(&th->cancel))
            break;
        struct audio_ring *r = atomic_load(&th->ring);
        atomic_fetch_add(&th->users, 1);
        struct take *t = atomic_load(&th->take);
        int nap = 1;
        if (r && t) {
            uint64_t w = audio_ring_write_pos(r), rd = take_read_pos(t);
            uint64_t half = audio_ring_capacity(r) / 2;
            if (w < rd || w - rd + max <= half) {
                atomic_fetch_sub(&th->users, 1);
                break;
            }
            /* sleep until the writer freed a quarter ring more than this read needs: the
             * file is then read in bursts, not woken for every read (or every millisecond) */
            nap = take_wait_read_pos(t, w + max - half + half / 2, 100) == -EPIPE;
        }
        atomic_fetch_sub(&th->users, 1);
        if (nap) {
            struct timespec ts = {0, 1000000};
            nanosleep(&ts, NULL);
        }
    }
    ssize_t n = audio_source_read(th->inner, buf, max);
    s->last_xrun = th->inner->last_xrun;
    return n;
}

static void throttle_close(struct audio_source *s)
{
    struct throttle *th = s->priv;
    audio_source_close(th->inner);
    free(th);
}

static const struct audio_source_ops throttle_ops = {"file", throttle_read, throttle_close, NULL};

static struct throttle *throttle_wrap(struct audio_source *inner)
{
    struct throttle *th = calloc(1, sizeof *th);
    if (!th)
        return NULL;
    th->inner = inner;
    th->base = *inner;
    th->base.ops = &throttle_ops;
    th->base.priv = th;
    return th;
}

/* ---- the command ------------------------------------------------------------------ */

static void usage(FILE *out)
{
    fprintf(out,
        "usage: pirec record SOURCE [OPTIONS]\n\n"
        "Records one take into a crash-safe FLAC file (x.flac.part while recording, renamed\n"
        "to x.flac at the end; `pirec repair` finishes files a crash left behind).\n\n"
        "source (one of):\n"
        "  --device ID          a capture device listed by `pirec devices`\n"
        "  --source SPEC        the grammar of serve's `pcm =` (docs/audio.md \"Sources\"):\n"
        "    tone                 a demo tone, in real time\n"
        "    file:PATH[?KEY=N&..] a WAV file (or raw PCM with --format/--rate/--channels),\n"
        "                         read as fast as possible unless realtime=1; test hooks:\n"
        "                         fail_at=N (the device vanishes after N frames),\n"
        "                         stall_at=N&stall_ms=MS (one read stalls, frames are lost),\n"
        "                         pace_percent=P (with realtime=1: a crawling clock)\n"
        "    NAME                 an ALSA PCM (hw:CARD=USB,DEV=0, default, a name in --alsa-conf)\n"
        "  --pcm NAME           an ALSA PCM (the same as --source NAME)\n"
        "  --alsa-conf FILE     ALSA configuration text defining the PCM NAME\n"
        "format (default: the source's own):\n"
        "  --format F           S16_LE, S24_3LE, S24_LE, S32_LE\n"
        "  --rate HZ, --channels N\n"
        "output:\n"
        "  --out FILE           exactly this file (a free name next to it if it exists)\n"
        "  --dir DIR            a folder (created if missing); name from --name\n"
        "  --name PATTERN       strftime pattern, %%D = device id (default %%D_%%Y-%%m-%%dT%%H-%%M-%%S%%z)\n"
        "  --bits N             stored depth 16, 24, 32 (default: the real depth; S32_LE\n"
        "                       whose low byte is unused is stored at 24; 32 forces 32)\n"
        "  --compression N      FLAC level 1..8 (default 5)\n"
        "length and limits:\n"
        "  --seconds S          take length after the start (default: until Ctrl-C or the end)\n"
        "  --preroll S          also keep the S seconds before the start\n"
        "  --max-seconds S      stop at this length whatever happens\n"
        "  --split-seconds S    start a new file every S seconds (gapless)\n"
        "  --split-mb MB        start a new file past MB megabytes (gapless)\n"
        "  --min-free-mb MB     refuse to start / stop cleanly below this (default 256)\n"
        "  --flush-ms MS        header refresh + sync interval (default 2000)\n"
        "  --stall-seconds S    a live device that delivers nothing for S seconds has stalled:\n"
        "                       the take ends there (default: three buffer lengths, at least 2)\n"
        "  --timing-seconds S   window over which the frames are checked against the wall\n"
        "                       clock (default 10; a clear shortfall is a loss of timing)\n"
        "  --no-gap-fill        lost frames are only counted (default: replaced by silence\n"
        "                       at their place, so the take keeps the time that passed)\n"
        "deprecated spellings of the file source's keys: --realtime, --fail-at-frame N,\n"
        "  --stall-at-frame N --stall-ms MS, --pace-percent N\n\n"
        "Exit status: 0 the take is complete with no loss; 1 something was lost or failed,\n"
        "the device stalled or its clock fell behind the wall clock (the message says what,\n"
        "the file keeps everything captured and has it in its comments); 2 bad usage.\n");
}

/* A number option in its range, or a message naming the option and the range (exit 2). */
static int opt_ull(const char *opt, const char *s, unsigned long long min,
                   unsigned long long max, uint64_t *out)
{
    char err[200];
    unsigned long long v;
    if (parse_option_ull(opt, s, min, max, &v, err, sizeof(err)) < 0) {
        fprintf(stderr, "pirec record: %s\n", err);
        return -1;
    }
    *out = v;
    return 0;
}

static int opt_uint(const char *opt, const char *s, unsigned min, unsigned max, unsigned *out)
{
    uint64_t v;
    if (opt_ull(opt, s, min, max, &v) < 0)
        return -1;
    *out = (unsigned)v;
    return 0;
}

/* Seconds, megabytes: a decimal in its range. */
static int opt_double(const char *opt, const char *s, double min, double max, double *out)
{
    char err[200];
    if (parse_option_double(opt, s, min, max, out, err, sizeof(err)) < 0) {
        fprintf(stderr, "pirec record: %s\n", err);
        return -1;
    }
    return 0;
}

static char *read_text(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    char *buf = malloc(1 << 16);
    size_t n = buf ? fread(buf, 1, (1 << 16) - 1, f) : 0;
    fclose(f);
    if (buf)
        buf[n] = 0;
    return buf;
}

static void on_file(const char *path, uint64_t frames, int error, void *arg)
{
    unsigned rate = *(unsigned *)arg;
    printf("file: %s  %" PRIu64 " frames  %.3f s%s%s\n", path, frames, (double)frames / rate,
           error ? "  (ended by an error: " : "", error ? strerror(-error) : "");
    if (error)
        printf(")\n");
    fflush(stdout);
}

static const char *state_text(enum take_state s)
{
    switch (s) {
    case TAKE_RUNNING: return "running";
    case TAKE_DONE: return "done";
    case TAKE_LIMIT: return "length reached";
    case TAKE_DISK_FULL: return "disk full";
    case TAKE_DEVICE_GONE: return "device gone";
    case TAKE_FAILED: return "failed";
    }
    return "?";
}

int cmd_record(int argc, char **argv)
{
    enum {
        O_DEVICE = 256, O_PCM, O_SOURCE, O_REALTIME, O_ALSACONF, O_FORMAT, O_RATE, O_CHANNELS,
        O_OUT, O_DIR, O_NAME, O_BITS, O_COMP, O_SECONDS, O_PREROLL, O_MAXSEC, O_SPLITSEC,
        O_SPLITMB, O_MINFREE, O_FLUSH, O_FAILAT, O_STALLAT, O_STALLMS, O_STALLSEC,
        O_TIMINGSEC, O_PACE, O_NOGAPFILL,
    };
    static const struct option opts[] = {
        {"device", required_argument, NULL, O_DEVICE},
        {"pcm", required_argument, NULL, O_PCM},
        {"source", required_argument, NULL, O_SOURCE},
        {"realtime", no_argument, NULL, O_REALTIME},
        {"alsa-conf", required_argument, NULL, O_ALSACONF},
        {"format", required_argument, NULL, O_FORMAT},
        {"rate", required_argument, NULL, O_RATE},
        {"channels", required_argument, NULL, O_CHANNELS},
        {"out", required_argument, NULL, O_OUT},
        {"dir", required_argument, NULL, O_DIR},
        {"name", required_argument, NULL, O_NAME},
        {"bits", required_argument, NULL, O_BITS},
        {"compression", required_argument, NULL, O_COMP},
        {"seconds", required_argument, NULL, O_SECONDS},
        {"preroll", required_argument, NULL, O_PREROLL},
        {"max-seconds", required_argument, NULL, O_MAXSEC},
        {"split-seconds", required_argument, NULL, O_SPLITSEC},
        {"split-mb", required_argument, NULL, O_SPLITMB},
        {"min-free-mb", required_argument, NULL, O_MINFREE},
        {"flush-ms", required_argument, NULL, O_FLUSH},
        {"fail-at-frame", required_argument, NULL, O_FAILAT},
        {"stall-at-frame", required_argument, NULL, O_STALLAT},
        {"stall-ms", required_argument, NULL, O_STALLMS},
        {"stall-seconds", required_argument, NULL, O_STALLSEC},
        {"timing-seconds", required_argument, NULL, O_TIMINGSEC},
        {"pace-percent", required_argument, NULL, O_PACE},
        {"no-gap-fill", no_argument, NULL, O_NOGAPFILL},
        {"help", no_argument, NULL, 'h'},
        {0},
    };
    const char *device = NULL, *pcm = NULL, *source = NULL, *alsa_conf = NULL, *out = NULL,
               *dir = NULL, *name = NULL;
    struct audio_format want = {0};
    /* the file source's options as separate flags: the older spelling of file:P?KEY=N */
    struct file_source_options legacy = {0};
    const char *legacy_flag = NULL;
    uint64_t bits = 0, comp = 0, min_free_mb = 256, flush_ms = 2000;
    double split_mb = 0, seconds = 0, preroll = 0, max_seconds = 0, split_seconds = 0;
    double stall_seconds = 0, timing_seconds = 0;
    int c, no_gap_fill = 0, rc = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case O_DEVICE: device = optarg; break;
        case O_PCM: pcm = optarg; break;
        case O_SOURCE: source = optarg; break;
        case O_ALSACONF: alsa_conf = optarg; break;
        case O_FORMAT:
            if (sample_format_parse(optarg, &want.sample) < 0) {
                fprintf(stderr, "pirec record: --format %s: use S16_LE, S24_3LE, S24_LE or "
                                "S32_LE\n", optarg);
                return 2;
            }
            break;
        case O_RATE: rc = opt_uint("--rate", optarg, 1000, 768000, &want.rate); break;
        case O_CHANNELS: rc = opt_uint("--channels", optarg, 1, 8, &want.channels); break;
        case O_OUT: out = optarg; break;
        case O_DIR: dir = optarg; break;
        case O_NAME: name = optarg; break;
        case O_BITS:
            if (opt_ull("--bits", optarg, 16, 32, &bits) < 0)
                return 2;
            if (bits != 16 && bits != 24 && bits != 32) {
                fprintf(stderr, "pirec record: --bits must be 16, 24 or 32, not '%s'\n", optarg);
                return 2;
            }
            break;
        case O_COMP: rc = opt_ull("--compression", optarg, 1, 8, &comp); break;
        case O_SECONDS: rc = opt_double("--seconds", optarg, 0, 1e7, &seconds); break;
        case O_PREROLL: rc = opt_double("--preroll", optarg, 0, 1e7, &preroll); break;
        case O_MAXSEC: rc = opt_double("--max-seconds", optarg, 0, 1e7, &max_seconds); break;
        case O_SPLITSEC:
            rc = opt_double("--split-seconds", optarg, 0, 1e7, &split_seconds);
            break;
        case O_SPLITMB: rc = opt_double("--split-mb", optarg, 0, 1e7, &split_mb); break;
        case O_MINFREE:
            rc = opt_ull("--min-free-mb", optarg, 0, 1ull << 30, &min_free_mb);
            break;
        case O_FLUSH: rc = opt_ull("--flush-ms", optarg, 10, 3600000, &flush_ms); break;
        case O_NOGAPFILL: no_gap_fill = 1; break;
        case O_STALLSEC:
            rc = opt_double("--stall-seconds", optarg, 0.1, 3600, &stall_seconds);
            break;
        case O_TIMINGSEC:
            rc = opt_double("--timing-seconds", optarg, 0.5, 3600, &timing_seconds);
            break;
        /* deprecated: the file source's options (source_spec.h) */
        case O_REALTIME: legacy.realtime = 1; legacy_flag = "--realtime"; break;
        case O_FAILAT:
            rc = opt_ull("--fail-at-frame", optarg, 0, UINT64_MAX, &legacy.fail_at_frame);
            legacy_flag = "--fail-at-frame";
            break;
        case O_STALLAT:
            rc = opt_ull("--stall-at-frame", optarg, 0, UINT64_MAX, &legacy.stall_at_frame);
            legacy_flag = "--stall-at-frame";
            break;
        case O_STALLMS:
            rc = opt_uint("--stall-ms", optarg, 0, 600000, &legacy.stall_ms);
            legacy_flag = "--stall-ms";
            break;
        case O_PACE:
            rc = opt_uint("--pace-percent", optarg, 1, 100, &legacy.pace_percent);
            legacy_flag = "--pace-percent";
            break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
        if (rc < 0)
            return 2;
    }
    if (optind < argc) {
        fprintf(stderr, "pirec record: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }
    if (!!device + !!pcm + !!source != 1) {
        fprintf(stderr, "pirec record: give exactly one source: --device ID, --pcm NAME or "
                        "--source tone|file:PATH|PCM (see --help)\n");
        return 2;
    }
    /* --source takes the grammar of serve's `pcm =` (audio/source_spec.h); a file is read
     * as fast as it goes unless it says realtime=1 */
    static struct source_spec spec;   /* 4 KiB of path: not on the stack */
    memset(&spec, 0, sizeof(spec));
    if (source) {
        char err[256];
        if (source_spec_parse(source, 0, &spec, err, sizeof(err)) < 0) {
            fprintf(stderr, "pirec record: --source %s: %s\n", source, err);
            return 2;
        }
    } else if (pcm) {
        spec.kind = SOURCE_ALSA;
        snprintf(spec.name, sizeof(spec.name), "%s", pcm);
    }
    if (legacy_flag) {
        if (!source || spec.kind != SOURCE_FILE) {
            fprintf(stderr, "pirec record: %s is an option of a file source "
                            "(--source file:PATH)\n", legacy_flag);
            return 2;
        }
        if (legacy.realtime)
            spec.fopt.realtime = 1;
        if (legacy.fail_at_frame)
            spec.fopt.fail_at_frame = legacy.fail_at_frame;
        if (legacy.stall_at_frame)
            spec.fopt.stall_at_frame = legacy.stall_at_frame;
        if (legacy.stall_ms)
            spec.fopt.stall_ms = legacy.stall_ms;
        if (legacy.pace_percent)
            spec.fopt.pace_percent = legacy.pace_percent;
    }
    if (out && dir) {
        fprintf(stderr, "pirec record: --out and --dir exclude each other\n");
        return 2;
    }

    /* ---- open the source ---- */
    struct audio_source *src = NULL;
    const char *id = "pirec";
    char idbuf[64];
    int realtime = 1, is_file = 0;
    if (device) {
        struct device_info devs[32];
        int n = devices_scan(NULL, devs, 32);
        const struct device_info *d = NULL;
        for (int i = 0; i < n && i < 32; i++)
            if (!strcmp(devs[i].id, device) || !strcasecmp(devs[i].card_id, device))
                d = &devs[i];
        if (!d) {
            fprintf(stderr, "pirec record: no capture device '%s'", device);
            if (n > 0) {
                fprintf(stderr, "; there is:");
                for (int i = 0; i < n && i < 32; i++)
                    fprintf(stderr, " %s", devs[i].id);
            } else {
                fprintf(stderr, " (no capture device found)");
            }
            fprintf(stderr, "\n(`pirec devices` lists them)\n");
            return 2;
        }
        id = device;
        rc = audio_source_open_alsa(&src, d->pcm, NULL, &want);
    } else {
        char *conf = NULL;
        if (spec.kind == SOURCE_ALSA && alsa_conf && !(conf = read_text(alsa_conf))) {
            fprintf(stderr, "pirec record: cannot read --alsa-conf %s: %s\n", alsa_conf,
                    strerror(errno));
            return 2;
        }
        const char *base = strrchr(spec.name, '/');
        const char *idsrc = spec.kind == SOURCE_FILE && base ? base + 1 : spec.name;
        snprintf(idbuf, sizeof idbuf, "%.*s", (int)sizeof(idbuf) - 1, idsrc);
        char *dot = spec.kind == SOURCE_FILE ? strrchr(idbuf, '.') : NULL;
        if (dot && dot != idbuf)
            *dot = 0;
        id = idbuf;
        is_file = spec.kind == SOURCE_FILE;
        realtime = !is_file || spec.fopt.realtime;
        rc = source_spec_open(&spec, conf, &want, &src);
        free(conf);
    }
    if (rc < 0) {
        fprintf(stderr, "pirec record: cannot open the source (%s): %s%s\n",
                device ? device : pcm ? pcm : source, strerror(-rc),
                rc == -EINVAL ? " (unsupported format, rate or channel count?)" : "");
        return 2;
    }
    if ((want.sample && src->format.sample != want.sample) ||
        (want.rate && src->format.rate != want.rate) ||
        (want.channels && src->format.channels != want.channels)) {
        fprintf(stderr, "pirec record: the source delivers %s %u Hz %u ch, not what was "
                        "asked for\n", sample_format_name(src->format.sample),
                src->format.rate, src->format.channels);
        audio_source_close(src);
        return 2;
    }
    const struct audio_format fmt = src->format;
    if (fmt.channels > 8) {
        fprintf(stderr, "pirec record: %u channels: FLAC stores at most 8; pick --channels\n",
                fmt.channels);
        audio_source_close(src);
        return 2;
    }
    struct throttle *th = NULL;
    if (spec.kind == SOURCE_ALSA && !device && alsa_conf) {
        /* a configuration given here may define a PCM that is not paced by a clock (the
         * file plugin the tests use): treat it like a file read as fast as possible */
        realtime = 0;
        is_file = 1;
    }
    if (is_file && !realtime) {
        if (!(th = throttle_wrap(src))) {
            audio_source_close(src);
            return 1;
        }
        src = &th->base;
    }
    fprintf(stderr, "source: %s\n", src->description);

    /* ---- capture, then the take ---- */
    /* the ring covers the pre-roll and the encoder's scheduling; disk stalls are taken by
     * the take's queue of encoded blocks (memory follows the stall) */
    static struct capture_news news;   /* outlives the capture thread that writes it */
    struct capture_config ccfg = {
        .ring_seconds = (unsigned)ceil(preroll) + (th ? 2 : 3),
        .stall_ms = (int)llround(stall_seconds * 1000),
        .timing_window_ms = (int)llround(timing_seconds * 1000),
        .on_event = on_capture_event,
        .on_event_arg = &news,
    };
    if (th) {
        /* held back by the take writer, not paced by a clock: no watchdog, no timing */
        ccfg.stall_ms = -1;
        ccfg.timing_window_ms = -1;
    }
    struct capture *cap;
    if ((rc = capture_start(&cap, src, &ccfg)) < 0) {
        fprintf(stderr, "pirec record: cannot start the capture: %s\n", strerror(-rc));
        audio_source_close(src);
        return 1;
    }
    if (th)
        atomic_store(&th->ring, capture_ring(cap));

    struct sigaction sa = {.sa_handler = on_sigint};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    uint64_t pre = (uint64_t)llround(preroll * fmt.rate);
    uint64_t start_pos = 0;
    /* Without a pre-roll the take starts at the capture's first frame: running the command
     * is pressing record, and a slow start (a loaded Pi, a sanitizer build) must not cut the
     * first milliseconds off the take. */
    if (realtime && pre) {
        /* a live source has to have run for the pre-roll before the take can reach back */
        struct audio_ring *r = capture_ring(cap);
        while (audio_ring_write_pos(r) < pre && !interrupted && !atomic_load(&news.stalled) &&
               capture_get_state(cap) == CAPTURE_RUNNING)
            audio_ring_wait(r, audio_ring_write_pos(r), 100);
        uint64_t w = audio_ring_write_pos(r);
        start_pos = w > pre ? w - pre : 0;
    }
    struct take_config tc = {
        .dir = dir ? dir : (out ? NULL : "."),
        .device_id = id,
        .name_pattern = name,
        .out_path = out,
        .bits = (unsigned)bits,
        .compression = (unsigned)comp,
        .flush_ms = (unsigned)flush_ms,
        .split_frames = (uint64_t)llround(split_seconds * fmt.rate),
        .split_bytes = (uint64_t)llround(split_mb * 1e6),
        .min_free_bytes = min_free_mb ? min_free_mb << 20 : 1,
        .on_file = on_file,
        .on_file_arg = (void *)&fmt.rate,
        .no_gap_fill = no_gap_fill,
    };
    if (seconds > 0)
        tc.max_frames = pre + (uint64_t)llround(seconds * fmt.rate);
    if (max_seconds > 0) {
        uint64_t m = (uint64_t)llround(max_seconds * fmt.rate);
        if (!tc.max_frames || m < tc.max_frames)
            tc.max_frames = m;
    }
    struct take *t;
    if ((rc = take_start(&t, cap, &tc, start_pos)) < 0) {
        const char *hint = rc == -ENOSPC ? "not enough free space (see --min-free-mb)"
                         : rc == -EINVAL ? "this format cannot be stored as asked (see --bits)"
                         : strerror(-rc);
        fprintf(stderr, "pirec record: cannot start the take in %s: %s\n",
                out ? out : tc.dir, hint);
        if (th)
            atomic_store(&th->cancel, 1);
        capture_stop(cap);
        return 2;
    }
    if (th)
        atomic_store(&th->take, t);
    if (pre)
        fprintf(stderr, "pre-roll: the take starts at source frame %" PRIu64
                        " (%.3f s before the start)\n", start_pos,
                (double)(realtime ? pre : 0) / fmt.rate);

    while (!interrupted && !atomic_load(&news.stalled) && take_wait(t, 100) == -ETIMEDOUT)
        ;
    int stalled = atomic_load(&news.stalled);
    if (interrupted)
        fprintf(stderr, "interrupted: finishing the take\n");
    else if (stalled)
        fprintf(stderr, "the device stalled: finishing the take\n");
    struct take_status st;
    if (th) {
        /* the source stays held back until the writer has read up to the stop; then the
         * throttle lets go of the take before take_stop_at frees it */
        uint64_t stop = audio_ring_write_pos(capture_ring(cap));
        take_request_stop(t, stop);
        take_wait(t, -1);
        atomic_store(&th->take, NULL);
        while (atomic_load(&th->users))
            nanosleep(&(struct timespec){0, 100000}, NULL);
        take_stop_at(t, stop, &st);
        atomic_store(&th->cancel, 1);
    } else {
        take_stop(t, &st);
    }
    struct capture_stats cs;
    capture_get_stats(cap, &cs);
    capture_stop(cap);

    printf("wrote %u file%s, %" PRIu64 " frames, %.3f s, %" PRIu64 " bytes (%s)\n", st.files,
           st.files == 1 ? "" : "s", st.frames, st.seconds, st.bytes,
           stalled && st.state == TAKE_DONE ? "device stalled" : state_text(st.state));
    int status = 0;
    if (stalled) {
        fprintf(stderr, "pirec record: the device stopped delivering audio (nothing for "
                        "%.1f s): the take ends after %.3f s and keeps everything captured "
                        "until then; the stall is in the file's comments (PIREC_LOSS). Check "
                        "the device's connection, power or driver (or the sound server)\n",
                (double)atomic_load(&news.stall_ns) / 1e9, st.seconds);
        status = 1;
    }
    if (cs.measured_rate > 0)
        fprintf(stderr, "device clock: %.1f Hz over the last timing window (nominal %u Hz)\n",
                cs.measured_rate, fmt.rate);
    if (cs.timing_losses) {
        fprintf(stderr, "pirec record: LOSS OF TIMING: the device delivered %" PRIu64
                        " frames (%.3f s) fewer than the wall clock allows, in %" PRIu32
                        " window%s (last measured rate %.1f Hz, nominal %u Hz); its clock "
                        "stopped or crawled. See PIREC_LOSS in the file's comments\n",
                cs.timing_lost_frames, (double)cs.timing_lost_frames / fmt.rate,
                cs.timing_losses, cs.timing_losses == 1 ? "" : "s", cs.measured_rate,
                fmt.rate);
        status = 1;
    }
    if (st.loss_events) {
        fprintf(stderr, "pirec record: LOST %" PRIu64 " frames (%.3f s) in %" PRIu32
                        " event%s%s; see PIREC_LOSS in the file's comments\n",
                st.lost_frames, (double)st.lost_frames / fmt.rate, st.loss_events,
                st.loss_events == 1 ? "" : "s",
                st.filled_frames ? ", replaced by silence" : "");
        status = 1;
    }
    switch (st.state) {
    case TAKE_DEVICE_GONE:
        fprintf(stderr, "pirec record: the device went away after %.3f s; the file keeps "
                        "everything captured until then\n", st.seconds);
        status = 1;
        break;
    case TAKE_DISK_FULL:
        fprintf(stderr, "pirec record: the disk is (nearly) full: stopped after %.3f s; the "
                        "file is complete up to there\n", st.seconds);
        status = 1;
        break;
    case TAKE_FAILED:
        fprintf(stderr, "pirec record: the take failed after %.3f s: %s; the file keeps what "
                        "was written\n", st.seconds, strerror(-st.error));
        status = 1;
        break;
    default:
        if (st.error) {
            fprintf(stderr, "pirec record: %s\n", strerror(-st.error));
            status = 1;
        }
        break;
    }
    return status;
}
