/*
 * events: a bounded ring of formatted-later events under one mutex, and subscribers that
 * are nothing but a cursor (the next id they want) into it. Event ids are consecutive, so
 * the slot of id N is (N - 1) % capacity and "fell behind" is simply cursor < oldest id.
 */
#include "server/events.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EVENT_TYPE_MAX 32

struct event {
    uint64_t id;
    char type[EVENT_TYPE_MAX];
    char *data;
    size_t data_len;
    int is_volatile;
};

struct event_sub {
    struct event_hub *hub;
    struct event_sub *next;
    uint64_t cursor;          /* id of the next event to deliver */
    uint64_t replay_until;    /* ids up to this are history: volatile ones are skipped */
    void (*wake)(void *arg);
    void *arg;
};

struct event_hub {
    pthread_mutex_t lock;
    struct event *ring;
    size_t capacity;
    uint64_t last_id;         /* 0 = nothing published yet */
    int shut;
    struct event_sub *subs;
};

int event_hub_create(struct event_hub **out, size_t capacity)
{
    if (!out)
        return -EINVAL;
    if (capacity == 0)
        capacity = 4096;
    struct event_hub *h = calloc(1, sizeof(*h));
    if (!h)
        return -ENOMEM;
    h->ring = calloc(capacity, sizeof(*h->ring));
    if (!h->ring) {
        free(h);
        return -ENOMEM;
    }
    h->capacity = capacity;
    pthread_mutex_init(&h->lock, NULL);
    *out = h;
    return 0;
}

/* Oldest id still in the ring (last_id + 1 when the ring is empty). */
static uint64_t oldest_id(const struct event_hub *h)
{
    if (h->last_id < h->capacity)
        return 1;
    return h->last_id - h->capacity + 1;
}

static struct event *slot(struct event_hub *h, uint64_t id)
{
    return &h->ring[(id - 1) % h->capacity];
}

static void wake_all_locked(struct event_hub *h)
{
    /* Under the lock so that a subscriber cannot be freed meanwhile; the contract says
     * wake only signals. */
    for (struct event_sub *s = h->subs; s; s = s->next)
        if (s->wake)
            s->wake(s->arg);
}

static int valid_type(const char *type)
{
    size_t n = type ? strlen(type) : 0;
    if (n == 0 || n >= EVENT_TYPE_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (type[i] == '\n' || type[i] == '\r' || type[i] == ':')
            return 0;
    return 1;
}

static int64_t publish_locked_or_fail(struct event_hub *h, const char *type, const char *json_data,
                                      int is_volatile, int closing)
{
    if (!valid_type(type) || !json_data)
        return -EINVAL;
    size_t len = strlen(json_data);
    if (len > EVENT_DATA_MAX)
        return -EMSGSIZE;
    /* One data: line per event; a newline would end the SSE field early. */
    if (memchr(json_data, '\n', len) || memchr(json_data, '\r', len))
        return -EINVAL;
    char *copy = malloc(len + 1);
    if (!copy)
        return -ENOMEM;
    memcpy(copy, json_data, len + 1);

    pthread_mutex_lock(&h->lock);
    if (h->shut) {
        pthread_mutex_unlock(&h->lock);
        free(copy);
        return -EPIPE;
    }
    uint64_t id = ++h->last_id;
    struct event *e = slot(h, id);
    char *old = e->data;
    e->id = id;
    snprintf(e->type, sizeof(e->type), "%s", type);
    e->data = copy;
    e->data_len = len;
    e->is_volatile = is_volatile;
    if (closing)
        h->shut = 1;
    wake_all_locked(h);
    pthread_mutex_unlock(&h->lock);
    free(old);
    return (int64_t)id;
}

int64_t event_hub_publish(struct event_hub *h, const char *type, const char *json_data,
                          int is_volatile)
{
    if (!h)
        return -EINVAL;
    return publish_locked_or_fail(h, type, json_data, is_volatile, 0);
}

void event_hub_shutdown(struct event_hub *h)
{
    if (h)
        (void)publish_locked_or_fail(h, "close", "{}", 0, 1);
}

void event_hub_destroy(struct event_hub *h)
{
    if (!h)
        return;
    for (size_t i = 0; i < h->capacity; i++)
        free(h->ring[i].data);
    free(h->ring);
    pthread_mutex_destroy(&h->lock);
    free(h);
}

uint64_t event_hub_last_id(struct event_hub *h)
{
    pthread_mutex_lock(&h->lock);
    uint64_t id = h->last_id;
    pthread_mutex_unlock(&h->lock);
    return id;
}

int event_hub_subscribe(struct event_hub *h, uint64_t last_event_id,
                        void (*wake)(void *arg), void *arg, struct event_sub **out,
                        int *replay_gap)
{
    if (!h || !out)
        return -EINVAL;
    struct event_sub *s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    s->hub = h;
    s->wake = wake;
    s->arg = arg;
    int gap = 0;
    pthread_mutex_lock(&h->lock);
    uint64_t oldest = oldest_id(h);
    if (last_event_id == 0) {
        s->cursor = h->last_id + 1;
    } else if (last_event_id > h->last_id) {
        /* An id from before a server restart: we cannot know what was missed. */
        gap = 1;
        s->cursor = h->last_id + 1;
    } else if (last_event_id + 1 < oldest) {
        gap = 1;
        s->cursor = oldest;
    } else {
        s->cursor = last_event_id + 1;
    }
    s->replay_until = h->last_id;
    s->next = h->subs;
    h->subs = s;
    pthread_mutex_unlock(&h->lock);
    if (replay_gap)
        *replay_gap = gap;
    *out = s;
    return 0;
}

static int format_event(const struct event *e, char *buf, size_t len)
{
    int n = snprintf(buf, len, "id: %" PRIu64 "\nevent: %s\ndata: ", e->id, e->type);
    if (n < 0 || (size_t)n + e->data_len + 2 > len)
        return -1;
    memcpy(buf + n, e->data, e->data_len);
    memcpy(buf + n + e->data_len, "\n\n", 2);
    return n + (int)e->data_len + 2;
}

ssize_t event_sub_read(struct event_sub *s, char *buf, size_t len)
{
    if (!s || (!buf && len))
        return -EINVAL;
    struct event_hub *h = s->hub;
    size_t used = 0;
    ssize_t ret;
    pthread_mutex_lock(&h->lock);
    if (s->cursor < oldest_id(h)) {
        ret = -EPIPE;
        goto out;
    }
    while (s->cursor <= h->last_id) {
        const struct event *e = slot(h, s->cursor);
        if (e->is_volatile && e->id <= s->replay_until) {
            s->cursor++;
            continue;
        }
        int n = format_event(e, buf + used, len - used);
        if (n < 0) {
            if (used == 0) {
                ret = -EMSGSIZE;   /* the caller's buffer is smaller than one event */
                goto out;
            }
            break;
        }
        used += (size_t)n;
        s->cursor++;
    }
    if (used == 0 && h->shut && s->cursor > h->last_id)
        ret = -EPIPE;
    else
        ret = (ssize_t)used;
out:
    pthread_mutex_unlock(&h->lock);
    return ret;
}

void event_sub_close(struct event_sub *s)
{
    if (!s)
        return;
    struct event_hub *h = s->hub;
    pthread_mutex_lock(&h->lock);
    for (struct event_sub **p = &h->subs; *p; p = &(*p)->next) {
        if (*p == s) {
            *p = s->next;
            break;
        }
    }
    pthread_mutex_unlock(&h->lock);
    free(s);
}
