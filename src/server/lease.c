/*
 * lease: a small list of per-device entries under one mutex. A token is only valid while
 * its jti is the entry's current one, so renew/release/expiry invalidate old tokens
 * without keeping a revocation list. Signing happens under the lock: it is a pure, short
 * computation (one HMAC), not a call out.
 */
#include "server/lease.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

struct lease_entry {
    struct lease_entry *next;
    char device[64];
    int held;
    char client[64];
    char jti[33];
    time_t expires;
    time_t token_exp;         /* the `exp` claim of the current token */
    int kept;                 /* a take runs: no expiry (lease_keep) */
    unsigned long serial;     /* the lease's name, L<serial> */
    time_t seen;              /* last valid token use */
    unsigned streams;         /* event streams bound to this lease (presence) */
    char old_jti[33];         /* the current token of the lease a take-over replaced */
};

struct lease_mgr {
    pthread_mutex_t lock;
    uint8_t key[32];
    unsigned lease_seconds;
    unsigned long serial;     /* the last lease's serial */
    unsigned takeover_after;
    struct lease_entry *list;
};

int lease_mgr_create(struct lease_mgr **out, const uint8_t key[32], unsigned lease_seconds)
{
    if (!out || !key || lease_seconds == 0)
        return -EINVAL;
    struct lease_mgr *m = calloc(1, sizeof(*m));
    if (!m)
        return -ENOMEM;
    memcpy(m->key, key, 32);
    m->lease_seconds = lease_seconds;
    m->takeover_after = 120;
    pthread_mutex_init(&m->lock, NULL);
    *out = m;
    return 0;
}

void lease_mgr_destroy(struct lease_mgr *m)
{
    if (!m)
        return;
    struct lease_entry *e = m->list;
    while (e) {
        struct lease_entry *n = e->next;
        free(e);
        e = n;
    }
    OPENSSL_cleanse(m->key, sizeof(m->key));
    pthread_mutex_destroy(&m->lock);
    free(m);
}

static struct lease_entry *find(struct lease_mgr *m, const char *device, int create)
{
    for (struct lease_entry *e = m->list; e; e = e->next)
        if (strcmp(e->device, device) == 0)
            return e;
    if (!create)
        return NULL;
    struct lease_entry *e = calloc(1, sizeof(*e));
    if (!e)
        return NULL;
    snprintf(e->device, sizeof(e->device), "%s", device);
    e->next = m->list;
    m->list = e;
    return e;
}

static int valid_name(const char *s)
{
    return s && *s && strlen(s) < 64;
}

/* Held and not run out (a kept lease does not run out). */
static int alive(const struct lease_entry *e, time_t now)
{
    return e && e->held && (e->expires > now || e->kept);
}

static void fill_presence(const struct lease_mgr *m, const struct lease_entry *e, time_t now,
                          struct lease_info *info)
{
    info->present = e->streams > 0 || now - e->seen < (time_t)m->takeover_after;
    info->holder_seen = e->streams > 0 ? now : e->seen;
    info->takeover_at = e->streams > 0 ? 0 : e->seen + (time_t)m->takeover_after;
}

static void fill_info(const struct lease_entry *e, time_t now, struct lease_info *info)
{
    if (!info)
        return;
    memset(info, 0, sizeof(*info));
    if (alive(e, now)) {
        info->held = 1;
        snprintf(info->client, sizeof(info->client), "%s", e->client);
        info->expires = e->expires;
        info->kept = e->kept;
        snprintf(info->id, sizeof(info->id), "L%lu", e->serial);
    }
}

/* fill_info plus the holder's presence. */
static void fill_full(const struct lease_mgr *m, const struct lease_entry *e, time_t now,
                      struct lease_info *info)
{
    fill_info(e, now, info);
    if (info && info->held)
        fill_presence(m, e, now, info);
}

/* Gives e a fresh jti and expiry and signs the token for it. */
static int issue_locked(struct lease_mgr *m, struct lease_entry *e, time_t now,
                        char token[JWT_MAX])
{
    uint8_t rnd[16];
    if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
        return -EIO;
    char jti[33];
    for (int i = 0; i < 16; i++)
        snprintf(jti + 2 * i, 3, "%02x", rnd[i]);
    time_t exp = now + (time_t)m->lease_seconds;
    json_t *claims = json_pack("{s:s,s:s,s:s,s:I,s:I}", "dev", e->device, "cid", e->client,
                               "jti", jti, "iat", (json_int_t)now, "exp", (json_int_t)exp);
    if (!claims)
        return -ENOMEM;
    int ret = jwt_sign_hs256(m->key, sizeof(m->key), claims, token, JWT_MAX);
    json_decref(claims);
    if (ret < 0)
        return ret;
    memcpy(e->jti, jti, sizeof(jti));
    e->expires = exp;
    e->token_exp = exp;
    e->held = 1;
    return 0;
}

/* Gives e to client as a new lease: a new name, token and presence. On failure e is
 * unchanged. */
static int grant_locked(struct lease_mgr *m, struct lease_entry *e, const char *client,
                        time_t now, char token[JWT_MAX])
{
    char saved[64];
    memcpy(saved, e->client, sizeof(saved));
    snprintf(e->client, sizeof(e->client), "%s", client);
    int ret = issue_locked(m, e, now, token);
    if (ret < 0) {
        memcpy(e->client, saved, sizeof(saved));
        return ret;
    }
    e->serial = ++m->serial;
    e->seen = now;
    e->streams = 0;
    e->old_jti[0] = 0;
    return 0;
}

/* Verifies token as the current one of device: returns the entry or NULL with *err. */
static struct lease_entry *check_locked(struct lease_mgr *m, const char *device,
                                        const char *token, time_t now, int *err)
{
    json_t *claims = NULL;
    int ret = jwt_verify_hs256(m->key, sizeof(m->key), token, now, &claims);
    /* The token's own `exp` passed, but its lease lives on (kept by a take, or its timer
     * restarted when the take ended): the entry's expiry decides, the jti check below
     * makes sure it is the current token. */
    struct lease_entry *held = find(m, device, 0);
    int past_exp = ret == -ETIME && alive(held, now);
    if (past_exp)
        ret = jwt_verify_hs256(m->key, sizeof(m->key), token, 0, &claims);
    if (ret < 0) {
        *err = ret == -ETIME ? -ETIME : -EACCES;
        return NULL;
    }
    const char *dev = json_string_value(json_object_get(claims, "dev"));
    const char *jti = json_string_value(json_object_get(claims, "jti"));
    struct lease_entry *e = find(m, device, 0);
    int ok = dev && jti && strcmp(dev, device) == 0 && e && e->held &&
             strcmp(e->jti, jti) == 0;
    int replaced = !ok && dev && jti && strcmp(dev, device) == 0 && e && e->old_jti[0] &&
                   strcmp(e->old_jti, jti) == 0;
    /* past its exp: only the token exactly as issued (not one re-signed with another exp) */
    if (ok && past_exp)
        ok = json_integer_value(json_object_get(claims, "exp")) == (json_int_t)e->token_exp;
    json_decref(claims);
    if (!ok) {
        *err = replaced && alive(e, now) ? -EOWNERDEAD : -EACCES;
        return NULL;
    }
    if (!alive(e, now)) {
        *err = -ETIME;
        return NULL;
    }
    e->seen = now;   /* a sign of the holder (presence) */
    return e;
}

/* What every call that shows a token begins with: the arguments checked, m->lock taken and
 * the token's lease found (check_locked). 0 with *e and the lock held, or a negative errno
 * with the lock not held. */
static int lock_token(struct lease_mgr *m, const char *device, const char *token, time_t now,
                      struct lease_entry **e)
{
    if (!m || !valid_name(device))
        return -EINVAL;
    if (!token)
        return -EACCES;
    int ret = 0;
    pthread_mutex_lock(&m->lock);
    *e = check_locked(m, device, token, now, &ret);
    if (!*e) {
        pthread_mutex_unlock(&m->lock);
        return ret;
    }
    return 0;
}

int lease_take(struct lease_mgr *m, const char *device, const char *client, time_t now,
               char token[JWT_MAX], struct lease_info *info)
{
    if (!m || !valid_name(device) || !token)
        return -EINVAL;
    if (!client || !*client)
        client = "anonymous";
    pthread_mutex_lock(&m->lock);
    int ret;
    struct lease_entry *e = find(m, device, 1);
    if (!e) {
        ret = -ENOMEM;
    } else if (alive(e, now)) {
        ret = -EBUSY;
        fill_info(e, now, info);
    } else {
        ret = grant_locked(m, e, client, now, token);
        fill_info(e, now, info);
    }
    if (ret == -EBUSY && info)
        fill_presence(m, e, now, info);
    pthread_mutex_unlock(&m->lock);
    return ret;
}

int lease_renew(struct lease_mgr *m, const char *device, const char *token, time_t now,
                char new_token[JWT_MAX], struct lease_info *info)
{
    if (!new_token)
        return -EINVAL;
    struct lease_entry *e;
    int ret = lock_token(m, device, token, now, &e);
    if (ret < 0)
        return ret;
    ret = issue_locked(m, e, now, new_token);
    if (ret == 0)
        fill_full(m, e, now, info);
    pthread_mutex_unlock(&m->lock);
    return ret;
}

int lease_release(struct lease_mgr *m, const char *device, const char *token, time_t now)
{
    struct lease_entry *e;
    int ret = lock_token(m, device, token, now, &e);
    if (ret < 0)
        return ret;
    e->held = 0;
    e->jti[0] = 0;
    pthread_mutex_unlock(&m->lock);
    return 0;
}

int lease_check(struct lease_mgr *m, const char *device, const char *token, time_t now)
{
    struct lease_entry *e;
    int ret = lock_token(m, device, token, now, &e);
    if (ret < 0)
        return ret;
    pthread_mutex_unlock(&m->lock);
    return 0;
}

void lease_get(struct lease_mgr *m, const char *device, time_t now, struct lease_info *info)
{
    if (!info)
        return;
    memset(info, 0, sizeof(*info));
    if (!m || !device)
        return;
    pthread_mutex_lock(&m->lock);
    fill_full(m, find(m, device, 0), now, info);
    pthread_mutex_unlock(&m->lock);
}

void lease_set_takeover_after(struct lease_mgr *m, unsigned seconds)
{
    pthread_mutex_lock(&m->lock);
    m->takeover_after = seconds;
    pthread_mutex_unlock(&m->lock);
}

int lease_takeover(struct lease_mgr *m, const char *device, const char *client, time_t now,
                   char token[JWT_MAX], struct lease_info *info, char previous[64])
{
    if (!m || !valid_name(device) || !token || !previous)
        return -EINVAL;
    if (!client || !*client)
        client = "anonymous";
    pthread_mutex_lock(&m->lock);
    int ret = -ENOMEM;
    struct lease_entry *e = find(m, device, 1);
    previous[0] = 0;
    if (e && alive(e, now) &&
        (e->streams > 0 || now - e->seen < (time_t)m->takeover_after)) {
        ret = -EBUSY;
        fill_full(m, e, now, info);
    } else if (e) {
        char saved[64], old[33];
        int was = alive(e, now);
        memcpy(saved, e->client, sizeof(saved));
        memcpy(old, e->jti, sizeof(old));
        ret = grant_locked(m, e, client, now, token);
        if (ret == 0 && was) {   /* the replaced lease's tokens now say who took over */
            memcpy(previous, saved, 64);
            memcpy(e->old_jti, old, sizeof(old));
        }
        fill_full(m, e, now, info);
    }
    pthread_mutex_unlock(&m->lock);
    return ret;
}

void lease_taken_over_by(struct lease_mgr *m, const char *device, char out[64])
{
    out[0] = 0;
    pthread_mutex_lock(&m->lock);
    struct lease_entry *e = find(m, device, 0);
    if (e && e->held && e->old_jti[0])
        memcpy(out, e->client, 64);
    pthread_mutex_unlock(&m->lock);
}

int lease_bind(struct lease_mgr *m, const char *device, const char *token, time_t now,
               unsigned long *serial, struct lease_info *info)
{
    if (!serial)
        return -EINVAL;
    struct lease_entry *e;
    int ret = lock_token(m, device, token, now, &e);
    if (ret < 0)
        return ret;
    ret = e->streams++ == 0;
    *serial = e->serial;
    fill_full(m, e, now, info);
    pthread_mutex_unlock(&m->lock);
    return ret;
}

int lease_unbind(struct lease_mgr *m, const char *device, unsigned long serial, time_t now,
                 struct lease_info *info)
{
    if (!m || !valid_name(device))
        return -EINVAL;
    pthread_mutex_lock(&m->lock);
    int ret = -ENOENT;
    struct lease_entry *e = find(m, device, 0);
    if (e && e->held && e->serial == serial && e->streams > 0) {
        e->seen = now;
        ret = --e->streams == 0;
        fill_full(m, e, now, info);
    }
    pthread_mutex_unlock(&m->lock);
    return ret;
}

int lease_keep(struct lease_mgr *m, const char *device, int kept, time_t now,
               struct lease_info *info)
{
    if (!m || !valid_name(device))
        return -EINVAL;
    pthread_mutex_lock(&m->lock);
    int ret = -ENOMEM;
    struct lease_entry *e = find(m, device, 1);
    if (e) {
        int was = alive(e, now);
        if (!kept && e->kept && was && e->expires < now + (time_t)m->lease_seconds)
            e->expires = now + (time_t)m->lease_seconds;
        e->kept = kept;
        ret = was;
        fill_info(was ? e : NULL, now, info);
    }
    pthread_mutex_unlock(&m->lock);
    return ret;
}

void lease_drop(struct lease_mgr *m, const char *device)
{
    if (!m || !device)
        return;
    pthread_mutex_lock(&m->lock);
    struct lease_entry *e = find(m, device, 0);
    if (e) {
        e->held = 0;
        e->jti[0] = 0;
    }
    pthread_mutex_unlock(&m->lock);
}

int lease_expire(struct lease_mgr *m, time_t now, lease_expired_func cb, void *arg)
{
    if (!m)
        return -EINVAL;
    struct gone { char device[64], client[64], lease[16]; } *list = NULL;
    size_t n = 0, cap = 0;
    pthread_mutex_lock(&m->lock);
    for (struct lease_entry *e = m->list; e; e = e->next) {
        if (!e->held || e->expires > now || e->kept)
            continue;
        if (n == cap) {
            size_t nc = cap ? cap * 2 : 4;
            void *p = realloc(list, nc * sizeof(*list));
            if (!p)
                break;   /* the rest expire on the next tick */
            list = p;
            cap = nc;
        }
        memcpy(list[n].device, e->device, sizeof(list[n].device));
        memcpy(list[n].client, e->client, sizeof(list[n].client));
        snprintf(list[n].lease, sizeof(list[n].lease), "L%lu", e->serial);
        n++;
        e->held = 0;
        e->jti[0] = 0;
    }
    pthread_mutex_unlock(&m->lock);
    for (size_t i = 0; cb && i < n; i++)
        cb(list[i].device, list[i].client, list[i].lease, arg);
    free(list);
    return (int)n;
}
