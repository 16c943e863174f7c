/* jwt: round trip, every forged variant refused, the key file, and PyJWT as an
 * independent peer (both directions). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "server/jwt.h"

#include <errno.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const uint8_t KEY[32] = "0123456789abcdef0123456789abcdef";
static const time_t NOW = 1790000000;

/* The test's own base64url (independent of the code under test's helpers). */
static void b64u(const void *in, size_t n, char *out)
{
    int len = EVP_EncodeBlock((unsigned char *)out, in, (int)n);
    while (len > 0 && out[len - 1] == '=')
        len--;
    out[len] = 0;
    for (char *p = out; *p; p++)
        *p = *p == '+' ? '-' : *p == '/' ? '_' : *p;
}

/* header.payload.signature with a chosen header, payload, digest (NULL = no signature). */
static void forge(char *out, const char *header, const char *payload, const EVP_MD *md,
                  const uint8_t *key, size_t key_len)
{
    char h[1024], p[1024];
    b64u(header, strlen(header), h);
    b64u(payload, strlen(payload), p);
    sprintf(out, "%s.%s.", h, p);
    if (md) {
        unsigned char sig[64];
        unsigned int sl = 0;
        HMAC(md, key, (int)key_len, (unsigned char *)out, strlen(out) - 1, sig, &sl);
        b64u(sig, sl, out + strlen(out));
    }
}

static char *sign_claims(json_t *claims)
{
    static char tok[JWT_MAX];
    assert_int_equal(jwt_sign_hs256(KEY, sizeof(KEY), claims, tok, sizeof(tok)), 0);
    json_decref(claims);
    return tok;
}

static void test_round_trip(void **state)
{
    (void)state;
    char *tok = sign_claims(json_pack("{s:s,s:s,s:I}", "dev", "tone", "cid", "ipad", "exp",
                                      (json_int_t)(NOW + 300)));
    assert_int_equal(strchr(strchr(tok, '.') + 1, '.') - tok > 0, 1);
    json_t *c = NULL;
    assert_int_equal(jwt_verify_hs256(KEY, sizeof(KEY), tok, NOW, &c), 0);
    assert_non_null(c);
    assert_string_equal(json_string_value(json_object_get(c, "dev")), "tone");
    assert_int_equal(json_integer_value(json_object_get(c, "exp")), NOW + 300);
    json_decref(c);
    /* Still valid one second before exp, expired at exp. */
    assert_int_equal(jwt_verify_hs256(KEY, sizeof(KEY), tok, NOW + 299, NULL), 0);
    assert_int_equal(jwt_verify_hs256(KEY, sizeof(KEY), tok, NOW + 300, NULL), -ETIME);
    /* Output buffer too small. */
    char small[20];
    json_t *cl = json_pack("{s:I}", "exp", (json_int_t)NOW);
    assert_int_equal(jwt_sign_hs256(KEY, sizeof(KEY), cl, small, sizeof(small)), -ENOSPC);
    json_decref(cl);
}

static void test_forged_rejected(void **state)
{
    (void)state;
    char tok[4096], pay[256];
    json_t *c = (json_t *)1;
    snprintf(pay, sizeof(pay), "{\"dev\":\"tone\",\"exp\":%lld}", (long long)NOW + 300);

    /* The genuine article, for contrast. */
    forge(tok, "{\"alg\":\"HS256\",\"typ\":\"JWT\"}", pay, EVP_sha256(), KEY, sizeof(KEY));
    assert_int_equal(jwt_verify_hs256(KEY, sizeof(KEY), tok, NOW, NULL), 0);

    /* alg none with an empty signature. */
    forge(tok, "{\"alg\":\"none\",\"typ\":\"JWT\"}", pay, NULL, NULL, 0);
    assert_int_equal(jwt_verify_hs256(KEY, sizeof(KEY), tok, NOW, &c), -EBADMSG);
    assert_null(c);
    /* HS256 header but no signature. */
    forge(tok, "{\"alg\":\"HS256\"}", pay, NULL, NULL, 0);
    assert_int_equal(jwt_verify_hs256(KEY, sizeof(KEY), tok, NOW, NULL), -EBADMSG);
    /* HS512 header, correctly re-signed with the right key: still refused. */
    forge(tok, "{\"alg\":\"HS512\",\"typ\":\"JWT\"}", pay, EVP_sha512(), KEY, sizeof(KEY));
    assert_int_equal(jwt_verify_hs256(KEY, sizeof(KEY), tok, NOW, NULL), -EBADMSG);
    /* RS256 named, HMAC'd (the classic key-confusion forgery). */
    forge(tok, "{\"alg\":\"RS256\"}", pay, EVP_sha256(), KEY, sizeof(KEY));
    assert_int_equal(jwt_verify_hs256(KEY, sizeof(KEY), tok, NOW, NULL), -EBADMSG);
    /* alg in another case. */
    forge(tok, "{\"alg\":\"hs256\"}", pay, EVP_sha256(), KEY, sizeof(KEY));
    assert_int_equal(jwt_verify_hs256(KEY, sizeof(KEY), tok, NOW, NULL), -EBADMSG);
    /* Duplicate alg key. */
    forge(tok, "{\"alg\":\"HS256\",\"alg\":\"none\"}", pay, EVP_sha256(), KEY, sizeof(KEY));
    assert_int_equal(jwt_verify_hs256(KEY, sizeof(KEY), tok, NOW, NULL), -EINVAL);
    /* Wrong secret. */
    static const uint8_t other[32] = "ffffffffffffffffffffffffffffffff";
    forge(tok, "{\"alg\":\"HS256\"}", pay, EVP_sha256(), other, sizeof(other));
    assert_int_equal(jwt_verify_hs256(KEY, sizeof(KEY), tok, NOW, NULL), -EBADMSG);

    /* Tampered payload: signature of the original, payload of another device. */
    forge(tok, "{\"alg\":\"HS256\"}", pay, EVP_sha256(), KEY, sizeof(KEY));
    char evil[256], evil64[512];
    snprintf(evil, sizeof(evil), "{\"dev\":\"yeti\",\"exp\":%lld}", (long long)NOW + 300);
    b64u(evil, strlen(evil), evil64);
    char *d1 = strchr(tok, '.'), *d2 = strchr(d1 + 1, '.');
    char tampered[4096];
    snprintf(tampered, sizeof(tampered), "%.*s.%s%s", (int)(d1 - tok), tok, evil64, d2);
    assert_int_equal(jwt_verify_hs256(KEY, sizeof(KEY), tampered, NOW, NULL), -EBADMSG);
    /* One flipped character of the signature. */
    size_t tl = strlen(tok);
    tok[tl - 2] = tok[tl - 2] == 'A' ? 'B' : 'A';
    assert_int_equal(jwt_verify_hs256(KEY, sizeof(KEY), tok, NOW, NULL), -EBADMSG);

    /* exp: expired, missing, float, string, null. */
    const char *bad_exp[] = {"{\"exp\":1000}", "{\"dev\":\"tone\"}", "{\"exp\":1790000300.0}",
                             "{\"exp\":\"1790000300\"}", "{\"exp\":null}"};
    for (size_t i = 0; i < sizeof(bad_exp) / sizeof(bad_exp[0]); i++) {
        forge(tok, "{\"alg\":\"HS256\"}", bad_exp[i], EVP_sha256(), KEY, sizeof(KEY));
        assert_int_equal(jwt_verify_hs256(KEY, sizeof(KEY), tok, NOW, NULL), -ETIME);
    }
    /* Payload that is not an object. */
    forge(tok, "{\"alg\":\"HS256\"}", "[1,2]", EVP_sha256(), KEY, sizeof(KEY));
    assert_int_equal(jwt_verify_hs256(KEY, sizeof(KEY), tok, NOW, NULL), -EINVAL);
    forge(tok, "{\"alg\":\"HS256\"}", "not json", EVP_sha256(), KEY, sizeof(KEY));
    assert_int_equal(jwt_verify_hs256(KEY, sizeof(KEY), tok, NOW, NULL), -EINVAL);
    /* Header that is not an object. */
    forge(tok, "\"HS256\"", pay, EVP_sha256(), KEY, sizeof(KEY));
    assert_int_equal(jwt_verify_hs256(KEY, sizeof(KEY), tok, NOW, NULL), -EINVAL);
}

static void test_malformed(void **state)
{
    (void)state;
    char tok[JWT_MAX + 100], pay[256];
    snprintf(pay, sizeof(pay), "{\"exp\":%lld}", (long long)NOW + 300);
    forge(tok, "{\"alg\":\"HS256\"}", pay, EVP_sha256(), KEY, sizeof(KEY));
    char t[sizeof(tok) + 16];

    assert_int_equal(jwt_verify_hs256(KEY, sizeof(KEY), "", NOW, NULL), -EINVAL);
    assert_int_equal(jwt_verify_hs256(KEY, sizeof(KEY), "abc", NOW, NULL), -EINVAL);
    assert_int_equal(jwt_verify_hs256(KEY, sizeof(KEY), "a.b", NOW, NULL), -EINVAL);
    assert_int_equal(jwt_verify_hs256(KEY, sizeof(KEY), "..", NOW, NULL), -EINVAL);
    /* Truncated. */
    snprintf(t, sizeof(t), "%.*s", (int)(strrchr(tok, '.') - tok), tok);
    assert_int_equal(jwt_verify_hs256(KEY, sizeof(KEY), t, NOW, NULL), -EINVAL);
    snprintf(t, sizeof(t), "%.*s", (int)strlen(tok) - 5, tok);
    assert_int_equal(jwt_verify_hs256(KEY, sizeof(KEY), t, NOW, NULL) < 0, 1);
    /* Extra dots / segments. */
    snprintf(t, sizeof(t), "%s.", tok);
    assert_int_equal(jwt_verify_hs256(KEY, sizeof(KEY), t, NOW, NULL), -EINVAL);
    snprintf(t, sizeof(t), "%s.%s", tok, strrchr(tok, '.') + 1);
    assert_int_equal(jwt_verify_hs256(KEY, sizeof(KEY), t, NOW, NULL), -EINVAL);
    /* Characters outside base64url, and standard-base64 padding. */
    snprintf(t, sizeof(t), "%s", tok);
    t[3] = '+';
    assert_int_equal(jwt_verify_hs256(KEY, sizeof(KEY), t, NOW, NULL), -EINVAL);
    snprintf(t, sizeof(t), "%s=", tok);
    assert_int_equal(jwt_verify_hs256(KEY, sizeof(KEY), t, NOW, NULL), -EINVAL);
    snprintf(t, sizeof(t), " %s", tok);
    assert_int_equal(jwt_verify_hs256(KEY, sizeof(KEY), t, NOW, NULL), -EINVAL);
    /* Huge token. */
    char *huge = malloc(100000);
    memset(huge, 'A', 99999);
    huge[99999] = 0;
    huge[40000] = '.';
    huge[80000] = '.';
    assert_int_equal(jwt_verify_hs256(KEY, sizeof(KEY), huge, NOW, NULL), -EINVAL);
    free(huge);
    assert_int_equal(jwt_verify_hs256(KEY, sizeof(KEY), NULL, NOW, NULL), -EINVAL);
}

/* ---- PyJWT as an independent peer ---------------------------------------------------- */

static int have_pyjwt(void)
{
    return system("/usr/bin/python3 -c 'import jwt' >/dev/null 2>&1") == 0;
}

static void test_pyjwt_cross_check(void **state)
{
    (void)state;
    if (!have_pyjwt()) {
        print_message("PyJWT (/usr/bin/python3 -c 'import jwt') not installed: skipped\n");
        skip();
    }
    char cmd[8192], line[4096];
    /* PyJWT signs, we verify. */
    snprintf(cmd, sizeof(cmd),
             "/usr/bin/python3 -c 'import jwt,sys; print(jwt.encode({\"dev\":\"yeti\","
             "\"cid\":\"py\",\"exp\":%lld}, sys.argv[1].encode(), algorithm=\"HS256\"))' %.32s",
             (long long)NOW + 60, (const char *)KEY);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    assert_non_null(fgets(line, sizeof(line), p));
    assert_int_equal(pclose(p), 0);
    line[strcspn(line, "\n")] = 0;
    json_t *c = NULL;
    assert_int_equal(jwt_verify_hs256(KEY, sizeof(KEY), line, NOW, &c), 0);
    assert_string_equal(json_string_value(json_object_get(c, "cid")), "py");
    json_decref(c);
    assert_int_equal(jwt_verify_hs256(KEY, sizeof(KEY), line, NOW + 60, NULL), -ETIME);

    /* PyJWT forges alg none: refused. */
    snprintf(cmd, sizeof(cmd),
             "/usr/bin/python3 -c 'import jwt; print(jwt.encode({\"exp\":%lld}, None, "
             "algorithm=\"none\"))'", (long long)NOW + 60);
    p = popen(cmd, "r");
    assert_non_null(fgets(line, sizeof(line), p));
    assert_int_equal(pclose(p), 0);
    line[strcspn(line, "\n")] = 0;
    assert_int_equal(jwt_verify_hs256(KEY, sizeof(KEY), line, NOW, NULL), -EBADMSG);

    /* We sign, PyJWT verifies (it checks exp against the real clock: use a future one). */
    time_t exp = time(NULL) + 3600;
    json_t *cl = json_pack("{s:s,s:s,s:I,s:I}", "dev", "tone", "cid", "c", "iat",
                   (json_int_t)time(NULL), "exp", (json_int_t)exp);
    char *tok = sign_claims(cl);
    snprintf(cmd, sizeof(cmd),
             "/usr/bin/python3 -c 'import jwt,sys; c=jwt.decode(sys.argv[2], sys.argv[1].encode(),"
             " algorithms=[\"HS256\"]); print(c[\"dev\"], c[\"exp\"])' %.32s %s",
             (const char *)KEY, tok);
    p = popen(cmd, "r");
    assert_non_null(fgets(line, sizeof(line), p));
    assert_int_equal(pclose(p), 0);
    char want[64];
    snprintf(want, sizeof(want), "tone %lld\n", (long long)exp);
    assert_string_equal(line, want);
}

/* ---- the key file ----------------------------------------------------------------------- */

static void test_secret_file(void **state)
{
    (void)state;
    char dir[] = "/tmp/pirec-jwt-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char sd[256], path[300];
    snprintf(sd, sizeof(sd), "%s/state/pirec", dir);
    snprintf(path, sizeof(path), "%s/jwt.key", sd);
    uint8_t k1[32], k2[32];
    assert_int_equal(jwt_secret_load_or_create(sd, k1), 0);
    struct stat st;
    assert_int_equal(stat(sd, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(st.st_size, 32);
    /* Loaded again: the same key. */
    assert_int_equal(jwt_secret_load_or_create(sd, k2), 0);
    assert_memory_equal(k1, k2, 32);
    static const uint8_t zero[32];
    assert_memory_not_equal(k1, zero, 32);
    /* Readable by the group: refused. */
    assert_int_equal(chmod(path, 0640), 0);
    assert_int_equal(jwt_secret_load_or_create(sd, k2), -EPERM);
    assert_int_equal(chmod(path, 0600), 0);
    /* A truncated key: refused, not silently used. */
    assert_int_equal(truncate(path, 10), 0);
    assert_int_equal(jwt_secret_load_or_create(sd, k2), -EINVAL);
    /* A symlink instead of the file: refused. */
    assert_int_equal(unlink(path), 0);
    assert_int_equal(symlink("/etc/passwd", path), 0);
    assert_true(jwt_secret_load_or_create(sd, k2) < 0);
    assert_int_equal(unlink(path), 0);
    /* A fresh key after deletion differs. */
    assert_int_equal(jwt_secret_load_or_create(sd, k2), 0);
    assert_memory_not_equal(k1, k2, 32);
    assert_int_equal(unlink(path), 0);
    assert_int_equal(rmdir(sd), 0);
    snprintf(sd, sizeof(sd), "%s/state", dir);
    assert_int_equal(rmdir(sd), 0);
    assert_int_equal(rmdir(dir), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_forged_rejected),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_pyjwt_cross_check),
        cmocka_unit_test(test_secret_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
