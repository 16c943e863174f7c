/*
 * ws_link_int: what the files of the WebSocket sink share (ws_link.c: registry,
 * streams and the public API; ws_link_conn.c: the connection, its liveness and the lws
 * callback; ws_link_send.c: what goes out next and the control messages). Private to
 * src/record/; see ws_link.c for the design and ws_link.h for the contract.
 * ws_link_fate.c settles the unconfirmed bytes of streams that ended on a legacy link.
 * Threads: functions named "service thread" run only on the link's lws service thread;
 * "under mu" ones need the link's mutex held.
 */
#ifndef PIREC_RECORD_WS_LINK_INT_H
#define PIREC_RECORD_WS_LINK_INT_H

#include <jansson.h>
#include <libwebsockets.h>
#include <pthread.h>
#include <stdint.h>

#include "record/ws_frame.h"
#include "record/ws_link.h"
#include "record/wsproto.h"

#define WS_SUBPROTOCOL  WSPROTO_SUBPROTOCOL
#define WS_MSG_MAX      (256 * 1024)  /* data bytes per message: one writable callback, one
                                         send(); big enough that per-message costs (a poll,
                                         a send, two headers) vanish, small enough for a
                                         Pi's memory and below pirec ingest's --max-message */
#define WS_FRAG_MAX     (8 * 1024)    /* most data bytes in a message's first fragment */
#define WS_CTL_MAX      (WS_FRAG_MAX + 256)  /* longest control message we send */
#define WS_RX_MAX       (64 * 1024)   /* longest control message we accept */
#define WS_DEFAULT_BUF  (4ull << 20)
#define WS_DEFAULT_RECONNECT_MS 5000
#define WS_BACKOFF_FIRST_MS 200
#define WS_STOP_GRACE_MS 1000
#define WS_LOSS_LOG_MS  10000
#define WS_HEALTHY_MS   2000          /* a connection up this long (and not refused) resets
                                         the backoff */
#define WS_WATCHDOG_MS  1000          /* period of the reconnect watchdog */
#define WS_HANDSHAKE_MAX_S 20         /* an attempt not established by then is killed */
/* Keep-alive of peers that speak pirec.resume.1 (they answer pings). */
#define WS_PING_S       5
#define WS_HANGUP_S     15
/* Legacy peers (the original server never answers a ping): no WebSocket ping at all;
 * TCP keep-alive and TCP_USER_TIMEOUT find a dead peer instead. */
#define WS_TCP_KEEPIDLE_S  10
#define WS_TCP_KEEPINTVL_S 5
#define WS_TCP_KEEPCNT     3
#define WS_TCP_USER_TIMEOUT_MS 30000

enum { SYNC_NONE, SYNC_WAIT, SYNC_OK };      /* per stream, per connection */
enum { MODE_UNKNOWN, MODE_LEGACY, MODE_RESUME };
/* Closing handshake that confirms delivery to a legacy server (see ws_stream_drain). */
enum { FIN_NONE, FIN_REQ, FIN_SENT, FIN_OK };
/* lws 4.1 hides its close opcode (value 4 of enum lws_write_protocol, part of its ABI)
 * behind lws_close_reason(), which hangs up at once; we need to wait for the answer. */
#define WSL_WRITE_CLOSE_FRAME ((enum lws_write_protocol)4)

struct ws_link;

struct ws_stream {
    struct ws_link *link;
    struct ws_stream *next;
    char name[256];
    size_t name_len;
    unsigned char *ring;
    uint64_t cap;
    uint64_t head, tail, cur;
    int sync;
    int have_base;          /* got the first stat reply */
    int64_t base;           /* file offset of stream offset 0 (resumable) */
    uint64_t acked_file;    /* largest file size the server confirmed */
    int loss_pending;       /* bytes [loss_at, tail) are gone: tell the server */
    uint64_t loss_at;
    int ever_connected;
    int aborted;
    int fatal;              /* the server refused this stream for good (negative errno) */
    /* stats */
    uint64_t sent_hi, sent, acked, lost, lost_unlogged;
    uint64_t conn_acked;    /* legacy: bytes handed to the current socket */
    int finishing;          /* ws_stream_finish() called, nothing written since */
    uint64_t unconfirmed;   /* legacy: finished while other streams use the link: bytes on
                               the current socket that only its clean close confirms */
    uint32_t reconnects;
    int error;
    int64_t loss_logged_ms;
};

/* The data message being written: framed and masked out of the ring in one pass
 * (ws_frame.h), then handed to lws whole, so that eviction or a closing stream cannot cut
 * a message in half. Active only inside one writable callback, or after a failed write
 * (on_lost then accounts for it). */
struct ws_msg {
    int active;
    struct ws_stream *owner;   /* NULL once its stream closed (under mu) */
    uint64_t start, end;       /* stream offsets of its data */
    unsigned char *buf;        /* both frames: headers, masked name NUL data */
    size_t len;
};

/* Unconfirmed bytes of a closed stream (ws_link.h). refs: the link's list, the caller. */
struct ws_fate {
    pthread_mutex_t mu;
    int refs;
    struct ws_fate_stats st;
    char name[256];
    struct ws_fate *next;      /* the link's list, under the link's mu */
};

struct ws_link {
    /* immutable after creation */
    int tls, port;
    uint32_t stalls;           /* times the watchdog found no attempt and no retry (a bug) */
    char host[256];            /* as in the target (may be "[::1]") */
    char addr[256];            /* for connect(): no brackets */
    char hosthdr[300];         /* Host header */
    char path[1024];
    int reconnect_max_ms;
    int insecure;
    char ca_file[4097];
    int has_pin;
    unsigned char pin[32];
    char tls_err[300];         /* why the last certificate check failed (service thread) */
    char last_failure[200];    /* mu: why the last attempt failed or the connection was
                                  lost; "" while connected */
    struct lws_context *ctx;
    pthread_t thread;
    struct ws_link *next;      /* registry list, under reg_mu */
    int refs;                  /* under reg_mu */

    pthread_mutex_t mu;
    pthread_cond_t cond;
    /* under mu */
    struct ws_stream *streams;
    struct ws_stream *rr;      /* stream that sent the last data message */
    struct ws_fate *fates;     /* closed streams' unconfirmed bytes (legacy) */
    int stop;
    int connected;
    int fin;                   /* FIN_*: legacy delivery confirmation by a close handshake */
    int idle_closed;           /* closed after FIN_OK: reconnect only when data comes */
    int mode;
    int ever_connected;

    /* service thread only */
    int done;                  /* stop finished: leave the service loop */
    int stop_seen;
    int hs_resume;             /* the handshake answered pirec.resume.1 */
    lws_sorted_usec_list_t sul_retry, sul_stop, sul_watchdog;
    lws_retry_bo_t idle;       /* keep-alive policy of the current attempt (lws keeps a pointer) */
    struct lws *att;           /* the current attempt / connection; NULL when none */
    int in_connect;            /* inside lws_client_connect_via_info() */
    int att_failed;            /* ... and it already reported a failure */
    int retry_pending;         /* sul_retry is scheduled */
    int64_t att_started_ms;
    int64_t est_ms;            /* when the current connection was established */
    int refused;               /* the peer closed it with a code other than 1000/1001 */
    unsigned tries;            /* attempts since the last healthy connection: the backoff */
    int outage_logged;
    struct ws_msg msg;
    struct ws_keys keys;       /* mask keys */
    unsigned char *frag;       /* a framed control message, or LWS_PRE + a close frame */
    char *rx;
    size_t rx_len;
    int rx_text, rx_skip;
};


const char *wsl_scheme(const struct ws_link *l);
void wsl_log_init(void);
/* under mu */
int wsl_stream_done(const struct ws_stream *s);
void wsl_log_loss(struct ws_stream *s, const char *when, int force);
struct ws_stream *wsl_find_stream(struct ws_link *l, const char *name);
struct ws_fate *wsl_fate_new(struct ws_link *l, const struct ws_stream *s, int caller_ref);
void wsl_legacy_confirmed(struct ws_link *l);
void wsl_legacy_unconfirmed_lost(struct ws_link *l, const char *why);
int wsl_stream_wants_control(const struct ws_link *l, const struct ws_stream *s);
int wsl_stream_wants_data(const struct ws_link *l, const struct ws_stream *s);
int wsl_link_has_work(const struct ws_link *l);
int wsl_link_has_data(const struct ws_link *l);
struct ws_stream *wsl_next_data_stream(struct ws_link *l);
void wsl_resync(struct ws_link *l, struct ws_stream *s, uint64_t size);
/* service thread */
size_t wsl_build_control(struct ws_link *l, json_t *j);
void wsl_handle_control(struct ws_link *l, const char *txt, size_t len);
int wsl_on_writable(struct ws_link *l, struct lws *wsi);
void *wsl_link_thread(void *arg);
extern const struct lws_protocols wsl_link_protocols[];

#endif
