/*
 * config: inih calls handler() per key; the handler validates strictly and keeps the first
 * problem. Lines are counted by our own reader around fgets (inih's handler gets no line
 * number in Debian's build); a syntax error inih finds itself is placed by ini_parse's
 * return value.
 */
#include "server/config.h"

#include "audio/source_spec.h"
#include "common/listen_addr.h"
#include "common/numparse.h"
#include "common/utf8.h"
#include "server/origin.h"

#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <limits.h>
#include <pwd.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

static void copy_str(char *dst, size_t n, const char *src)
{
    snprintf(dst, n, "%s", src);
}

static const char *home_dir(void)
{
    const char *h = getenv("HOME");
    if (h && *h)
        return h;
    struct passwd *pw = getpwuid(getuid());
    return pw && pw->pw_dir && *pw->pw_dir ? pw->pw_dir : NULL;
}

static int valid_device_id(const char *s);

void config_defaults(struct server_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    copy_str(cfg->listen, sizeof(cfg->listen), "0.0.0.0:8080");
    copy_str(cfg->recordings, sizeof(cfg->recordings), "./recordings");
    const char *xdg = getenv("XDG_STATE_HOME");
    const char *home = getenv("HOME");
    if (xdg && xdg[0] == '/')
        snprintf(cfg->state_dir, sizeof(cfg->state_dir), "%s/pirec", xdg);
    else if (home && *home)
        snprintf(cfg->state_dir, sizeof(cfg->state_dir), "%s/.local/state/pirec", home);
    else if (geteuid() == 0)
        copy_str(cfg->state_dir, sizeof(cfg->state_dir), "/var/lib/pirec");
    else if ((home = home_dir()))
        snprintf(cfg->state_dir, sizeof(cfg->state_dir), "%s/.local/state/pirec", home);
    else
        copy_str(cfg->state_dir, sizeof(cfg->state_dir), "./.pirec-state");
    cfg->lease_seconds = 300;
    cfg->takeover_after_seconds = 120;
    cfg->preroll_seconds = 5;
    cfg->max_take_seconds = 21600;
    cfg->min_free_bytes = 256ull << 20;
    cfg->flush_ms = 2000;
    copy_str(cfg->name_pattern, sizeof(cfg->name_pattern), "%D_%Y-%m-%dT%H-%M-%S%z");
    copy_str(cfg->proc_asound, sizeof(cfg->proc_asound), "/proc/asound");
    cfg->demo = 0;
    cfg->max_connections = 256;
    cfg->max_connections_per_client = 32;
    cfg->max_event_streams = 64;
    cfg->max_event_streams_per_client = 8;
    cfg->header_timeout_seconds = 10;
    cfg->gap_fill = 1;
    char host[64] = "";
    if (gethostname(host, sizeof host - 1) < 0 || !valid_device_id(host))
        copy_str(host, sizeof host, "pirec");
    copy_str(cfg->forward_recorder, sizeof(cfg->forward_recorder), host);
}

const char *config_forward_url(const struct server_config *cfg, const char *device_id)
{
    for (unsigned i = 0; i < cfg->n_devices; i++)
        if (strcmp(cfg->devices[i].id, device_id) == 0 && cfg->devices[i].forward[0])
            return strcmp(cfg->devices[i].forward, "off") == 0 ? "" : cfg->devices[i].forward;
    return cfg->forward_url;
}

/* ws://host[:port]/[path/] or wss://...: the stream names are appended to it. The record
 * module checks the rest when the first take is forwarded. */
static int valid_forward_url(const char *v, size_t max)
{
    const char *rest = strncmp(v, "ws://", 5) == 0 ? v + 5 : strncmp(v, "wss://", 6) == 0 ? v + 6 : NULL;
    size_t n = strlen(v);
    return rest && n < max && *rest && *rest != '/' && strchr(rest, '/') && v[n - 1] == '/' &&
           !strpbrk(v, "?#% @");
}

/* [forward] pin: what record_set_tls() takes ("sha256:" optional, 64 hex digits). */
static int valid_pin(const char *v)
{
    if (strncasecmp(v, "sha256:", 7) == 0)
        v += 7;
    if (strlen(v) != 64)
        return 0;
    for (; *v; v++)
        if (!isxdigit((unsigned char)*v))
            return 0;
    return 1;
}

/* [forward] ca_file: NULL when usable, else why not (checked now, not at the first take). */
static const char *forward_ca_problem(const char *path, size_t max)
{
    if (!*path || strlen(path) >= max)
        return "is empty or too long";
    FILE *fp = fopen(path, "re");
    if (!fp)
        return errno == ENOENT ? "does not exist" : "cannot be read";
    char line[256];
    int pem = 0;
    while (!pem && fgets(line, sizeof line, fp))
        pem = strncmp(line, "-----BEGIN CERTIFICATE-----", 27) == 0;
    fclose(fp);
    return pem ? NULL : "holds no PEM certificate";
}

/* ---- value parsers: 0 or -EINVAL; the caller words the message -------------------------- */

static int parse_uint(const char *v, unsigned long long max, unsigned long long *out)
{
    if (!v || !isdigit((unsigned char)v[0]))
        return -EINVAL;
    errno = 0;
    char *end;
    unsigned long long x = strtoull(v, &end, 10);
    if (errno || *end || x > max)
        return -EINVAL;
    *out = x;
    return 0;
}

/* "256", "256M", "1G", "512k" (binary units). Plain numbers are in `unit` bytes. */
static int parse_size(const char *v, uint64_t unit, uint64_t *out)
{
    if (!v || !isdigit((unsigned char)v[0]))
        return -EINVAL;
    errno = 0;
    char *end;
    unsigned long long x = strtoull(v, &end, 10);
    if (errno)
        return -EINVAL;
    uint64_t mul = unit;
    if (*end) {
        switch (toupper((unsigned char)*end)) {
        case 'K': mul = 1ull << 10; break;
        case 'M': mul = 1ull << 20; break;
        case 'G': mul = 1ull << 30; break;
        case 'T': mul = 1ull << 40; break;
        default: return -EINVAL;
        }
        end++;
        if ((*end == 'i' || *end == 'I') && (end[1] == 'B' || end[1] == 'b'))
            end += 2;
        else if (*end == 'B' || *end == 'b')
            end++;
        if (*end)
            return -EINVAL;
    }
    if (x > UINT64_MAX / mul)
        return -EINVAL;
    *out = x * mul;
    return 0;
}

/* The capture watchdog's bound: "0" automatic (0), "off" (-1), or 0.1..3600 s (in ms). */
static int parse_stall_seconds(const char *v, int *ms)
{
    if (strcasecmp(v, "off") == 0) {
        *ms = -1;
        return 0;
    }
    if (!isdigit((unsigned char)v[0]))
        return -EINVAL;
    errno = 0;
    char *end;
    double x = strtod(v, &end);
    if (errno || *end || (x != 0 && (x < 0.1 || x > 3600)))
        return -EINVAL;
    *ms = (int)(x * 1000 + 0.5);
    return 0;
}

static int parse_bool(const char *v, int *out)
{
    static const char *yes[] = {"true", "yes", "1", "on"}, *no[] = {"false", "no", "0", "off"};
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(v, yes[i]) == 0) {
            *out = 1;
            return 0;
        }
        if (strcasecmp(v, no[i]) == 0) {
            *out = 0;
            return 0;
        }
    }
    return -EINVAL;
}

/* "~" and "~/..." become $HOME; anything else is kept. */
static int expand_path(const char *v, char *out, size_t n)
{
    if (!*v)
        return -EINVAL;
    if (v[0] == '~' && (v[1] == 0 || v[1] == '/')) {
        const char *home = home_dir();
        if (!home)
            return -ENOENT;
        if ((size_t)snprintf(out, n, "%s%s", home, v + 1) >= n)
            return -ENAMETOOLONG;
        return 0;
    }
    if ((size_t)snprintf(out, n, "%s", v) >= n)
        return -ENAMETOOLONG;
    return 0;
}

/* Device ids appear in URLs and file names. */
static int valid_device_id(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n >= 64 || s[0] == '.' || s[0] == '-')
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '_' && s[i] != '-' && s[i] != '.')
            return 0;
    return 1;
}

static int valid_listen(const char *v)
{
    char host[256];
    unsigned port;
    return listen_addr_parse(v, host, sizeof(host), &port) == 0;
}

/* The connection limits: name, field offset, range. */
static const struct {
    const char *key;
    size_t off;
    unsigned min, max;
} LIMITS[] = {
    {"max_connections", offsetof(struct server_config, max_connections), 4, 4096},
    {"max_connections_per_client", offsetof(struct server_config, max_connections_per_client), 2, 4096},
    {"max_event_streams", offsetof(struct server_config, max_event_streams), 1, 4096},
    {"max_event_streams_per_client", offsetof(struct server_config, max_event_streams_per_client), 1, 4096},
    {"header_timeout_seconds", offsetof(struct server_config, header_timeout_seconds), 1, 300},
};

/* ---- the parse --------------------------------------------------------------------------- */

struct parse_state {
    struct server_config *cfg;
    unsigned line;              /* line inih is on (counted by our reader) */
    int at_line_start;
    FILE *f;
    unsigned err_line;          /* 0 = no error yet */
    char err[512];
    unsigned device_line[CONFIG_MAX_DEVICES];
    int device_has_pcm[CONFIG_MAX_DEVICES];
    char last_section[128];
};

static char *line_reader(char *str, int num, void *stream)
{
    struct parse_state *ps = stream;
    if (!fgets(str, num, ps->f))
        return NULL;
    if (ps->at_line_start)
        ps->line++;
    size_t n = strlen(str);
    ps->at_line_start = n > 0 && str[n - 1] == '\n';
    return str;
}

__attribute__((format(printf, 2, 3)))
static int fail(struct parse_state *ps, const char *fmt, ...)
{
    if (ps->err_line == 0) {
        ps->err_line = ps->line ? ps->line : 1;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(ps->err, sizeof(ps->err), fmt, ap);
        va_end(ap);
    }
    return 0;   /* inih: error */
}

static const char SERVER_KEYS[] =
    "listen, recordings, state_dir, lease_seconds, takeover_after_seconds, preroll_seconds, max_take_seconds, "
    "min_free_mb, flush_ms, name_pattern, proc_asound, demo, allowed_hosts, max_connections, "
    "max_connections_per_client, max_event_streams, max_event_streams_per_client, "
    "header_timeout_seconds, gap_fill";

static int server_key(struct parse_state *ps, const char *key, const char *v)
{
    struct server_config *c = ps->cfg;
    unsigned long long x;
    int r;
    if (strcmp(key, "listen") == 0) {
        if (!valid_listen(v) || strlen(v) >= sizeof(c->listen))
            return fail(ps, "listen: '%s' is not ADDRESS:PORT, :PORT or PORT (e.g. 0.0.0.0:8080)", v);
        copy_str(c->listen, sizeof(c->listen), v);
    } else if (strcmp(key, "recordings") == 0 || strcmp(key, "state_dir") == 0 ||
               strcmp(key, "proc_asound") == 0) {
        char *dst = key[0] == 'r' ? c->recordings : key[0] == 's' ? c->state_dir : c->proc_asound;
        r = expand_path(v, dst, 4096);
        if (r == -EINVAL)
            return fail(ps, "%s: the path is empty", key);
        if (r == -ENOENT)
            return fail(ps, "%s: '%s' starts with ~ but HOME is not set", key, v);
        if (r < 0)
            return fail(ps, "%s: the path is too long", key);
    } else if (strcmp(key, "lease_seconds") == 0) {
        if (parse_uint(v, 86400, &x) < 0 || x < 1)
            return fail(ps, "lease_seconds: '%s' is not a number of seconds from 1 to 86400", v);
        c->lease_seconds = (unsigned)x;
    } else if (strcmp(key, "takeover_after_seconds") == 0) {
        if (parse_uint(v, 3600, &x) < 0 || x < 5)
            return fail(ps, "takeover_after_seconds: '%s' is not a number of seconds from 5 "
                        "to 3600", v);
        c->takeover_after_seconds = (unsigned)x;
    } else if (strcmp(key, "preroll_seconds") == 0) {
        if (parse_uint(v, 60, &x) < 0)
            return fail(ps, "preroll_seconds: '%s' is not a number of seconds from 0 to 60", v);
        c->preroll_seconds = (unsigned)x;
    } else if (strcmp(key, "max_take_seconds") == 0) {
        if (parse_uint(v, 7 * 86400, &x) < 0)
            return fail(ps, "max_take_seconds: '%s' is not a number of seconds from 0 (no "
                        "limit) to 604800", v);
        c->max_take_seconds = (unsigned)x;
    } else if (strcmp(key, "min_free_mb") == 0) {
        uint64_t b;
        if (parse_size(v, 1ull << 20, &b) < 0)
            return fail(ps, "min_free_mb: '%s' is not a number of MiB (e.g. 256, or 1G)", v);
        c->min_free_bytes = b;
    } else if (strcmp(key, "flush_ms") == 0) {
        if (parse_uint(v, 60000, &x) < 0 || x < 100)
            return fail(ps, "flush_ms: '%s' is not a number of milliseconds from 100 to 60000", v);
        c->flush_ms = (unsigned)x;
    } else if (strcmp(key, "name_pattern") == 0) {
        if (!*v || strchr(v, '/') || strlen(v) >= sizeof(c->name_pattern))
            return fail(ps, "name_pattern: '%s' must be a non-empty file name pattern without "
                        "'/' (e.g. %%D_%%Y-%%m-%%dT%%H-%%M-%%S%%z)", v);
        copy_str(c->name_pattern, sizeof(c->name_pattern), v);
    } else if (strcmp(key, "allowed_hosts") == 0) {
        char why[200];
        if (strlen(v) >= sizeof(c->allowed_hosts))
            return fail(ps, "allowed_hosts: the list is too long");
        if (origin_names_valid(v, why, sizeof(why)) < 0)
            return fail(ps, "allowed_hosts: %s (want host names separated by commas, e.g. "
                        "studio.lan, recorder)", why);
        copy_str(c->allowed_hosts, sizeof(c->allowed_hosts), v);
    } else if (strncmp(key, "max_", 4) == 0 || strcmp(key, "header_timeout_seconds") == 0) {
        for (size_t i = 0; i < sizeof(LIMITS) / sizeof(LIMITS[0]); i++) {
            if (strcmp(key, LIMITS[i].key) != 0)
                continue;
            unsigned u;
            if (parse_uint_range(v, LIMITS[i].min, LIMITS[i].max, &u) < 0)
                return fail(ps, "%s: '%s' is not a number from %u to %u", key, v,
                            LIMITS[i].min, LIMITS[i].max);
            *(unsigned *)((char *)c + LIMITS[i].off) = u;
            return 1;
        }
        return fail(ps, "unknown key '%s' in [server] (known: %s)", key, SERVER_KEYS);
    } else if (strcmp(key, "demo") == 0) {
        if (parse_bool(v, &c->demo) < 0)
            return fail(ps, "demo: '%s' is not true/false/yes/no/1/0", v);
    } else if (strcmp(key, "gap_fill") == 0) {
        if (parse_bool(v, &c->gap_fill) < 0)
            return fail(ps, "gap_fill: '%s' is not true/false/yes/no/1/0", v);
    } else {
        return fail(ps, "unknown key '%s' in [server] (known: %s)", key, SERVER_KEYS);
    }
    return 1;
}

static int forward_key(struct parse_state *ps, const char *key, const char *v)
{
    struct server_config *c = ps->cfg;
    if (strcmp(key, "url") == 0) {
        if (!valid_forward_url(v, sizeof(c->forward_url)))
            return fail(ps, "url: '%s' is not ws://HOST[:PORT]/ or wss://HOST[:PORT]/ (ending "
                        "with '/': the take's name is appended)", v);
        copy_str(c->forward_url, sizeof(c->forward_url), v);
    } else if (strcmp(key, "recorder") == 0) {
        if (!valid_device_id(v) || strlen(v) >= sizeof(c->forward_recorder))
            return fail(ps, "recorder: '%s' is not a usable folder name (letters, digits, '_', "
                        "'-', '.', at most 63, not starting with '.' or '-')", v);
        copy_str(c->forward_recorder, sizeof(c->forward_recorder), v);
    } else if (strcmp(key, "ca_file") == 0) {
        const char *why = forward_ca_problem(v, sizeof(c->forward_ca_file));
        if (why)
            return fail(ps, "ca_file: '%s' %s (a PEM file of the CA(s) that vouch for the "
                        "ingest's certificate)", v, why);
        copy_str(c->forward_ca_file, sizeof(c->forward_ca_file), v);
    } else if (strcmp(key, "pin") == 0) {
        if (!valid_pin(v))
            return fail(ps, "pin: '%s' is not 64 hex digits (the SHA-256 of the ingest "
                        "certificate's SPKI or of the certificate, DER), optionally after "
                        "\"sha256:\"", v);
        copy_str(c->forward_pin, sizeof(c->forward_pin), v);
    } else {
        return fail(ps, "unknown key '%s' in [forward] (known: url, recorder, ca_file, pin)",
                    key);
    }
    return 1;
}

static int device_key(struct parse_state *ps, struct device_config *d, int idx, const char *key,
                      const char *v)
{
    unsigned long long x;
    if (strcmp(key, "pcm") == 0) {
        struct source_spec spec;
        char why[256];
        if (*v && source_spec_parse(v, 1, &spec, why, sizeof(why)) < 0)
            return fail(ps, "pcm: '%s': %s", v, why);
        if (!*v || strlen(v) >= sizeof(d->pcm))
            return fail(ps, "pcm: '%s' must be an ALSA PCM name (e.g. hw:CARD=USB) or 'tone', "
                        "at most %zu characters", v, sizeof(d->pcm) - 1);
        copy_str(d->pcm, sizeof(d->pcm), v);
        ps->device_has_pcm[idx] = 1;
    } else if (strcmp(key, "format") == 0) {
        if (sample_format_parse(v, &d->format.sample) < 0)
            return fail(ps, "format: '%s' is not one of S16_LE, S24_3LE, S24_LE, S32_LE", v);
    } else if (strcmp(key, "rate") == 0) {
        if (parse_uint(v, 768000, &x) < 0 || x < 1000)
            return fail(ps, "rate: '%s' is not a number of Hz (1000 to 768000, e.g. 48000)", v);
        d->format.rate = (unsigned)x;
    } else if (strcmp(key, "channels") == 0) {
        if (parse_uint(v, AUDIO_MAX_CHANNELS, &x) < 0 || x < 1)
            return fail(ps, "channels: '%s' is not a number from 1 to %d", v, AUDIO_MAX_CHANNELS);
        d->format.channels = (unsigned)x;
    } else if (strcmp(key, "bits") == 0) {
        if (parse_uint(v, 32, &x) < 0 || (x != 0 && x != 16 && x != 24 && x != 32))
            return fail(ps, "bits: '%s' is not 16, 24, 32 or 0 (automatic)", v);
        d->bits = (unsigned)x;
    } else if (strcmp(key, "stall_seconds") == 0) {
        if (parse_stall_seconds(v, &d->stall_ms) < 0)
            return fail(ps, "stall_seconds: '%s' is not 0 (automatic: three buffer lengths, "
                        "at least 2 s), a number of seconds from 0.1 to 3600, or off", v);
    } else if (strcmp(key, "forward") == 0) {
        if (strcmp(v, "off") != 0 && !valid_forward_url(v, sizeof(d->forward)))
            return fail(ps, "forward: '%s' is neither 'off' nor ws://HOST[:PORT]/ or "
                        "wss://HOST[:PORT]/ ending with '/'", v);
        copy_str(d->forward, sizeof(d->forward), v);
    } else if (strcmp(key, "name") == 0) {
        char clean[sizeof(d->name)];
        size_t n = utf8_copy_printable(clean, sizeof(clean), v);
        if (n == 0 || n != strlen(v))
            return fail(ps, "name: '%s' must be 1 to %zu bytes of printable UTF-8 (e.g. "
                        "Piano left)", v, sizeof(d->name) - 1);
        copy_str(d->name, sizeof(d->name), clean);
    } else {
        return fail(ps, "unknown key '%s' in [device %s] (known: pcm, name, format, rate, "
                    "channels, bits, stall_seconds, forward)", key, d->id);
    }
    return 1;
}

static int handler(void *user, const char *section, const char *key, const char *value)
{
    struct parse_state *ps = user;
    struct server_config *c = ps->cfg;
    int new_section = strcmp(section, ps->last_section) != 0;
    if (new_section)
        copy_str(ps->last_section, sizeof(ps->last_section), section);
    if (strcmp(section, "server") == 0)
        return server_key(ps, key, value);
    if (strcmp(section, "forward") == 0)
        return forward_key(ps, key, value);
    if (strncmp(section, "device", 6) == 0 && (section[6] == ' ' || section[6] == '\t')) {
        const char *name = section + 7;
        while (*name == ' ' || *name == '\t')
            name++;
        if (!valid_device_id(name))
            return fail(ps, "[%s]: '%s' is not a usable device id (letters, digits, '_', '-', "
                        "'.', at most 63, not starting with '.' or '-')", section, name);
        int idx = -1;
        for (unsigned i = 0; i < c->n_devices; i++)
            if (strcmp(c->devices[i].id, name) == 0)
                idx = (int)i;
        if (idx >= 0 && new_section)
            return fail(ps, "[device %s] appears twice; merge the two sections", name);
        if (idx < 0) {
            if (c->n_devices >= CONFIG_MAX_DEVICES)
                return fail(ps, "too many [device] sections (at most %d)", CONFIG_MAX_DEVICES);
            idx = (int)c->n_devices++;
            memset(&c->devices[idx], 0, sizeof(c->devices[idx]));
            copy_str(c->devices[idx].id, sizeof(c->devices[idx].id), name);
            ps->device_line[idx] = ps->line;
        }
        return device_key(ps, &c->devices[idx], idx, key, value);
    }
    return fail(ps, "unknown section [%s] (known: [server], [forward], [device NAME])", section);
}

int config_load(const char *path, struct server_config *cfg, char *err, size_t err_len)
{
    if (err && err_len)
        err[0] = 0;
    if (!path || !cfg)
        return -EINVAL;
    struct parse_state ps = {.cfg = cfg, .at_line_start = 1};
    ps.f = fopen(path, "r");
    if (!ps.f) {
        int e = errno;
        if (err)
            snprintf(err, err_len, "%s: cannot read: %s", path, strerror(e));
        return -e;
    }
    int r = ini_parse_stream(line_reader, &ps, handler, &ps);
    fclose(ps.f);
    if (r > 0 && (ps.err_line == 0 || (unsigned)r < ps.err_line)) {
        /* inih's own complaint (no '=' or an unclosed '['), before any of ours. */
        if (err)
            snprintf(err, err_len, "%s:%d: syntax error: expected '[section]' or 'key = value'",
                     path, r);
        return -EINVAL;
    }
    if (r < 0) {
        if (err)
            snprintf(err, err_len, "%s: out of memory while reading", path);
        return -ENOMEM;
    }
    if (ps.err_line) {
        if (err)
            snprintf(err, err_len, "%s:%u: %s", path, ps.err_line, ps.err);
        return -EINVAL;
    }
    for (unsigned i = 0; i < cfg->n_devices; i++) {
        if (!ps.device_has_pcm[i]) {
            if (err)
                snprintf(err, err_len, "%s:%u: [device %s] has no pcm (e.g. pcm = hw:CARD=USB, "
                         "or pcm = tone)", path, ps.device_line[i], cfg->devices[i].id);
            return -EINVAL;
        }
    }
    return 0;
}
