/*
 * jwt: HS256 only. base64url is OpenSSL's EVP_EncodeBlock/EVP_DecodeBlock with the
 * alphabet translated and the padding removed/restored; HMAC is OpenSSL's HMAC().
 */
#include "server/jwt.h"

#include "common/fsutil.h"
#include "common/log.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#define SIG_LEN 32
static const char JWT_HEADER[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";

/* base64url without padding. Returns the length written (NUL-terminated) or -ENOSPC. */
static int b64url_encode(const uint8_t *in, size_t n, char *out, size_t out_len)
{
    size_t need = 4 * ((n + 2) / 3) + 1;
    if (need > out_len || n > INT_MAX / 2)
        return -ENOSPC;
    int len = EVP_EncodeBlock((unsigned char *)out, in, (int)n);
    while (len > 0 && out[len - 1] == '=')
        len--;
    out[len] = 0;
    for (int i = 0; i < len; i++) {
        if (out[i] == '+')
            out[i] = '-';
        else if (out[i] == '/')
            out[i] = '_';
    }
    return len;
}

/* Strict base64url decoding of n chars (url alphabet only, no padding). Returns the
 * decoded length or -EINVAL. out must hold 3 * (n + 3) / 4 bytes. */
static int b64url_decode(const char *in, size_t n, uint8_t *out, size_t out_len)
{
    if (n % 4 == 1 || n > (size_t)JWT_MAX)
        return -EINVAL;
    size_t padded = (n + 3) / 4 * 4;
    if (padded / 4 * 3 > out_len)
        return -EINVAL;
    char tmp[4 * JWT_MAX + 4];
    for (size_t i = 0; i < n; i++) {
        char c = in[i];
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))
            tmp[i] = c;
        else if (c == '-')
            tmp[i] = '+';
        else if (c == '_')
            tmp[i] = '/';
        else
            return -EINVAL;
    }
    size_t pad = padded - n;
    memset(tmp + n, '=', pad);
    if (padded == 0)
        return 0;
    int len = EVP_DecodeBlock(out, (const unsigned char *)tmp, (int)padded);
    if (len < 0 || len < (int)pad)
        return -EINVAL;
    len -= (int)pad;
    /* Only the canonical spelling: unused low bits set would give a second string for the
     * same bytes. */
    char again[4 * JWT_MAX + 4];
    if (b64url_encode(out, (size_t)len, again, sizeof(again)) != (int)n || memcmp(again, in, n))
        return -EINVAL;
    return len;
}

static int hmac_sha256(const uint8_t *key, size_t key_len, const char *data, size_t n,
                       uint8_t sig[SIG_LEN])
{
    unsigned int len = 0;
    if (key_len > INT_MAX)
        return -EINVAL;
    if (!HMAC(EVP_sha256(), key, (int)key_len, (const unsigned char *)data, n, sig, &len) ||
        len != SIG_LEN)
        return -EIO;
    return 0;
}

int jwt_sign_hs256(const uint8_t *key, size_t key_len, const json_t *claims, char *out,
                   size_t out_len)
{
    if (!key || !key_len || !json_is_object(claims) || !out)
        return -EINVAL;
    char *payload = json_dumps(claims, JSON_COMPACT | JSON_SORT_KEYS);
    if (!payload)
        return -EINVAL;
    char buf[JWT_MAX];
    size_t used = 0;
    int n = b64url_encode((const uint8_t *)JWT_HEADER, strlen(JWT_HEADER), buf, sizeof(buf));
    int ret = -ENOSPC;
    if (n < 0)
        goto out;
    used = (size_t)n;
    buf[used++] = '.';
    n = b64url_encode((const uint8_t *)payload, strlen(payload), buf + used, sizeof(buf) - used);
    if (n < 0)
        goto out;
    used += (size_t)n;
    uint8_t sig[SIG_LEN];
    ret = hmac_sha256(key, key_len, buf, used, sig);
    if (ret < 0)
        goto out;
    ret = -ENOSPC;
    if (used + 1 >= sizeof(buf))
        goto out;
    buf[used++] = '.';
    n = b64url_encode(sig, sizeof(sig), buf + used, sizeof(buf) - used);
    if (n < 0)
        goto out;
    used += (size_t)n;
    if (used + 1 > out_len)
        goto out;
    memcpy(out, buf, used + 1);
    ret = 0;
out:
    free(payload);
    return ret;
}

/* Decodes one segment into a JSON object (duplicate keys refused). */
static int decode_json_segment(const char *seg, size_t n, json_t **out)
{
    uint8_t raw[JWT_MAX];
    int len = b64url_decode(seg, n, raw, sizeof(raw));
    if (len <= 0)
        return -EINVAL;
    json_error_t jerr;
    json_t *j = json_loadb((const char *)raw, (size_t)len, JSON_REJECT_DUPLICATES, &jerr);
    if (!j)
        return -EINVAL;
    if (!json_is_object(j)) {
        json_decref(j);
        return -EINVAL;
    }
    *out = j;
    return 0;
}

int jwt_verify_hs256(const uint8_t *key, size_t key_len, const char *token, time_t now,
                     json_t **claims)
{
    if (claims)
        *claims = NULL;
    if (!key || !key_len || !token)
        return -EINVAL;
    size_t tlen = strnlen(token, JWT_MAX);
    if (tlen == 0 || tlen >= JWT_MAX)
        return -EINVAL;
    const char *d1 = strchr(token, '.');
    const char *d2 = d1 ? strchr(d1 + 1, '.') : NULL;
    if (!d1 || !d2 || strchr(d2 + 1, '.'))
        return -EINVAL;
    size_t hlen = (size_t)(d1 - token), plen = (size_t)(d2 - d1 - 1);
    size_t slen = tlen - (size_t)(d2 + 1 - token);
    if (hlen == 0 || plen == 0)
        return -EINVAL;

    /* The header pins the algorithm: nothing but HS256 is ever considered. */
    json_t *hdr = NULL;
    int ret = decode_json_segment(token, hlen, &hdr);
    if (ret < 0)
        return ret;
    const char *alg = json_string_value(json_object_get(hdr, "alg"));
    json_t *typ = json_object_get(hdr, "typ");
    int alg_ok = alg && strcmp(alg, "HS256") == 0 &&
                 (!typ || (json_is_string(typ) && strcmp(json_string_value(typ), "JWT") == 0)) &&
                 !json_object_get(hdr, "crit");
    json_decref(hdr);
    if (!alg_ok)
        return -EBADMSG;

    uint8_t sig[SIG_LEN + 3];
    if (slen == 0)
        return -EBADMSG;   /* alg:none style: no signature at all */
    int n = b64url_decode(d2 + 1, slen, sig, sizeof(sig));
    if (n < 0)
        return -EINVAL;
    uint8_t want[SIG_LEN];
    ret = hmac_sha256(key, key_len, token, (size_t)(d2 - token), want);
    if (ret < 0)
        return ret;
    if (n != SIG_LEN || CRYPTO_memcmp(sig, want, SIG_LEN) != 0)
        return -EBADMSG;

    json_t *c = NULL;
    ret = decode_json_segment(d1 + 1, plen, &c);
    if (ret < 0)
        return ret;
    json_t *exp = json_object_get(c, "exp");
    if (!json_is_integer(exp) || json_integer_value(exp) <= (json_int_t)now) {
        json_decref(c);
        return -ETIME;
    }
    if (claims)
        *claims = c;
    else
        json_decref(c);
    return 0;
}

static int read_key(int fd, const char *path, uint8_t key[32])
{
    struct stat st;
    if (fstat(fd, &st) < 0)
        return -errno;
    if (!S_ISREG(st.st_mode)) {
        log_err("jwt", "%s is not a regular file; remove it so that a new key is made", path);
        return -EINVAL;
    }
    if (st.st_mode & 077) {
        log_err("jwt", "%s is readable or writable by others (mode %03o): refusing it; "
                "run 'chmod 600 %s' if it is yours, or delete it to make a new key",
                path, (unsigned)(st.st_mode & 0777), path);
        return -EPERM;
    }
    if (st.st_size != 32) {
        log_err("jwt", "%s has %lld bytes, not 32: delete it so that a new key is made",
                path, (long long)st.st_size);
        return -EINVAL;
    }
    size_t got = 0;
    while (got < 32) {
        ssize_t n = read(fd, key + got, 32 - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return n < 0 ? -errno : -EIO;
        got += (size_t)n;
    }
    return 0;
}

static int open_and_read(const char *path, uint8_t key[32])
{
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int ret = read_key(fd, path, key);
    close(fd);
    return ret;
}

int jwt_secret_load_or_create(const char *state_dir, uint8_t key[32])
{
    if (!state_dir || !*state_dir || !key)
        return -EINVAL;
    int ret = fs_mkdir_p(state_dir, 0700);
    if (ret < 0) {
        log_err("jwt", "cannot create the state directory %s: %s", state_dir, strerror(-ret));
        return ret;
    }
    char path[4200], tmp[4300];
    snprintf(path, sizeof(path), "%s/jwt.key", state_dir);
    ret = open_and_read(path, key);
    if (ret != -ENOENT) {
        if (ret == -ELOOP)
            log_err("jwt", "%s is a symbolic link: refusing it", path);
        else if (ret < 0 && ret != -EPERM && ret != -EINVAL)
            log_err("jwt", "cannot read %s: %s", path, strerror(-ret));
        return ret;
    }

    /* Write a temporary file and link() it into place: a crash never leaves a short key,
     * and of two servers starting at once both end up with the one that won. */
    uint8_t fresh[32];
    if (getrandom(fresh, sizeof(fresh), 0) != (ssize_t)sizeof(fresh)) {
        ret = -errno;
        log_err("jwt", "getrandom failed: %s", strerror(errno));
        return ret ? ret : -EIO;
    }
    snprintf(tmp, sizeof(tmp), "%s/.jwt.key.%ld", state_dir, (long)getpid());
    unlink(tmp);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        ret = -errno;
        log_err("jwt", "cannot create %s: %s", tmp, strerror(errno));
        return ret;
    }
    ret = 0;
    if (fchmod(fd, 0600) < 0 || write(fd, fresh, sizeof(fresh)) != (ssize_t)sizeof(fresh) ||
        fsync(fd) < 0)
        ret = errno ? -errno : -EIO;
    close(fd);
    if (ret == 0 && link(tmp, path) < 0 && errno != EEXIST)
        ret = -errno;
    unlink(tmp);
    OPENSSL_cleanse(fresh, sizeof(fresh));
    if (ret < 0) {
        log_err("jwt", "cannot write %s: %s", path, strerror(-ret));
        return ret;
    }
    ret = open_and_read(path, key);
    if (ret == 0)
        log_info("jwt", "created a new server key in %s", path);
    return ret;
}
