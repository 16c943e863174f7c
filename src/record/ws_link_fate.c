/*
 * ws_link_fate: bytes of a stream that ended on a shared legacy link, which only the link's
 * clean close can confirm (ws_link.h, ws_stream_finish): counted unconfirmed while the
 * stream is open, followed by a struct ws_fate once it closed, settled here as confirmed
 * (the server answered our close) or lost (the connection dropped, or the link ended
 * without that answer). wsl_* run under the link's mu; ws_fate_* on any thread.
 */
#include "record/ws_link.h"

#include "common/log.h"
#include "record/ws_link_int.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void fate_settle(struct ws_fate *f, int confirmed)
{
    pthread_mutex_lock(&f->mu);
    if (confirmed)
        f->st.confirmed += f->st.unconfirmed;
    else
        f->st.lost += f->st.unconfirmed;
    f->st.unconfirmed = 0;
    pthread_mutex_unlock(&f->mu);
}

void ws_fate_put(struct ws_fate *f)
{
    if (!f)
        return;
    pthread_mutex_lock(&f->mu);
    int last = --f->refs == 0;
    pthread_mutex_unlock(&f->mu);
    if (last) {
        pthread_mutex_destroy(&f->mu);
        free(f);
    }
}

void ws_fate_get(struct ws_fate *f, struct ws_fate_stats *st)
{
    memset(st, 0, sizeof *st);
    if (!f)
        return;
    pthread_mutex_lock(&f->mu);
    *st = f->st;
    pthread_mutex_unlock(&f->mu);
}

/* A closed stream's unconfirmed bytes, put on the link's list; with caller_ref the caller
 * holds a reference too. NULL when out of memory. */
struct ws_fate *wsl_fate_new(struct ws_link *l, const struct ws_stream *s, int caller_ref)
{
    struct ws_fate *f = calloc(1, sizeof *f);
    if (!f)
        return NULL;
    pthread_mutex_init(&f->mu, NULL);
    f->refs = caller_ref ? 2 : 1;
    f->st.unconfirmed = s->unconfirmed;
    snprintf(f->name, sizeof f->name, "%s", s->name);
    f->next = l->fates;
    l->fates = f;
    return f;
}

/* The legacy server answered our close: it read everything this connection carried. */
void wsl_legacy_confirmed(struct ws_link *l)
{
    for (struct ws_stream *s = l->streams; s; s = s->next) {
        s->acked += s->unconfirmed;
        s->unconfirmed = 0;
        s->conn_acked = 0;
    }
    while (l->fates) {
        struct ws_fate *f = l->fates;
        l->fates = f->next;
        fate_settle(f, 1);
        ws_fate_put(f);
    }
}

/* The connection dropped (or the link stops) before that answer: unconfirmed bytes may be
 * gone. Those of open streams count as lost there; closed streams' fates say so. */
void wsl_legacy_unconfirmed_lost(struct ws_link *l, const char *why)
{
    for (struct ws_stream *s = l->streams; s; s = s->next) {
        if (!s->unconfirmed)
            continue;
        s->lost += s->unconfirmed;
        log_warn("record", "%s://%s:%d stream %s: %s before the legacy server confirmed the "
                 "stream's end: its last %llu bytes counted as lost", wsl_scheme(l), l->host,
                 l->port, s->name, why, (unsigned long long)s->unconfirmed);
        s->unconfirmed = 0;
    }
    while (l->fates) {
        struct ws_fate *f = l->fates;
        l->fates = f->next;
        log_warn("record", "%s://%s:%d stream %s (closed): %s before the legacy server "
                 "confirmed the stream's end: its last %llu bytes counted as lost",
                 wsl_scheme(l), l->host, l->port, f->name,
                 why, (unsigned long long)f->st.unconfirmed);
        fate_settle(f, 0);
        ws_fate_put(f);
    }
}
