/* pirec ingest: options, then ingest_run() (src/ingest/). */
#include "cli/commands.h"

#include "common/log.h"
#include "common/numparse.h"
#include "ingest/ingest.h"
#include "ingest/proto.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *out)
{
    fprintf(out,
        "usage: pirec ingest [--listen ADDR:PORT] [--dir DIR] [options]\n"
        "\n"
        "WebSocket server that stores record-module streams (docs/protocol.md). Each binary\n"
        "message <name> NUL <data> is appended to DIR/<name> once it is complete; clients\n"
        "that offer the subprotocol pirec.resume.1 also get stat/ack replies and can report\n"
        "losses (logged to DIR/<name>.losses). Any request path is accepted.\n"
        "\n"
        "  --listen ADDR:PORT   where to listen (default 0.0.0.0:9090); [::1]:PORT for IPv6,\n"
        "                       PORT 0 picks a free port; the port is printed on stdout:\n"
        "                       \"pirec ingest: listening on ADDR:PORT\"\n"
        "  --dir DIR            where streams are stored (default: the current directory);\n"
        "                       created if missing (one level); must be writable\n"
        "  --max-message BYTES  largest message accepted (default 16777216); larger ones\n"
        "                       close the connection with code 1009\n"
        "  --max-memory BYTES   all connections' unfinished messages together (default\n"
        "                       67108864, 64 MiB); over it, the connection needing more is closed\n"
        "                       with 1013 (try again later) and a log line\n"
        "  --max-connections N  connections at once (default 256); more are closed with\n"
        "                       1013 and a log line\n"
        "  --max-open N         files kept open at once (default and most: half the\n"
        "                       open-file limit, which is raised to the hard limit);\n"
        "                       least recently written ones are closed and reopened\n"
        "  --sync-interval MS   fdatasync written files this often (default 2000, 0: off;\n"
        "                       files are always fsynced at exit)\n"
        "  --ping SECS          ping an idle connection after SECS (default 30) and hang up\n"
        "                       when it stays silent for about twice that\n"
        "  --threads N          service threads (default: the number of online cores);\n"
        "                       connections are spread over them in turn\n"
        "  -h, --help           this text\n"
        "\n"
        "Stop with SIGINT or SIGTERM: connections are closed (1001), every file is fsynced,\n"
        "exit status 0. Exit status 1: could not start (the message says why); 2: bad usage.\n");
}

static int parse_num(const char *opt, const char *s, long long min, long long max,
                     long long *out)
{
    unsigned long long v;
    if (parse_ullong_range(s, (unsigned long long)min, (unsigned long long)max, &v) < 0) {
        fprintf(stderr, "pirec ingest: %s needs a whole number from %lld to %lld, not '%s'\n",
                opt, min, max, s);
        return -EINVAL;
    }
    *out = (long long)v;
    return 0;
}

int cmd_ingest(int argc, char **argv)
{
    static const struct option opts[] = {
        {"listen", required_argument, NULL, 'l'},
        {"dir", required_argument, NULL, 'd'},
        {"max-message", required_argument, NULL, 'm'},
        {"max-open", required_argument, NULL, 'o'},
        {"max-memory", required_argument, NULL, 'M'},
        {"max-connections", required_argument, NULL, 'C'},
        {"sync-interval", required_argument, NULL, 's'},
        {"ping", required_argument, NULL, 'p'},
        {"threads", required_argument, NULL, 't'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *listen = "0.0.0.0:9090";
    struct ingest_config cfg = {
        .dir = ".",
        .sync_ms = 2000,
        .fault_enospc_after = -1,
    };
    long long v;
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'l': listen = optarg; break;
        case 'd': cfg.dir = optarg; break;
        case 'm':
            if (parse_num("--max-message", optarg, 1024, 1LL << 30, &v) < 0)
                return 2;
            cfg.max_message = (size_t)v;
            break;
        case 'M':
            if (parse_num("--max-memory", optarg, 65536, 1LL << 40, &v) < 0)
                return 2;
            cfg.max_memory = (uint64_t)v;
            break;
        case 'C':
            if (parse_num("--max-connections", optarg, 1, 1 << 20, &v) < 0)
                return 2;
            cfg.max_connections = (int)v;
            break;
        case 'o':
            if (parse_num("--max-open", optarg, 1, 1 << 20, &v) < 0)
                return 2;
            cfg.max_open_files = (int)v;
            break;
        case 's':
            if (parse_num("--sync-interval", optarg, 0, 3600 * 1000, &v) < 0)
                return 2;
            cfg.sync_ms = (unsigned)v;
            break;
        case 'p':
            if (parse_num("--ping", optarg, 1, 3600, &v) < 0)
                return 2;
            cfg.ping_secs = (unsigned)v;
            break;
        case 't':
            if (parse_num("--threads", optarg, 1, 256, &v) < 0)
                return 2;
            cfg.threads = (int)v;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            if (optopt)
                fprintf(stderr, "pirec ingest: option -%c %s\n", optopt,
                        strchr("h", optopt) ? "is unknown" : "needs a value or is unknown");
            else
                fprintf(stderr, "pirec ingest: unknown option or missing value: %s\n",
                        argv[optind - 1]);
            fprintf(stderr, "Try 'pirec ingest --help'.\n");
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "pirec ingest: unexpected argument '%s'\nTry 'pirec ingest --help'.\n",
                argv[optind]);
        return 2;
    }
    if (!*cfg.dir) {
        fprintf(stderr, "pirec ingest: --dir must not be empty\n");
        return 2;
    }
    char host[64], err[300];
    if (ingest_parse_listen(listen, host, sizeof host, &cfg.port, &cfg.v6, err,
                            sizeof err) < 0) {
        fprintf(stderr, "pirec ingest: %s\n", err);
        return 2;
    }
    cfg.host = host;
    /* Test hook, documented in docs/ingest.md: make writes fail as if the disk filled. */
    const char *fault = getenv("PIREC_INGEST_FAULT_ENOSPC_AFTER");
    if (fault && *fault) {
        if (parse_num("PIREC_INGEST_FAULT_ENOSPC_AFTER", fault, 0, 1LL << 62, &v) < 0)
            return 2;
        cfg.fault_enospc_after = v;
    }
    int rc = ingest_run(&cfg);
    if (rc < 0) {
        fprintf(stderr, "pirec ingest: could not start (see the error above)\n");
        return 1;
    }
    return 0;
}
