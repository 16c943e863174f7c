/*
 * ingest listener: ingest_run() — the listening socket, the service threads ("loops",
 * server.h), handing accepted sockets round-robin, ticks, signals and the shutdown.
 */
#include "ingest/server.h"

#include "common/log.h"
#include "ingest/forwarded.h"
#include "record/wsproto.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#define STOP_GRACE_US (2 * 1000000)
#define MAX_EVENTS 256
#define COALESCE_US 2000
#define COALESCE_MIN_CONNS 200

static atomic_int stop_flag;
static struct server *volatile signal_srv;

int64_t ingest_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void wake_all(struct server *srv)
{
    uint64_t one = 1;
    for (int i = 0; i < srv->nloops; i++)
        if (write(srv->loops[i].evfd, &one, sizeof one) < 0) {
            /* full counter: awake anyway */
        }
}

void ingest_request_stop(void)
{
    atomic_store(&stop_flag, 1);
    struct server *srv = signal_srv;
    if (srv)
        wake_all(srv);   /* write(2) only: fine in a signal handler */
}

static void on_signal(int sig)
{
    (void)sig;
    ingest_request_stop();
}

/* Loop 0: accepts what is pending and hands the sockets to the loops in turn. */
static void on_accept(struct server *srv)
{
    for (int k = 0; k < 64; k++) {
        int fd = accept4(srv->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE)
                log_warn("ingest", "cannot accept a connection: %s", strerror(errno));
            return;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        struct loop *lp = &srv->loops[srv->rr++ % (unsigned)srv->nrunning];
        if (lp->idx == 0) {
            if (!conn_new(lp, fd))
                close(fd);
            continue;
        }
        pthread_mutex_lock(&lp->mu);
        int ok = 1;
        if (lp->ninbox == lp->capinbox) {
            size_t cap = lp->capinbox ? lp->capinbox * 2 : 64;
            int *v = realloc(lp->inbox, cap * sizeof *v);
            if (v) {
                lp->inbox = v;
                lp->capinbox = cap;
            } else {
                ok = 0;
            }
        }
        if (ok)
            lp->inbox[lp->ninbox++] = fd;
        pthread_mutex_unlock(&lp->mu);
        if (!ok) {
            close(fd);
            continue;
        }
        uint64_t one64 = 1;
        if (write(lp->evfd, &one64, sizeof one64) < 0) {
            /* full counter: awake anyway */
        }
    }
}

static void on_wake(struct loop *lp)
{
    uint64_t v;
    if (read(lp->evfd, &v, sizeof v) < 0) {
        /* nothing pending */
    }
    pthread_mutex_lock(&lp->mu);
    int *fds = lp->inbox;
    size_t n = lp->ninbox;
    lp->inbox = NULL;
    lp->ninbox = lp->capinbox = 0;
    pthread_mutex_unlock(&lp->mu);
    for (size_t i = 0; i < n; i++)
        if (!conn_new(lp, fds[i]))
            close(fds[i]);
    free(fds);
    if (atomic_exchange(&lp->takeover, 0)) {
        int64_t now = ingest_now_us();
        for (struct conn *c = lp->conns, *next; c; c = next) {
            next = c->next;
            if (atomic_load(&c->taken_over) && c->state == C_OPEN)
                conn_tick(c, now);
        }
    }
}

static void loop_tick(struct loop *lp, int64_t now)
{
    struct server *srv = lp->srv;
    if (lp->last_tick_us && now - lp->last_tick_us > 10 * TICK_US &&
        now - lp->last_stall_log_us > 10000000) {
        lp->last_stall_log_us = now;
        log_warn("ingest", "service thread %d was stalled for %lld ms (CPU starved or a slow "
                 "disk); clients buffered meanwhile", lp->idx,
                 (long long)((now - lp->last_tick_us) / 1000));
    }
    lp->last_tick_us = now;
    for (struct conn *c = lp->conns, *next; c; c = next) {
        next = c->next;
        conn_tick(c, now);
    }
    if (lp->idx == 0) {
        ingest_store_lock(srv->store);
        forwarded_tick(srv->store);
        ingest_store_flush_old(srv->store, now, FLUSH_AGE_US);
        ingest_store_tick(srv->store, now);
        ingest_store_unlock(srv->store);
    }
}

/* Shutdown, once per loop: no new connections; every open one gets 1001. */
static void loop_stop(struct loop *lp, int64_t now)
{
    lp->stop_seen = 1;
    lp->stop_deadline_us = now + STOP_GRACE_US;
    if (lp->idx == 0 && lp->srv->lfd >= 0) {
        epoll_ctl(lp->ep, EPOLL_CTL_DEL, lp->srv->lfd, NULL);
        close(lp->srv->lfd);
        lp->srv->lfd = -1;
    }
    for (struct conn *c = lp->conns, *next; c; c = next) {
        next = c->next;
        if (c->state == C_OPEN)
            conn_fail(c, WSPROTO_CLOSE_GOING_AWAY, "server shutting down");
        else if (c->state == C_HANDSHAKE)
            conn_free(c);
    }
}

static void *loop_main(void *arg)
{
    struct loop *lp = arg;
    struct server *srv = lp->srv;
    struct epoll_event ev[MAX_EVENTS];
    for (;;) {
        int64_t now = ingest_now_us();
        if (!lp->stop_seen && atomic_load(&stop_flag))
            loop_stop(lp, now);
        if (lp->stop_seen && (!lp->conns || now >= lp->stop_deadline_us))
            break;
        if (now >= lp->next_tick_us) {
            loop_tick(lp, now);
            lp->next_tick_us = now + TICK_US;
        }
        int wait_ms = (int)((lp->next_tick_us - now + 999) / 1000);
        int n = epoll_wait(lp->ep, ev, MAX_EVENTS, wait_ms < 0 ? 0 : wait_ms);
        for (int i = 0; i < n; i++) {
            int kind = *(int *)ev[i].data.ptr;
            if (kind == K_LISTEN)
                on_accept(srv);
            else if (kind == K_WAKE)
                on_wake(lp);
            else
                conn_on_event(ev[i].data.ptr, ev[i].events);
        }
        /* Many slow streams (real-time audio: a small message per stream every few tens of
         * ms) wake a loop for each message. With hundreds of connections and little data
         * per round, wait a moment so the next round gathers more: far fewer wake-ups and
         * context switches for the cost of COALESCE_US of latency. Bulk streams (a read of
         * 64 KiB or more) never wait. */
        if (lp->nconns >= COALESCE_MIN_CONNS && n < MAX_EVENTS / 8 &&
            lp->round_bytes < 64 * 1024 && !atomic_load(&stop_flag)) {
            struct timespec ts = {0, COALESCE_US * 1000};
            nanosleep(&ts, NULL);
        }
        lp->round_bytes = 0;
    }
    while (lp->conns)
        conn_free(lp->conns);
    return NULL;
}

/* Many connections need many fds: raise the soft limit to the hard one (capped). */
static unsigned raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        return 1024;
    rlim_t want = rl.rlim_max;
    if (want == RLIM_INFINITY || want > 65536)
        want = 65536;
    if (want > rl.rlim_cur) {
        rl.rlim_cur = want;
        if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
            log_warn("ingest", "cannot raise the open file limit to %llu: %s",
                     (unsigned long long)want, strerror(errno));
    }
    getrlimit(RLIMIT_NOFILE, &rl);
    return (unsigned)rl.rlim_cur;
}

static int open_listener(const struct ingest_config *cfg, int *port, char *err, size_t elen)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    socklen_t sl;
    int any = !cfg->host || !cfg->host[0];
    /* no address at all (":PORT"): [::] with IPv4 mapped, where the host has IPv6 */
    int dual = any && !cfg->v6;
    int fam = cfg->v6 || dual ? AF_INET6 : AF_INET;
    int fd = socket(fam, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0 && dual) {
        dual = 0;
        fam = AF_INET;
        fd = socket(fam, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    }
    if (fd < 0) {
        snprintf(err, elen, "%s", strerror(errno));
        return -errno;
    }
    if (dual) {
        int zero = 0;
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        a->sin6_family = AF_INET6;
        a->sin6_port = htons((uint16_t)cfg->port);
        sl = sizeof *a;
    } else if (cfg->v6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        a->sin6_family = AF_INET6;
        a->sin6_port = htons((uint16_t)cfg->port);
        inet_pton(AF_INET6, cfg->host, &a->sin6_addr);
        sl = sizeof *a;
    } else {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        a->sin_family = AF_INET;
        a->sin_port = htons((uint16_t)cfg->port);
        if (!any)
            inet_pton(AF_INET, cfg->host, &a->sin_addr);
        sl = sizeof *a;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)&ss, sl) < 0 || listen(fd, 1024) < 0) {
        int e = errno;
        snprintf(err, elen, "%s", strerror(e));
        close(fd);
        return -e;
    }
    sl = sizeof ss;
    getsockname(fd, (struct sockaddr *)&ss, &sl);
    *port = ntohs(fam == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                          : ((struct sockaddr_in *)&ss)->sin_port);
    return fd;
}

static int loop_init(struct server *srv, struct loop *lp, int idx)
{
    lp->kind = K_WAKE;
    lp->srv = srv;
    lp->idx = idx;
    pthread_mutex_init(&lp->mu, NULL);
    lp->ep = epoll_create1(EPOLL_CLOEXEC);
    lp->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    lp->rbuf = malloc(READ_BUF);
    if (lp->ep < 0 || lp->evfd < 0 || !lp->rbuf)
        return -ENOMEM;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = lp};
    return epoll_ctl(lp->ep, EPOLL_CTL_ADD, lp->evfd, &ev) < 0 ? -errno : 0;
}

static void loop_fini(struct loop *lp)
{
    if (lp->ep >= 0)
        close(lp->ep);
    if (lp->evfd >= 0)
        close(lp->evfd);
    for (size_t i = 0; i < lp->ninbox; i++)
        close(lp->inbox[i]);
    free(lp->inbox);
    free(lp->rbuf);
    pthread_mutex_destroy(&lp->mu);
}

static int listen_kind = K_LISTEN;

int ingest_run(const struct ingest_config *cfg)
{
    struct server srv;
    memset(&srv, 0, sizeof srv);
    srv.cfg = cfg;
    srv.max_message = cfg->max_message ? cfg->max_message : 16u * 1024 * 1024;
    srv.max_memory = cfg->max_memory ? cfg->max_memory : 64u * 1024 * 1024;
    srv.max_connections = cfg->max_connections > 0 ? cfg->max_connections : 256;
    srv.ping_secs = cfg->ping_secs ? cfg->ping_secs : 30;
    srv.lfd = -1;
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    srv.nloops = cfg->threads > 0 ? cfg->threads : cores > 0 ? (int)cores : 1;

    unsigned fdlimit = raise_fd_limit();
    struct ingest_store_config sc = {
        .dir = cfg->dir,
        .max_open = cfg->max_open_files > 0 ? cfg->max_open_files : (int)(fdlimit / 2),
        .sync_ms = cfg->sync_ms,
        .fault_enospc_after = cfg->fault_enospc_after,
    };
    if ((unsigned)sc.max_open > fdlimit / 2)
        sc.max_open = (int)(fdlimit / 2); /* leave half of the fds for sockets */
    char err[600];
    int rc = ingest_store_open(&srv.store, &sc, err, sizeof err);
    if (rc < 0) {
        log_err("ingest", "%s", err);
        return rc;
    }
    if (forwarded_init(cfg->dir) < 0) {
        forwarded_shutdown();
        ingest_store_close(srv.store);
        return -ENOMEM;
    }
    if (cfg->fault_enospc_after >= 0)
        log_warn("ingest", "fault injection: writes fail with ENOSPC after %lld bytes",
                 (long long)cfg->fault_enospc_after);
    int any = !cfg->host || !cfg->host[0];
    int port = 0;
    srv.lfd = open_listener(cfg, &port, err, sizeof err);
    srv.loops = calloc((size_t)srv.nloops, sizeof *srv.loops);
    for (int i = 0; srv.loops && i < srv.nloops; i++)
        srv.loops[i].ep = srv.loops[i].evfd = -1;
    rc = srv.lfd < 0 ? srv.lfd : srv.loops ? 0 : -ENOMEM;
    if (srv.lfd < 0)
        log_err("ingest", "cannot listen on %s%s%s:%d: %s", cfg->v6 ? "[" : "",
                any ? "*" : cfg->host, cfg->v6 ? "]" : "", cfg->port, err);
    for (int i = 0; rc == 0 && i < srv.nloops; i++)
        rc = loop_init(&srv, &srv.loops[i], i);
    if (rc == 0) {
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &listen_kind};
        if (epoll_ctl(srv.loops[0].ep, EPOLL_CTL_ADD, srv.lfd, &ev) < 0)
            rc = -errno;
    }
    if (rc < 0) {
        if (srv.lfd >= 0) {
            log_err("ingest", "cannot set up the service threads: %s", strerror(-rc));
            close(srv.lfd);
        }
        for (int i = 0; srv.loops && i < srv.nloops; i++)
            loop_fini(&srv.loops[i]);
        free(srv.loops);
        forwarded_shutdown();
        ingest_store_close(srv.store);
        return rc == -EADDRINUSE || srv.lfd < 0 ? -EADDRNOTAVAIL : rc;
    }

    struct sigaction sa, old_int, old_term, old_pipe;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    atomic_store(&stop_flag, 0);
    signal_srv = &srv;
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, &old_pipe);

    int started = 1;
    for (int i = 1; i < srv.nloops; i++) {
        int e = pthread_create(&srv.loops[i].thread, NULL, loop_main, &srv.loops[i]);
        if (e) {
            log_warn("ingest", "cannot start service thread %d: %s; going on with %d", i,
                     strerror(e), started);
            break;
        }
        started++;
    }
    srv.nrunning = started;   /* accept hands sockets only to running loops */
    log_info("ingest", "storing streams in %s (fd limit %u, up to %d files open, %d service "
             "thread%s)", cfg->dir && *cfg->dir ? cfg->dir : ".", fdlimit, sc.max_open,
             srv.nrunning, srv.nrunning == 1 ? "" : "s");
    printf("pirec ingest: listening on %s%s%s:%d\n", cfg->v6 ? "[" : "",
           any ? "0.0.0.0" : cfg->host, cfg->v6 ? "]" : "", port);
    fflush(stdout);

    loop_main(&srv.loops[0]);
    log_info("ingest", "stopping");
    wake_all(&srv);
    for (int i = 1; i < srv.nrunning; i++)
        pthread_join(srv.loops[i].thread, NULL);
    signal_srv = NULL;
    int left = atomic_load(&srv.nconns);
    if (left)
        log_warn("ingest", "%d connections were still open at exit", left);
    for (int i = 0; i < srv.nloops; i++)
        loop_fini(&srv.loops[i]);
    free(srv.loops);
    if (srv.lfd >= 0)
        close(srv.lfd);
    forwarded_shutdown();
    ingest_store_close(srv.store);
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    sigaction(SIGPIPE, &old_pipe, NULL);
    log_info("ingest", "stopped; every file synced and closed");
    return 0;
}
