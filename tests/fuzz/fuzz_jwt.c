/* Fuzzes the lease tokens (src/server/jwt.c) a client sends in a path. First byte even:
 * the rest is a token as sent. Odd: the rest is "HEADER\nCLAIMS" (JSON texts), signed here
 * with the server's key, so the header and claims checks behind the signature are reached
 * too. A token this harness did not sign must never verify. */
#include "fuzz_util.h"

#include "server/jwt.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

static const uint8_t key[32] = "fuzzing-key-0123456789abcdefghij";

/* base64url without padding; returns the length written (out holds 4/3 n + 4). */
static size_t b64url(const uint8_t *in, size_t n, char *out)
{
    int len = EVP_EncodeBlock((unsigned char *)out, in, (int)n);
    size_t k = 0;
    for (int i = 0; i < len; i++) {
        if (out[i] == '=')
            break;
        out[k++] = out[i] == '+' ? '-' : out[i] == '/' ? '_' : out[i];
    }
    out[k] = 0;
    return k;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 4 * JWT_MAX)
        return 0;
    const uint8_t *in = data + 1;
    size_t n = size - 1;
    json_t *claims = NULL;
    if (!(data[0] & 1)) {
        char *token = fuzz_cstr(in, n);
        if (jwt_verify_hs256(key, sizeof key, token, 1000000000, &claims) == 0)
            abort(); /* a signature nobody made with the key */
        free(token);
        return 0;
    }
    const uint8_t *nl = memchr(in, '\n', n);
    size_t hlen = nl ? (size_t)(nl - in) : n;
    const uint8_t *pl = nl ? nl + 1 : in + n;
    size_t plen = nl ? n - hlen - 1 : 0;
    char *tok = malloc(2 * n + 128);
    if (!tok)
        abort();
    size_t k = b64url(in, hlen, tok);
    tok[k++] = '.';
    k += b64url(pl, plen, tok + k);
    unsigned char mac[32];
    unsigned maclen = 0;
    HMAC(EVP_sha256(), key, sizeof key, (const unsigned char *)tok, k, mac, &maclen);
    tok[k++] = '.';
    b64url(mac, maclen, tok + k);
    if (jwt_verify_hs256(key, sizeof key, tok, 1000000000, &claims) == 0) {
        if (!json_is_object(claims))
            abort();
        json_decref(claims);
    }
    free(tok);
    return 0;
}
