/*
 * pirec send: stream FROM to TO with the record module, e.g. a file to a `pirec ingest`
 * server. Exit 0 only when every byte read was delivered (for ws://, acknowledged by a
 * resumable server or written to a legacy one), 1 when the transfer failed or was
 * interrupted (the message says how much was not delivered), 2 on bad usage.
 * Main thread only; SIGINT/SIGTERM stop the transfer through record_stop().
 */
#include "cli/commands.h"

#include <pirec/record.h>

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "common/numparse.h"

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
    (void)sig;
    interrupted = 1;
}

static void usage(FILE *out)
{
    fprintf(out,
        "usage: pirec send [OPTIONS] FROM TO\n"
        "\n"
        "Streams FROM to TO with the record module and waits until everything is delivered.\n"
        "\n"
        "FROM  file://PATH                 a file (also sdbuffer://handle=PATH)\n"
        "TO    file://PATH                 a file, created or truncated\n"
        "      ws://HOST[:PORT]/NAME       a WebSocket server (`pirec ingest` or the original's\n"
        "      wss://HOST[:PORT]/NAME      record_server); NAME is the stream's file name there\n"
        "      (ringbuffer:// and mem:// name memory inside a program; they need the library)\n"
        "\n"
        "options:\n"
        "  --chunk-size BYTES   bytes read per chunk (default 4096, at most 16M)\n"
        "  --buffer BYTES       ws: bytes kept while the link is down (default 8M)\n"
        "  --stop-timeout MS    on Ctrl-C, how long to drain before giving up (default 5000)\n"
        "  --give-up SECONDS    ws: fail when the server stays unreachable this long\n"
        "                       (default: keep trying until Ctrl-C)\n"
        "  --reconnect-max MS   ws: longest wait between reconnect attempts (default 5000)\n"
        "  --ca-file FILE       wss: PEM file of the CA(s) that vouch for the server\n"
        "                       (default: the system's CAs)\n"
        "  --pin SHA256         wss: also require the server certificate's SHA-256 (of its\n"
        "                       public key, SPKI, or of the certificate; 64 hex digits)\n"
        "  --quiet              no summary line, warnings and errors only\n"
        "  --help               this text\n"
        "BYTES may end in K, M or G (1024-based).\n"
        "\n"
        "exit status: 0 all delivered, 1 failed or interrupted (says what was lost), 2 bad usage\n");
}

/* Strict (common/numparse.h): the whole string is a number in [lo, hi], with an optional
 * K/M/G if `bytes`. */
static int parse_num(const char *opt, const char *s, int64_t lo, int64_t hi, int bytes,
                     int64_t *out)
{
    char digits[32];
    size_t n = strlen(s);
    unsigned long long mult = 1, v = 0;
    if (bytes && n > 1 && n < sizeof digits) {
        switch (s[n - 1]) {
        case 'k': case 'K': mult = 1024; break;
        case 'm': case 'M': mult = 1024 * 1024; break;
        case 'g': case 'G': mult = 1024 * 1024 * 1024; break;
        }
    }
    snprintf(digits, sizeof digits, "%.*s", (int)(mult > 1 ? n - 1 : n), s);
    if (n >= sizeof digits ||
        parse_ullong_range(digits, 0, (unsigned long long)hi / mult, &v) ||
        v * mult < (unsigned long long)lo) {
        fprintf(stderr, "pirec send: %s \"%s\" is not a number in %" PRId64 " .. %" PRId64 "\n",
                opt, s, lo, hi);
        return -EINVAL;
    }
    *out = (int64_t)(v * mult);
    return 0;
}

static int is_program_memory(const char *url)
{
    return !strncmp(url, "ringbuffer://", 13) || !strncmp(url, "mem://", 6);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int cmd_send(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"chunk-size", required_argument, NULL, 'c'},
        {"buffer", required_argument, NULL, 'b'},
        {"stop-timeout", required_argument, NULL, 't'},
        {"give-up", required_argument, NULL, 'g'},
        {"reconnect-max", required_argument, NULL, 'r'},
        {"ca-file", required_argument, NULL, 'A'},
        {"pin", required_argument, NULL, 'P'},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int64_t chunk = 4096, buffer = -1, stop_timeout = -1, give_up = 0, reconnect_max = -1;
    int quiet = 0;
    const char *ca_file = NULL, *pin = NULL;
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case 'c':
            if (parse_num("--chunk-size", optarg, 1, 16 * 1024 * 1024, 1, &chunk))
                return 2;
            break;
        case 'b':
            if (parse_num("--buffer", optarg, 4096, (int64_t)1 << 32, 1, &buffer))
                return 2;
            break;
        case 't':
            if (parse_num("--stop-timeout", optarg, 0, 3600000, 0, &stop_timeout))
                return 2;
            break;
        case 'g':
            if (parse_num("--give-up", optarg, 1, 86400, 0, &give_up))
                return 2;
            break;
        case 'r':
            if (parse_num("--reconnect-max", optarg, 10, 600000, 0, &reconnect_max))
                return 2;
            break;
        case 'A':
            ca_file = optarg;
            break;
        case 'P':
            pin = optarg;
            break;
        case 'q':
            quiet = 1;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            if (optopt)
                fprintf(stderr, "pirec send: option -%c is unknown or needs a value\n", optopt);
            else
                fprintf(stderr, "pirec send: unknown option or missing value: %s\n",
                        argv[optind - 1]);
            fprintf(stderr, "Try 'pirec send --help'.\n");
            return 2;
        }
    }
    if (argc - optind != 2) {
        fprintf(stderr, "pirec send: expected FROM and TO, got %d argument%s\n"
                        "Try 'pirec send --help'.\n", argc - optind, argc - optind == 1 ? "" : "s");
        return 2;
    }
    const char *from = argv[optind], *to = argv[optind + 1];
    for (int i = 0; i < 2; i++) {
        const char *u = i ? to : from;
        if (is_program_memory(u)) {
            fprintf(stderr, "pirec send: %s names memory inside a program (%.*s://); from the "
                            "command line use file:// or ws://\n",
                    i ? "TO" : "FROM", (int)(strstr(u, "://") - u), u);
            return 2;
        }
    }
    if (quiet)
        plog_set_level(PLOG_WARN);

    rec_hdl_t h = record_register(from, to);
    if (!h) {
        fprintf(stderr, "pirec send: invalid URL (the line above says what is wrong); "
                        "see 'pirec send --help' for the forms\n");
        return 2;
    }
    record_set_chunk_size(h, (int)chunk);
    if (buffer > 0)
        record_set_option(h, RECORD_OPT_BUFFER_BYTES, buffer);
    if (stop_timeout >= 0)
        record_set_option(h, RECORD_OPT_STOP_TIMEOUT_MS, stop_timeout);
    if (give_up > 0)
        record_set_option(h, RECORD_OPT_GIVE_UP_MS, give_up * 1000);
    if (reconnect_max > 0)
        record_set_option(h, RECORD_OPT_RECONNECT_MAX_MS, reconnect_max);
    if ((ca_file || pin) && record_set_tls(h, ca_file, pin)) {
        fprintf(stderr, "pirec send: bad --ca-file or --pin (the line above says why)\n");
        record_unregister(h);
        return 2;
    }

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    double t0 = now_s();
    int rc = record_start(h);
    if (rc) {
        fprintf(stderr, "pirec send: cannot start: %s\n", strerror(-rc));
        record_unregister(h);
        return 1;
    }
    int stop_rc = 0;
    /* Wake up now and then to notice a signal; the work happens on the worker thread. */
    while (record_wait(h, 100) == -ETIMEDOUT) {
        if (interrupted) {
            fprintf(stderr, "pirec send: interrupted, stopping\n");
            stop_rc = record_stop(h);
            break;
        }
    }
    double secs = now_s() - t0;
    record_stats_t s;
    record_get_stats(h, &s);
    record_unregister(h);

    uint64_t undelivered = s.read_bytes > s.acked_bytes ? s.read_bytes - s.acked_bytes : 0;
    if (s.state == RECORD_FINISHED && s.lost_bytes == 0 && undelivered == 0 && !interrupted) {
        if (!quiet)
            printf("pirec send: %" PRIu64 " bytes in %.2f s (%.1f MB/s), all delivered\n",
                   s.read_bytes, secs, secs > 0 ? (double)s.read_bytes / secs / 1e6 : 0.0);
        return 0;
    }
    if (undelivered < s.lost_bytes)
        undelivered = s.lost_bytes;
    if (interrupted)
        fprintf(stderr, "pirec send: interrupted after %.2f s: %" PRIu64 " bytes read, %" PRIu64
                        " delivered, %" PRIu64 " not delivered%s\n", secs, s.read_bytes,
                s.acked_bytes, undelivered, stop_rc == -ETIMEDOUT ? " (stop timeout passed)" : "");
    else
        fprintf(stderr, "pirec send: failed: %s: %" PRIu64 " bytes read, %" PRIu64
                        " delivered, %" PRIu64 " not delivered\n",
                strerror(s.error ? -s.error : EIO), s.read_bytes, s.acked_bytes, undelivered);
    return 1;
}
