/*
 * pirec serve: the recorder appliance. Loads the config, repairs takes a crash left
 * unfinished, starts the event hub, the recorder (devices, captures, leases, takes) and the
 * HTTP server, then waits on the main thread for SIGINT/SIGTERM (sigwaitinfo: every other
 * thread is created with those signals blocked). Shutdown: the API stops taking requests,
 * running takes are finalized (each gets `stop`), subscribers get `close`, exit 0.
 */
#include "cli/commands.h"

#include "common/fsutil.h"
#include "common/listen_addr.h"
#include "common/log.h"
#include "common/numparse.h"
#include "server/config.h"
#include "server/events.h"
#include "server/http.h"
#include "server/recorder.h"

#include <errno.h>
#include <getopt.h>
#include <ifaddrs.h>
#include <arpa/inet.h>
#include <net/if.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static void usage(FILE *out)
{
    fprintf(out,
        "usage: pirec serve [OPTIONS]\n"
        "\n"
        "The recorder: web page, control API (docs/api.md), events, capture, FLAC takes.\n"
        "\n"
        "  --listen ADDR:PORT     where to listen (default 0.0.0.0:8080; port 0 = any free;\n"
        "                         [::]:PORT for IPv6 and IPv4)\n"
        "  --config FILE          INI file ([server] and [device ID] sections)\n"
        "  --demo                 add a demo tone device\n"
        "  --recordings DIR       where takes are written (created if missing)\n"
        "  --state-dir DIR        where the token secret lives (jwt.key, mode 0600)\n"
        "  --lease-seconds N      how long a take of control lasts unless renewed\n"
        "  --heartbeat-ms N       SSE heartbeat period (default 15000; for tests)\n"
        "  --help                 this text\n"
        "\n"
        "Options override the config file. SIGINT/SIGTERM finalize running takes and exit 0.\n");
}

static int copy_opt(char *dst, size_t cap, const char *v, const char *name)
{
    if (strlen(v) >= cap || !v[0]) {
        fprintf(stderr, "pirec serve: %s: bad value\n", name);
        return -EINVAL;
    }
    memcpy(dst, v, strlen(v) + 1);
    return 0;
}

/* The first IPv4 address of an interface that is up and not loopback. */
static void lan_ip(char *out, size_t n)
{
    snprintf(out, n, "<this host's LAN IP>");
    struct ifaddrs *ifs;
    if (getifaddrs(&ifs) < 0)
        return;
    for (struct ifaddrs *i = ifs; i; i = i->ifa_next) {
        if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET || (i->ifa_flags & IFF_LOOPBACK) ||
            !(i->ifa_flags & IFF_UP))
            continue;
        inet_ntop(AF_INET, &((struct sockaddr_in *)i->ifa_addr)->sin_addr, out, (socklen_t)n);
        break;
    }
    freeifaddrs(ifs);
}

int cmd_serve(int argc, char **argv)
{
    enum { O_LISTEN = 1, O_CONFIG, O_DEMO, O_REC, O_STATE, O_LEASE, O_HB, O_HELP };
    static const struct option opts[] = {
        {"listen", required_argument, NULL, O_LISTEN},
        {"config", required_argument, NULL, O_CONFIG},
        {"demo", no_argument, NULL, O_DEMO},
        {"recordings", required_argument, NULL, O_REC},
        {"state-dir", required_argument, NULL, O_STATE},
        {"lease-seconds", required_argument, NULL, O_LEASE},
        {"heartbeat-ms", required_argument, NULL, O_HB},
        {"help", no_argument, NULL, O_HELP},
        {NULL, 0, NULL, 0},
    };
    const char *listen = NULL, *config = NULL, *rec_dir = NULL, *state_dir = NULL;
    int demo = 0;
    unsigned lease = 0, hb_ms = 0;
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case O_LISTEN: listen = optarg; break;
        case O_CONFIG: config = optarg; break;
        case O_DEMO: demo = 1; break;
        case O_REC: rec_dir = optarg; break;
        case O_STATE: state_dir = optarg; break;
        case O_LEASE:
            if (parse_uint_range(optarg, 1, 7 * 24 * 3600, &lease) < 0) {
                fprintf(stderr, "pirec serve: --lease-seconds: '%s' is not a number of seconds "
                                "(1..604800)\n", optarg);
                return 2;
            }
            break;
        case O_HB:
            if (parse_uint_range(optarg, 10, 3600 * 1000, &hb_ms) < 0) {
                fprintf(stderr, "pirec serve: --heartbeat-ms: '%s' is not 10..3600000\n", optarg);
                return 2;
            }
            break;
        case O_HELP: usage(stdout); return 0;
        default:
            fprintf(stderr, "pirec serve: unknown or incomplete option '%s'\n\n",
                    argv[optind - 1]);
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "pirec serve: unexpected argument '%s'\n\n", argv[optind]);
        usage(stderr);
        return 2;
    }

    static struct server_config cfg;   /* ~80 KiB: not on the stack */
    config_defaults(&cfg);
    if (config) {
        char err[512];
        int rc = config_load(config, &cfg, err, sizeof err);
        if (rc < 0) {
            if (err[0])
                fprintf(stderr, "pirec serve: %s\n", err);
            else
                fprintf(stderr, "pirec serve: %s: %s\n", config, strerror(-rc));
            return 2;
        }
    }
    if ((listen && copy_opt(cfg.listen, sizeof cfg.listen, listen, "--listen") < 0) ||
        (rec_dir && copy_opt(cfg.recordings, sizeof cfg.recordings, rec_dir, "--recordings") < 0) ||
        (state_dir && copy_opt(cfg.state_dir, sizeof cfg.state_dir, state_dir, "--state-dir") < 0))
        return 2;
    if (demo)
        cfg.demo = 1;
    if (lease)
        cfg.lease_seconds = lease;
    char host[256];
    unsigned port;
    if (listen_addr_parse(cfg.listen, host, sizeof host, &port) < 0) {
        fprintf(stderr, "pirec serve: listen address '%s': want ADDR:PORT, [IPV6]:PORT, :PORT "
                "or PORT (port 0..65535)\n", cfg.listen);
        return 2;
    }

    /* Before any thread exists, so that all of them inherit the mask. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    int rc = fs_mkdir_p(cfg.recordings, 0755);
    if (rc < 0) {
        fprintf(stderr, "pirec serve: cannot create recordings directory %s: %s\n",
                cfg.recordings, strerror(-rc));
        return 1;
    }
    /* recorder_create() finalizes the .part files a crash left, before any take starts */

    struct event_hub *hub = NULL;
    struct recorder *rec = NULL;
    struct http_server *http = NULL;
    int status = 1;
    rc = event_hub_create(&hub, 0);
    if (rc < 0) {
        fprintf(stderr, "pirec serve: event hub: %s\n", strerror(-rc));
        return 1;
    }
    rc = recorder_create(&rec, &cfg, hub);
    if (rc < 0) {
        fprintf(stderr, "pirec serve: cannot start the recorder: %s\n", strerror(-rc));
        goto out_hub;
    }
    struct http_options ho = {
        .listen = cfg.listen,
        .heartbeat_ms = hb_ms,
        .max_connections = cfg.max_connections,
        .max_connections_per_client = cfg.max_connections_per_client,
        .max_event_streams = cfg.max_event_streams,
        .max_event_streams_per_client = cfg.max_event_streams_per_client,
        .header_timeout_s = cfg.header_timeout_seconds,
        .allowed_hosts = cfg.allowed_hosts,
    };
    rc = http_start(&http, &ho, rec, hub);
    if (rc < 0) {
        /* http_start logged which address and port, and why */
        fprintf(stderr, "pirec serve: cannot serve on %s: %s\n", cfg.listen, strerror(-rc));
        goto out_rec;
    }
    char lan[64];
    lan_ip(lan, sizeof lan);
    const char *a = http_address(http);
    int v6 = strchr(a, ':') != NULL;
    printf("pirec: listening on http://%s%s%s:%u/ (open http://%s:%u/ on your phone or tablet)\n",
           v6 ? "[" : "", a, v6 ? "]" : "", http_port(http), lan, http_port(http));
    fflush(stdout);

    for (;;) {
        siginfo_t si;
        int sig = sigwaitinfo(&sigs, &si);
        if (sig == SIGINT || sig == SIGTERM) {
            log_info("serve", "%s: finishing takes and shutting down",
                     sig == SIGINT ? "SIGINT" : "SIGTERM");
            break;
        }
    }
    status = 0;
    http_quiesce(http);
out_rec:
    if (rec)
        recorder_destroy(rec); /* running takes are finalized and announced with `stop` */
out_hub:
    event_hub_shutdown(hub);   /* subscribers get `close` */
    http_stop(http);
    event_hub_destroy(hub);
    if (status == 0)
        log_info("serve", "stopped");
    return status;
}
