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
    int present;          /* the holder is connected or used a token lately */
    time_t holder_seen;   /* last sign of the holder (now while a stream is bound) */
    time_t takeover_at;   /* earliest take-over; 0 while a stream is bound */
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

/* How long after the holder's last sign (no bound event stream, no request with a valid
 * token) a take-over is allowed. Default 120. */
void lease_set_takeover_after(struct lease_mgr *m, unsigned seconds);
/* Takes a held device from a holder who is gone: 0, the new token and *previous (the old
 * holder, "" when the device was free: then it is a plain take); the old lease's tokens
 * answer -EOWNERDEAD from then on. -EBUSY while the holder is present (*info says until
 * when). */
int lease_takeover(struct lease_mgr *m, const char *device, const char *client, time_t now,
                   char token[JWT_MAX], struct lease_info *info, char previous[64]);
/* The holder that took over from the lease of token (an -EOWNERDEAD token); "" if none. */
void lease_taken_over_by(struct lease_mgr *m, const char *device, char out[64]);
/* An event stream opened with token: binds it to token's lease (presence). 1 when it is the
 * lease's first bound stream (the holder became connected), 0 when not the first; *serial
 * names the lease for lease_unbind. -EACCES/-ETIME: not a current token. */
int lease_bind(struct lease_mgr *m, const char *device, const char *token, time_t now,
               unsigned long *serial, struct lease_info *info);
/* The stream ended: 1 when it was the lease's last one (*info filled), 0 when others stay,
 * -ENOENT when that lease is gone. */
int lease_unbind(struct lease_mgr *m, const char *device, unsigned long serial, time_t now,
                 struct lease_info *info);

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
