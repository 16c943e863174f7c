/* conn_guard: connection admission, header deadlines, stream budget. See conn_guard.h. */
#include "server/conn_guard.h"

#include "common/log.h"
#include "common/timeutil.h"
#include "server/api.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define REAP_EVERY_MS 200
#define LOG_EVERY_S 60

enum conn_state { CONN_HEADER, CONN_ACTIVE, CONN_IDLE, CONN_REAPED };

struct client {
    struct client *next;
    char addr[INET6_ADDRSTRLEN];
    unsigned conns, streams;
};

struct guard_conn {
    struct guard_conn *next, *prev;
    int fd;
    enum conn_state state;
    int64_t deadline_ms;       /* CLOCK_MONOTONIC; HEADER and IDLE only */
    int has_stream;
    int hung_up;               /* a stream's client left: its socket is shut down */
    struct client *client;
};

struct conn_guard {
    struct conn_limits lim;
    pthread_mutex_t lock;
    pthread_cond_t wake;       /* CLOCK_MONOTONIC; stop */
    struct guard_conn *conns;
    struct client *clients;
    unsigned n_conns, n_streams;
    int stop;
    pthread_t reaper;
    int reaper_started;
    /* refusals since the last log line */
    unsigned long full, per_client, streams_refused, timed_out, bad_lines;
    int64_t last_log_ms;
    char busiest[INET6_ADDRSTRLEN];
    struct pollfd *pfd;        /* max_streams entries, the reaper's */
    struct guard_conn **pconn;
    char resp_400[512], resp_408[512], resp_full[512], resp_client[512];
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void address_text(const struct sockaddr *sa, socklen_t len, char *out, size_t n)
{
    snprintf(out, n, "?");
    if (sa->sa_family == AF_INET && len >= (socklen_t)sizeof(struct sockaddr_in)) {
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, out, (socklen_t)n);
    } else if (sa->sa_family == AF_INET6 && len >= (socklen_t)sizeof(struct sockaddr_in6)) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
        if (IN6_IS_ADDR_V4MAPPED(a))   /* one client, one key, whichever stack it came by */
            inet_ntop(AF_INET, &a->s6_addr[12], out, (socklen_t)n);
        else
            inet_ntop(AF_INET6, a, out, (socklen_t)n);
    }
}

/* Under the lock. */
static void unlink_conn(struct conn_guard *g, struct guard_conn *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else
        g->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    g->n_conns--;
    if (c->has_stream) {
        g->n_streams--;
        c->client->streams--;
    }
    struct client *cl = c->client;
    if (--cl->conns == 0) {
        struct client **p = &g->clients;
        while (*p != cl)
            p = &(*p)->next;
        *p = cl->next;
        free(cl);
    }
    free(c);
}

/* Under the lock: a summary of what was refused, at most once a minute. */
static void maybe_log(struct conn_guard *g, int64_t now)
{
    if (!(g->full || g->per_client || g->streams_refused || g->timed_out || g->bad_lines))
        return;
    if (g->last_log_ms && now - g->last_log_ms < LOG_EVERY_S * 1000)
        return;
    log_warn("http", "in the last minute: refused %lu connection(s) with 503 (server full "
             "%lu, too many from one address %lu, event streams %lu), answered %lu slow "
             "request(s) with 408 and %lu garbage request line(s) with 400; last address "
             "refused: %s", g->full + g->per_client + g->streams_refused, g->full,
             g->per_client, g->streams_refused, g->timed_out, g->bad_lines,
             g->busiest[0] ? g->busiest : "-");
    g->full = g->per_client = g->streams_refused = g->timed_out = g->bad_lines = 0;
    g->last_log_ms = now;
}

/* A whole HTTP/1.1 answer written straight to a socket that libmicrohttpd does not serve
 * (refused) or has not answered (timed out): the API's JSON error for that refusal. */
static void raw_response(char *out, size_t n, enum api_refusal why, const char *extra)
{
    struct api_reply a;
    api_refuse(&a, why);
    static const char *reason[] = {[400] = "Bad Request", [408] = "Request Timeout",
                                   [503] = "Service Unavailable"};
    unsigned st = api_refusal_status(why);
    snprintf(out, n, "HTTP/1.1 %u %s\r\nConnection: close\r\n%sContent-Type: "
             "application/json\r\nCache-Control: no-store\r\nContent-Length: %zu\r\n\r\n%s",
             st, st < 504 && reason[st] ? reason[st] : "Error", extra,
             a.body ? strlen(a.body) : 0, a.body ? a.body : "");
    api_reply_free(&a);
}

/* Lock held: shuts down the sockets of streams whose client hung up. */
static void watch_streams(struct conn_guard *g)
{
    nfds_t n = 0;
    for (struct guard_conn *c = g->conns; c && n < g->lim.max_streams; c = c->next)
        if (c->has_stream && !c->hung_up) {
            g->pfd[n] = (struct pollfd){.fd = c->fd, .events = POLLRDHUP};
            g->pconn[n++] = c;
        }
    if (n == 0 || poll(g->pfd, n, 0) <= 0)
        return;
    for (nfds_t i = 0; i < n; i++)
        if (g->pfd[i].revents & (POLLRDHUP | POLLHUP | POLLERR)) {
            g->pconn[i]->hung_up = 1;
            shutdown(g->pfd[i].fd, SHUT_RDWR);
        }
}

static void *reaper_main(void *arg)
{
    struct conn_guard *g = arg;
    pthread_mutex_lock(&g->lock);
    while (!g->stop) {
        int64_t now = now_ms();
        for (struct guard_conn *c = g->conns; c; c = c->next) {
            if ((c->state != CONN_HEADER && c->state != CONN_IDLE) || now < c->deadline_ms)
                continue;
            /* The fd stays open while c is listed: libmicrohttpd tells guard_closed (which
             * waits for this lock) before it closes a socket. */
            if (c->state == CONN_HEADER) {
                (void)!send(c->fd, g->resp_408, strlen(g->resp_408), MSG_DONTWAIT | MSG_NOSIGNAL);
                g->timed_out++;
            }
            c->state = CONN_REAPED;
            shutdown(c->fd, SHUT_RDWR);
        }
        watch_streams(g);
        maybe_log(g, now);
        struct timespec ts;
        deadline_after_ms(&ts, REAP_EVERY_MS);
        pthread_cond_timedwait(&g->wake, &g->lock, &ts);
    }
    pthread_mutex_unlock(&g->lock);
    return NULL;
}

int guard_create(struct conn_guard **out, const struct conn_limits *lim)
{
    struct conn_guard *g = calloc(1, sizeof(*g));
    if (!g)
        return -ENOMEM;
    g->lim = *lim;
    if (!g->lim.max_connections)
        g->lim.max_connections = 256;
    if (!g->lim.max_per_client)
        g->lim.max_per_client = 32;
    if (!g->lim.max_streams)
        g->lim.max_streams = 64;
    if (!g->lim.max_streams_per_client)
        g->lim.max_streams_per_client = 8;
    if (!g->lim.header_timeout_ms)
        g->lim.header_timeout_ms = 10000;
    g->pfd = calloc(g->lim.max_streams, sizeof(*g->pfd));
    g->pconn = calloc(g->lim.max_streams, sizeof(*g->pconn));
    if (!g->pfd || !g->pconn) {
        free(g->pfd);
        free(g->pconn);
        free(g);
        return -ENOMEM;
    }
    raw_response(g->resp_400, sizeof(g->resp_400), API_BAD_REQUEST_LINE, "");
    raw_response(g->resp_408, sizeof(g->resp_408), API_HEADER_TIMEOUT, "");
    raw_response(g->resp_full, sizeof(g->resp_full), API_SERVER_FULL, "Retry-After: 2\r\n");
    raw_response(g->resp_client, sizeof(g->resp_client), API_CLIENT_FULL, "Retry-After: 2\r\n");
    pthread_mutex_init(&g->lock, NULL);
    cond_init_monotonic(&g->wake);
    int rc = pthread_create(&g->reaper, NULL, reaper_main, g);
    if (rc) {
        pthread_cond_destroy(&g->wake);
        pthread_mutex_destroy(&g->lock);
        free(g->pfd);
        free(g->pconn);
        free(g);
        return -rc;
    }
    pthread_setname_np(g->reaper, "http-reaper");
    g->reaper_started = 1;
    *out = g;
    return 0;
}

void guard_destroy(struct conn_guard *g)
{
    if (!g)
        return;
    pthread_mutex_lock(&g->lock);
    g->stop = 1;
    pthread_cond_broadcast(&g->wake);
    pthread_mutex_unlock(&g->lock);
    if (g->reaper_started)
        pthread_join(g->reaper, NULL);
    g->last_log_ms = 0;
    maybe_log(g, now_ms());
    while (g->conns)   /* only if the HTTP server could not say goodbye to each */
        unlink_conn(g, g->conns);
    pthread_cond_destroy(&g->wake);
    pthread_mutex_destroy(&g->lock);
    free(g->pfd);
    free(g->pconn);
    free(g);
}

int guard_admit(struct conn_guard *g, int fd, const struct sockaddr *addr, socklen_t len,
                struct guard_conn **out)
{
    char text[INET6_ADDRSTRLEN];
    address_text(addr, len, text, sizeof(text));
    pthread_mutex_lock(&g->lock);
    /* A socket libmicrohttpd closed without telling (it refused it late): forget it. */
    for (struct guard_conn *c = g->conns; c; c = c->next)
        if (c->fd == fd) {
            unlink_conn(g, c);
            break;
        }
    struct client *cl = g->clients;
    while (cl && strcmp(cl->addr, text) != 0)
        cl = cl->next;
    int rc = 0;
    if (g->n_conns >= g->lim.max_connections) {
        g->full++;
        rc = -EMFILE;
    } else if (cl && cl->conns >= g->lim.max_per_client) {
        g->per_client++;
        rc = -EUSERS;
    }
    if (rc) {
        snprintf(g->busiest, sizeof(g->busiest), "%s", text);
        pthread_mutex_unlock(&g->lock);
        return rc;
    }
    struct guard_conn *c = calloc(1, sizeof(*c));
    if (c && !cl) {
        cl = calloc(1, sizeof(*cl));
        if (cl) {
            snprintf(cl->addr, sizeof(cl->addr), "%s", text);
            cl->next = g->clients;
            g->clients = cl;
        }
    }
    if (!c || !cl) {
        free(c);
        pthread_mutex_unlock(&g->lock);
        return -EMFILE;
    }
    c->fd = fd;
    c->client = cl;
    cl->conns++;
    c->state = CONN_HEADER;
    c->deadline_ms = now_ms() + g->lim.header_timeout_ms;
    c->next = g->conns;
    if (g->conns)
        g->conns->prev = c;
    g->conns = c;
    g->n_conns++;
    pthread_mutex_unlock(&g->lock);
    *out = c;
    return 0;
}

struct guard_conn *guard_find(struct conn_guard *g, int fd)
{
    pthread_mutex_lock(&g->lock);
    struct guard_conn *c = g->conns;
    while (c && c->fd != fd)
        c = c->next;
    pthread_mutex_unlock(&g->lock);
    return c;
}

void guard_closed(struct conn_guard *g, struct guard_conn *c)
{
    if (!c)
        return;
    pthread_mutex_lock(&g->lock);

    unlink_conn(g, c);
    pthread_mutex_unlock(&g->lock);
}

int guard_request_began(struct conn_guard *g, struct guard_conn *c)
{
    if (!c)
        return 0;
    pthread_mutex_lock(&g->lock);
    int rc = c->state == CONN_REAPED ? -ETIMEDOUT : 0;
    if (rc == 0)
        c->state = CONN_ACTIVE;
    pthread_mutex_unlock(&g->lock);
    return rc;
}

void guard_request_ended(struct conn_guard *g, struct guard_conn *c)
{
    if (!c)
        return;
    pthread_mutex_lock(&g->lock);
    if (c->state == CONN_ACTIVE) {
        c->state = CONN_IDLE;
        c->deadline_ms = now_ms() + g->lim.header_timeout_ms;
    }
    pthread_mutex_unlock(&g->lock);
}

int guard_stream_open(struct conn_guard *g, struct guard_conn *c)
{
    if (!c)
        return 0;
    pthread_mutex_lock(&g->lock);
    int rc = 0;
    if (c->has_stream)
        rc = 0;
    else if (g->n_streams >= g->lim.max_streams)
        rc = -EMFILE;
    else if (c->client->streams >= g->lim.max_streams_per_client)
        rc = -EUSERS;
    if (rc == 0 && !c->has_stream) {
        c->has_stream = 1;
        c->client->streams++;
        g->n_streams++;
    } else if (rc) {
        g->streams_refused++;
        snprintf(g->busiest, sizeof(g->busiest), "%s", c->client->addr);
    }
    pthread_mutex_unlock(&g->lock);
    return rc;
}

void guard_stream_close(struct conn_guard *g, struct guard_conn *c)
{
    if (!c)
        return;
    pthread_mutex_lock(&g->lock);
    if (c->has_stream) {
        c->has_stream = 0;
        c->client->streams--;
        g->n_streams--;
    }
    pthread_mutex_unlock(&g->lock);
}

const char *guard_refusal_response(struct conn_guard *g, int reason)
{
    if (reason == -EBADMSG) {
        pthread_mutex_lock(&g->lock);
        g->bad_lines++;
        pthread_mutex_unlock(&g->lock);
        return g->resp_400;
    }
    return reason == -EUSERS ? g->resp_client : g->resp_full;
}

const char *guard_conn_address(const struct guard_conn *c)
{
    return c ? c->client->addr : "?";
}
