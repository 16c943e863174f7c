/* Unit tests of the client's own framing (src/record/ws_frame.c): the word-wide mask equals
 * RFC 6455's byte rule for every length, alignment and phase (and in place); headers of the
 * three length forms decode as a server reads them; mask keys are not repeated. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "record/ws_frame.h"

static void test_mask_matches_byte_rule(void **state)
{
    (void)state;
    unsigned char src[300], dst[320], ref[300], inplace[320];
    const unsigned char key[4] = {0x9a, 0x01, 0xfe, 0x37};
    for (size_t i = 0; i < sizeof src; i++)
        src[i] = (unsigned char)(i * 131 + 7);
    for (unsigned phase = 0; phase < 4; phase++)
        for (size_t align = 0; align < 8; align++)
            for (size_t n = 0; n <= 260; n++) {
                for (size_t i = 0; i < n; i++)
                    ref[i] = src[i] ^ key[(phase + i) % 4];
                memset(dst, 0xee, sizeof dst);
                unsigned ph = ws_frame_mask_copy(dst + align, src, n, key, phase);
                if (n)
                    assert_memory_equal(dst + align, ref, n);
                assert_int_equal(dst[align + n], 0xee);   /* nothing past the end */
                assert_int_equal(ph, (phase + n) % 4);
                memcpy(inplace + align, src, n);
                ws_frame_mask_copy(inplace + align, inplace + align, n, key, phase);
                if (n)
                    assert_memory_equal(inplace + align, ref, n);
            }
}

/* A payload masked in pieces (the name, then ring segments) equals one masked whole. */
static void test_mask_in_pieces(void **state)
{
    (void)state;
    unsigned char src[1000], whole[1000], parts[1000];
    const unsigned char key[4] = {1, 2, 3, 250};
    for (size_t i = 0; i < sizeof src; i++)
        src[i] = (unsigned char)rand();
    ws_frame_mask_copy(whole, src, sizeof src, key, 0);
    size_t cuts[] = {0, 3, 4, 11, 64, 65, 500, 999, 1000};
    unsigned ph = 0;
    for (size_t c = 0; c + 1 < sizeof cuts / sizeof cuts[0]; c++)
        ph = ws_frame_mask_copy(parts + cuts[c], src + cuts[c], cuts[c + 1] - cuts[c], key, ph);
    assert_memory_equal(whole, parts, sizeof src);
}

/* Reads a header as a server does; returns the header's length. */
static size_t parse(const unsigned char *h, int *fin, int *op, uint64_t *len, unsigned char key[4])
{
    size_t n = 2;
    *fin = h[0] >> 7;
    *op = h[0] & 0x0f;
    assert_int_equal(h[0] & 0x70, 0);   /* no RSV bits */
    assert_int_equal(h[1] & 0x80, 0x80);   /* masked */
    uint64_t l = h[1] & 0x7f;
    if (l == 126) {
        l = (uint64_t)h[2] << 8 | h[3];
        n = 4;
        assert_true(l >= 126);   /* minimal form */
    } else if (l == 127) {
        l = 0;
        for (int i = 0; i < 8; i++)
            l = l << 8 | h[2 + i];
        n = 10;
        assert_true(l >= 65536);
        assert_int_equal(h[2] & 0x80, 0);
    }
    memcpy(key, h + n, 4);
    *len = l;
    return n + 4;
}

static void test_header_forms(void **state)
{
    (void)state;
    const unsigned char key[4] = {0xde, 0xad, 0xbe, 0xef};
    uint64_t lens[] = {0, 1, 125, 126, 127, 65535, 65536, 262144 + 300, (1ull << 32) + 5};
    size_t want[] = {6, 6, 6, 8, 8, 8, 14, 14, 14};
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        unsigned char h[WS_FRAME_HDR_MAX];
        int fin, op;
        uint64_t len;
        unsigned char k[4];
        size_t n = ws_frame_header(h, WS_OP_BINARY, i % 2, lens[i], key);
        assert_int_equal(n, want[i]);
        assert_int_equal(parse(h, &fin, &op, &len, k), n);
        assert_int_equal(fin, (int)(i % 2));
        assert_int_equal(op, WS_OP_BINARY);
        assert_true(len == lens[i]);
        assert_memory_equal(k, key, 4);
    }
    unsigned char h[WS_FRAME_HDR_MAX];
    int fin, op;
    uint64_t len;
    unsigned char k[4];
    ws_frame_header(h, WS_OP_CONT, 1, 5, key);
    parse(h, &fin, &op, &len, k);
    assert_int_equal(op, WS_OP_CONT);
    ws_frame_header(h, WS_OP_TEXT, 1, 5, key);
    parse(h, &fin, &op, &len, k);
    assert_int_equal(op, WS_OP_TEXT);
}

/* Keys come from the CSPRNG: across many batches, no key repeats often (4096 keys of 32
 * bits: a repeat is a ~0.2 % event, two would mean a broken source). */
static void test_keys_vary(void **state)
{
    (void)state;
    struct ws_keys k;
    ws_keys_init(&k);
    enum { N = 4096 };
    uint32_t *v = calloc(N, sizeof *v);
    assert_non_null(v);
    for (int i = 0; i < N; i++) {
        unsigned char key[4];
        assert_int_equal(ws_keys_next(&k, key), 0);
        memcpy(&v[i], key, 4);
    }
    int same = 0;
    for (int i = 0; i < N; i++)
        for (int j = i + 1; j < N; j++)
            same += v[i] == v[j];
    assert_true(same <= 1);
    free(v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mask_matches_byte_rule),
        cmocka_unit_test(test_mask_in_pieces),
        cmocka_unit_test(test_header_forms),
        cmocka_unit_test(test_keys_vary),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
