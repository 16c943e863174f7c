/* source_spec: the grammar of a source. See source_spec.h. */
#include "audio/source_spec.h"

#include "common/numparse.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define FILE_PREFIX "file:"
#define KEYS "realtime, loop, fail_at, stall_at, stall_ms, pace_percent"

enum file_key { K_REALTIME, K_LOOP, K_FAIL_AT, K_STALL_AT, K_STALL_MS, K_PACE, K_COUNT };

static const struct {
    const char *name;
    unsigned long long min, max;
} FILE_KEYS[K_COUNT] = {
    [K_REALTIME] = {"realtime", 0, 1},
    [K_LOOP] = {"loop", 0, 1},
    [K_FAIL_AT] = {"fail_at", 0, UINT64_MAX},
    [K_STALL_AT] = {"stall_at", 0, UINT64_MAX},
    [K_STALL_MS] = {"stall_ms", 0, 600000},
    [K_PACE] = {"pace_percent", 1, 100},
};

static int fail(char *err, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t n, const char *fmt, ...)
{
    if (err && n) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, n, fmt, ap);
        va_end(ap);
    }
    return -EINVAL;
}

static void set_key(struct file_source_options *o, enum file_key k, unsigned long long v)
{
    switch (k) {
    case K_REALTIME: o->realtime = (int)v; break;
    case K_LOOP: o->loop = (int)v; break;
    case K_FAIL_AT: o->fail_at_frame = v; break;
    case K_STALL_AT: o->stall_at_frame = v; break;
    case K_STALL_MS: o->stall_ms = (unsigned)v; break;
    case K_PACE: o->pace_percent = (unsigned)v; break;
    case K_COUNT: break;
    }
}

/* One "KEY=N" of length len at p (not NUL-terminated). */
static int parse_option(const char *p, size_t len, struct file_source_options *o,
                        unsigned *seen, char *err, size_t n)
{
    if (len == 0)
        return fail(err, n, "an empty option (two '&' in a row, or '?' or '&' at the end); "
                    "write file:PATH?KEY=N&KEY=N");
    const char *eq = memchr(p, '=', len);
    size_t klen = eq ? (size_t)(eq - p) : len;
    int k = 0;
    while (k < K_COUNT && (strlen(FILE_KEYS[k].name) != klen ||
                           memcmp(FILE_KEYS[k].name, p, klen) != 0))
        k++;
    if (k == K_COUNT)
        return fail(err, n, "unknown option '%.*s' of a file source (known: " KEYS ")",
                    (int)klen, p);
    if (!eq)
        return fail(err, n, "option %s needs a value: %s=N", FILE_KEYS[k].name,
                    FILE_KEYS[k].name);
    if (*seen & (1u << k))
        return fail(err, n, "option %s is given twice", FILE_KEYS[k].name);
    *seen |= 1u << k;
    char num[32];
    size_t vlen = len - klen - 1;
    unsigned long long v = 0;
    snprintf(num, sizeof(num), "%.*s", (int)(vlen < sizeof(num) - 1 ? vlen : sizeof(num) - 1),
             eq + 1);
    if (vlen >= sizeof(num))      /* longer than any number in range */
        num[sizeof(num) - 2] = 'x';
    if (parse_option_ull(FILE_KEYS[k].name, num, FILE_KEYS[k].min, FILE_KEYS[k].max, &v, err,
                         n) < 0)
        return -EINVAL;
    set_key(o, (enum file_key)k, v);
    return 0;
}

static int parse_file(const char *p, struct source_spec *out, char *err, size_t n)
{
    const char *q = strchr(p, '?');
    size_t plen = q ? (size_t)(q - p) : strlen(p);
    if (plen == 0)
        return fail(err, n, "file: needs a path (file:PATH, e.g. file:/srv/take.wav)");
    if (plen >= sizeof(out->name))
        return fail(err, n, "the file path is longer than %zu bytes", sizeof(out->name) - 1);
    memcpy(out->name, p, plen);
    out->name[plen] = 0;
    unsigned seen = 0;
    while (q) {
        const char *opt = q + 1;
        q = strchr(opt, '&');
        size_t len = q ? (size_t)(q - opt) : strlen(opt);
        if (parse_option(opt, len, &out->fopt, &seen, err, n) < 0)
            return -EINVAL;
    }
    int at = (seen >> K_STALL_AT) & 1, ms = (seen >> K_STALL_MS) & 1;
    if (at != ms)
        return fail(err, n, "stall_at and stall_ms go together (stall_at=FRAME&stall_ms=MS)");
    return 0;
}

int source_spec_parse(const char *text, int default_realtime, struct source_spec *out,
                      char *err, size_t err_len)
{
    if (err && err_len)
        err[0] = 0;
    if (!out)
        return -EINVAL;
    memset(out, 0, sizeof(*out));
    if (!text || !*text)
        return fail(err, err_len, "no source: write tone, file:PATH[?KEY=N&...] or an ALSA "
                    "PCM name such as hw:CARD=USB,DEV=0");
    for (const unsigned char *c = (const unsigned char *)text; *c; c++)
        if (*c < 0x20 || *c == 0x7f)
            return fail(err, err_len, "the source contains a control character");
    if (strcmp(text, "tone") == 0) {
        out->kind = SOURCE_TONE;
        snprintf(out->name, sizeof(out->name), "tone");
        return 0;
    }
    if (strncmp(text, FILE_PREFIX, strlen(FILE_PREFIX)) == 0) {
        out->kind = SOURCE_FILE;
        out->fopt.realtime = default_realtime != 0;
        return parse_file(text + strlen(FILE_PREFIX), out, err, err_len);
    }
    if (strncmp(text, "tone?", 5) == 0)
        return fail(err, err_len, "the tone takes no options (just: tone)");
    if (strlen(text) >= sizeof(out->name))
        return fail(err, err_len, "the PCM name is longer than %zu bytes",
                    sizeof(out->name) - 1);
    out->kind = SOURCE_ALSA;
    snprintf(out->name, sizeof(out->name), "%s", text);
    return 0;
}

int source_spec_open(const struct source_spec *spec, const char *alsa_conf,
                     const struct audio_format *want, struct audio_source **out)
{
    switch (spec->kind) {
    case SOURCE_TONE: return audio_source_open_tone(out, want);
    case SOURCE_FILE: return audio_source_open_file(out, spec->name, want, &spec->fopt);
    case SOURCE_ALSA: return audio_source_open_alsa(out, spec->name, alsa_conf, want);
    }
    return -EINVAL;
}
