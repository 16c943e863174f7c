/* listener: bind, listen, accept on a thread. See listener.h. */
#include "server/listener.h"

#include "common/log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <sys/epoll.h>
#include <time.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct listener {
    int fd;
    int wake[2];               /* a byte here stops the accept thread */
    uint16_t port;
    char addr[INET6_ADDRSTRLEN];
    listener_accept_func on_accept;
    listener_line_func on_line;
    void *arg;
    int ep;                    /* epoll: listening socket, wake pipe, held sockets */
    int *held;                 /* fds held for their first line (unordered) */
    size_t n_held, cap_held;
    time_t last_emfile_log;    /* CLOCK_MONOTONIC seconds */
    pthread_t th;
    int started;
};

int listener_open(struct listener **out, const char *host, unsigned port)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *ai = NULL;
    char portstr[8];
    snprintf(portstr, sizeof(portstr), "%u", port);
    int gai = getaddrinfo(host, portstr, &hints, &ai);
    if (gai) {
        log_err("http", "cannot resolve the listen address '%s': %s", host, gai_strerror(gai));
        return -EINVAL;
    }
    struct listener *l = calloc(1, sizeof(*l));
    if (!l) {
        freeaddrinfo(ai);
        return -ENOMEM;
    }
    l->wake[0] = l->wake[1] = -1;
    l->ep = -1;
    int v6 = ai->ai_family == AF_INET6;
    const char *shown = v6 ? "[%s]:%u" : "%s:%u";
    int rc = 0;
    l->fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (l->fd < 0) {
        rc = -errno;
    } else {
        int one = 1, zero = 0;
        setsockopt(l->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (v6) {   /* "::" also takes IPv4 clients; a specific v6 address only its own */
            struct in6_addr any = IN6ADDR_ANY_INIT;
            int only = memcmp(&((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr, &any,
                              sizeof(any)) != 0;
            setsockopt(l->fd, IPPROTO_IPV6, IPV6_V6ONLY, only ? &one : &zero, sizeof(int));
        }
        if (bind(l->fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(l->fd, 256) < 0)
            rc = -errno;
    }
    if (v6)
        inet_ntop(AF_INET6, &((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr, l->addr,
                  sizeof(l->addr));
    else
        inet_ntop(AF_INET, &((struct sockaddr_in *)ai->ai_addr)->sin_addr, l->addr,
                  sizeof(l->addr));
    freeaddrinfo(ai);
    if (rc == 0 && pipe2(l->wake, O_CLOEXEC | O_NONBLOCK) < 0)
        rc = -errno;
    if (rc < 0) {
        char where[INET6_ADDRSTRLEN + 16];
        snprintf(where, sizeof(where), shown, l->addr, port);
        log_err("http", "cannot listen on %s: %s%s", where, strerror(-rc),
                rc == -EADDRINUSE ? " (another program, or another pirec, uses that port: "
                "stop it or choose another port with --listen)" : "");
        listener_close(l);
        return rc;
    }
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    if (getsockname(l->fd, (struct sockaddr *)&ss, &sl) == 0)
        l->port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                                 : ((struct sockaddr_in *)&ss)->sin_port);
    *out = l;
    return 0;
}

static void hold(struct listener *l, int fd)
{
    if (l->n_held == l->cap_held) {
        size_t nc = l->cap_held ? l->cap_held * 2 : 64;
        int *p = realloc(l->held, nc * sizeof(*p));
        if (!p) {
            l->on_line(fd, NULL, 0, 0, l->arg);
            return;
        }
        l->held = p;
        l->cap_held = nc;
    }
    /* Edge-triggered: peeking leaves the bytes in the socket, so a level-triggered
     * epoll would report them again and again. */
    struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP | EPOLLET, .data.fd = fd};
    if (epoll_ctl(l->ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
        l->on_line(fd, NULL, 0, 0, l->arg);
        return;
    }
    l->held[l->n_held++] = fd;
}

static void release(struct listener *l, int fd)
{
    epoll_ctl(l->ep, EPOLL_CTL_DEL, fd, NULL);
    for (size_t i = 0; i < l->n_held; i++)
        if (l->held[i] == fd) {
            l->held[i] = l->held[--l->n_held];
            break;
        }
}

/* New bytes on a held socket: is the first line in? */
static void examine(struct listener *l, int fd, char *buf)
{
    ssize_t n = recv(fd, buf, LISTENER_LINE_MAX, MSG_PEEK | MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return;
    if (n <= 0) {                  /* EOF or error: the client is gone */
        release(l, fd);
        l->on_line(fd, NULL, 0, 0, l->arg);
        return;
    }
    size_t skip = 0;               /* empty lines before a request line are allowed */
    while (skip < (size_t)n && (buf[skip] == '\r' || buf[skip] == '\n'))
        skip++;
    char *nl = memchr(buf + skip, '\n', (size_t)n - skip);
    if (!nl && n < LISTENER_LINE_MAX)
        return;                    /* not yet */
    release(l, fd);
    if (nl)
        l->on_line(fd, buf + skip, (size_t)(nl - (buf + skip)) + 1, 0, l->arg);
    else
        l->on_line(fd, NULL, 0, 1, l->arg);
}

static void accept_all(struct listener *l)
{
    for (;;) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);
        int fd = accept4(l->fd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE) {
                /* Out of descriptors: back off instead of spinning on the backlog, and
                 * say so once a minute, not ten times a second. */
                struct timespec now;
                clock_gettime(CLOCK_MONOTONIC, &now);
                if (!l->last_emfile_log || now.tv_sec - l->last_emfile_log >= 60) {
                    log_warn("http", "accept: %s (raise the open-files limit, or lower "
                             "max_connections)", strerror(errno));
                    l->last_emfile_log = now.tv_sec;
                }
                poll(NULL, 0, 100);
            }
            return;
        }
        if (l->on_accept(fd, (struct sockaddr *)&ss, sl, l->arg) == 0)
            hold(l, fd);
    }
}

static void *accept_main(void *arg)
{
    struct listener *l = arg;
    char *buf = malloc(LISTENER_LINE_MAX);
    for (int run = buf != NULL; run;) {
        struct epoll_event ev[64];
        int n = epoll_wait(l->ep, ev, 64, -1);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            log_err("http", "epoll on the listening socket: %s", strerror(errno));
            break;
        }
        for (int i = 0; i < n; i++) {
            int fd = ev[i].data.fd;
            if (fd == l->wake[0])
                run = 0;
            else if (fd == l->fd)
                accept_all(l);
            else
                examine(l, fd, buf);
        }
    }
    free(buf);
    return NULL;
}

int listener_start(struct listener *l, listener_accept_func on_accept,
                   listener_line_func on_line, void *arg)
{
    l->on_accept = on_accept;
    l->on_line = on_line;
    l->arg = arg;
    l->ep = epoll_create1(EPOLL_CLOEXEC);
    if (l->ep < 0)
        return -errno;
    struct epoll_event a = {.events = EPOLLIN, .data.fd = l->fd};
    struct epoll_event w = {.events = EPOLLIN, .data.fd = l->wake[0]};
    if (epoll_ctl(l->ep, EPOLL_CTL_ADD, l->fd, &a) < 0 ||
        epoll_ctl(l->ep, EPOLL_CTL_ADD, l->wake[0], &w) < 0)
        return -errno;
    int rc = pthread_create(&l->th, NULL, accept_main, l);
    if (rc)
        return -rc;
    pthread_setname_np(l->th, "http-accept");
    l->started = 1;
    return 0;
}

uint16_t listener_port(const struct listener *l)
{
    return l->port;
}

const char *listener_address(const struct listener *l)
{
    return l->addr;
}

void listener_close(struct listener *l)
{
    if (!l)
        return;
    if (l->started) {
        (void)!write(l->wake[1], "x", 1);
        pthread_join(l->th, NULL);
    }
    while (l->n_held) {
        int fd = l->held[--l->n_held];
        l->on_line(fd, NULL, 0, 0, l->arg);
    }
    free(l->held);
    if (l->ep >= 0)
        close(l->ep);
    if (l->fd >= 0)
        close(l->fd);
    if (l->wake[0] >= 0)
        close(l->wake[0]);
    if (l->wake[1] >= 0)
        close(l->wake[1]);
    free(l);
}
