/*
 * jwt: HS256 JSON Web Tokens over OpenSSL's HMAC, with the algorithm pinned.
 *
 * Not libjwt: Debian's 1.10 accepts expired tokens, any algorithm the header names and
 * alg:none (field notes). This verifier accepts exactly {"alg":"HS256","typ":"JWT"}-style
 * headers whose alg is HS256, compares the signature with CRYPTO_memcmp (constant time)
 * before parsing the claims, and requires an integer `exp` in seconds that is in the future.
 *
 * Threads: any; no shared state. Keys are the caller's and are never logged.
 */
#ifndef PIREC_SERVER_JWT_H
#define PIREC_SERVER_JWT_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define JWT_MAX 2048

/* Signs claims (a JSON object; not modified) into out. 0, -ENOSPC, -EINVAL. */
int jwt_sign_hs256(const uint8_t *key, size_t key_len, const json_t *claims, char *out,
                   size_t out_len);

/* Verifies token at time now. On success *claims (may be NULL) gets a new reference the
 * caller must json_decref. Errors: -EINVAL malformed, -EBADMSG wrong algorithm or
 * signature, -ETIME expired or no/invalid exp. */
int jwt_verify_hs256(const uint8_t *key, size_t key_len, const char *token, time_t now,
                     json_t **claims);

/* Loads the 32-byte server secret from state_dir/jwt.key, or creates it with a secure
 * random source (getrandom) and mode 0600 (state_dir is created 0700 if missing). A key
 * file readable by others is refused with a clear log line (-EPERM). */
int jwt_secret_load_or_create(const char *state_dir, uint8_t key[32]);

#endif
