#include "common/log.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static _Atomic int max_level = -1; /* -1: not read from the environment yet */

/* The sink and its argument change together; readers take a consistent pair. */
struct sink { plog_sink_func fn; void *arg; };
static _Atomic(struct sink *) current_sink;
static struct sink sink_slots[2];
static atomic_int sink_slot;

static const char *level_name(int level)
{
    switch (level) {
    case PLOG_ERR: return "error";
    case PLOG_WARN: return "warning";
    case PLOG_INFO: return "info";
    default: return "debug";
    }
}

int plog_get_level(void)
{
    int l = atomic_load(&max_level);
    if (l < 0) {
        const char *d = getenv("PIREC_DEBUG");
        l = (d && *d && strcmp(d, "0") != 0) ? PLOG_DEBUG : PLOG_INFO;
        atomic_store(&max_level, l);
    }
    return l;
}

void plog_set_level(int level) { atomic_store(&max_level, level); }

void plog_set_sink(plog_sink_func fn, void *arg)
{
    if (!fn) {
        atomic_store(&current_sink, NULL);
        return;
    }
    int slot = atomic_fetch_add(&sink_slot, 1) & 1;
    sink_slots[slot].fn = fn;
    sink_slots[slot].arg = arg;
    atomic_store(&current_sink, &sink_slots[slot]);
}

void vplog(int level, const char *component, const char *fmt, va_list ap)
{
    if (level > plog_get_level())
        return;
    char msg[1024];
    int n = vsnprintf(msg, sizeof msg, fmt, ap);
    if (n < 0)
        return;
    struct sink *s = atomic_load(&current_sink);
    if (s && s->fn) {
        s->fn(level, msg, s->arg);
        return;
    }
    char line[1200];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    localtime_r(&ts.tv_sec, &tm);
    char when[40];
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
    int len = snprintf(line, sizeof line, "%s.%03ld pirec %s %s: %s\n", when,
                       ts.tv_nsec / 1000000, component ? component : "-", level_name(level), msg);
    if (len < 0)
        return;
    if ((size_t)len >= sizeof line) {
        len = sizeof line - 1;
        line[len - 1] = '\n';
    }
    ssize_t w = write(STDERR_FILENO, line, (size_t)len);
    (void)w;
}

void plog(int level, const char *component, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vplog(level, component, fmt, ap);
    va_end(ap);
}
