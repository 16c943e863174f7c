/*
 * lease: who controls each device. One lease per device, lease_seconds long; `take` when
 * free gives a token (a JWT with claims dev, cid (client), jti (token id), iat, exp);
 * `renew` gives a new token and the old one stops working (its jti is no longer current);
 * `release` frees it. lease_expire() is driven by the server's timer, so expiry does not
 * wait for the next request.
 *
 * Threads: every function is thread-safe (one internal mutex, never held while calling
 * out). Ownership: the manager copies the key.
 */
#ifndef PIREC_SERVER_LEASE_H
#define PIREC_SERVER_LEASE_H

#include "server/jwt.h"

#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct lease_info {
    int held;
    char client[64];      /* who holds it (the client label given at take) */
    time_t expires;       /* unix seconds */
    int kept;             /* a take runs on the device: the lease does not expire */
    char id[16];          /* names the lease ("L17"), stable across renewals; not secret */
};

struct lease_mgr;

int  lease_mgr_create(struct lease_mgr **out, const uint8_t key[32], unsigned lease_seconds);
void lease_mgr_destroy(struct lease_mgr *m);

/* Takes the device for client. 0 and the token, or -EBUSY (held by someone else, and
 * *info says by whom and until when). */
int lease_take(struct lease_mgr *m, const char *device, const char *client, time_t now,
               char token[JWT_MAX], struct lease_info *info);
/* 0 and a new token, or -EACCES (bad, forged, other device, or no longer current token),
 * -ETIME (expired). */
int lease_renew(struct lease_mgr *m, const char *device, const char *token, time_t now,
                char new_token[JWT_MAX], struct lease_info *info);
int lease_release(struct lease_mgr *m, const char *device, const char *token, time_t now);
/* Is token the current, unexpired token for device? 0, -EACCES, -ETIME. */
int lease_check(struct lease_mgr *m, const char *device, const char *token, time_t now);
void lease_get(struct lease_mgr *m, const char *device, time_t now, struct lease_info *info);
/* Frees a device's lease regardless of token (device removed). */
void lease_drop(struct lease_mgr *m, const char *device);

/* While a take runs on device (kept 1), its lease, whoever holds it, does not expire and its
 * tokens stay valid past their `exp`. kept 0 (the take ended): the timer starts again,
 * expires = max(expires, now + lease_seconds). Returns 1 when the device is held (*info
 * filled), 0 when free, -EINVAL, -ENOMEM. */
int lease_keep(struct lease_mgr *m, const char *device, int kept, time_t now,
               struct lease_info *info);

/* Ends every lease whose time is up (not a kept one); calls cb(device, client, lease id,
 * arg) for each, after the lock is released. Returns how many expired. */
typedef void (*lease_expired_func)(const char *device, const char *client, const char *lease,
                                   void *arg);
int lease_expire(struct lease_mgr *m, time_t now, lease_expired_func cb, void *arg);

#endif
