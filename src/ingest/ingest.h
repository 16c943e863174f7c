/*
 * ingest: the WebSocket server behind `pirec ingest`, which stores record-module streams
 * (docs/protocol.md, docs/ingest.md).
 *
 * Owner: "C" (pirec ingest). ingest_run() is called on the main thread; it runs
 * `threads` service threads (itself and threads-1 more, src/ingest/server.h) that share
 * the connections and do all socket and file work, plus the store's sync thread
 * (fdatasync only). It installs SIGINT/SIGTERM handlers for its
 * duration; a signal makes it close every connection (1001), fsync and close every file
 * and return 0. ingest_request_stop() is async-signal-safe and may be called from any
 * thread.
 */
#ifndef PIREC_INGEST_H
#define PIREC_INGEST_H

#include <stddef.h>
#include <stdint.h>

struct ingest_config {
    const char *host;          /* numeric address, "" or NULL: every address */
    int port;                  /* 0: a free port (printed when listening) */
    int v6;                    /* host is an IPv6 address */
    const char *dir;           /* where streams are stored; created if missing */
    size_t max_message;        /* reassembly cap per connection; 0: 16 MiB */
    uint64_t max_memory;       /* reassembly cap of all connections; 0: 64 MiB */
    int max_connections;       /* 0: 256 */
    int max_open_files;        /* 0: half the open-file limit */
    unsigned sync_ms;          /* periodic fdatasync; 0: off */
    unsigned ping_secs;        /* ping an idle connection after this; 0: 30 */
    int threads;               /* service threads; 0: the number of online cores */
    int64_t fault_enospc_after;/* test hook (see store.h); < 0: off */
};

/* Runs the server until SIGINT/SIGTERM or ingest_request_stop(). Prints
 * "pirec ingest: listening on ADDR:PORT ..." on stdout once it accepts connections.
 * Returns 0 after a clean stop, or a negative errno (with an error logged) when it could
 * not start. */
int ingest_run(const struct ingest_config *cfg);

void ingest_request_stop(void);

#endif
