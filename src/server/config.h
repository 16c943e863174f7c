/*
 * config: the INI file of `pirec serve --config FILE` (inih). Every key has a default, so
 * no file is needed. Unknown sections or keys, bad values: an error naming the line and
 * the problem ("pirec.ini:7: rate: '19k' is not a number of Hz").
 *
 *   [server]
 *   listen = 0.0.0.0:8080
 *   recordings = ./recordings
 *   state_dir = ~/.local/state/pirec      (holds jwt.key, mode 0600)
 *   lease_seconds = 300
 *   preroll_seconds = 5
 *   max_take_seconds = 21600
 *   min_free_mb = 256
 *   flush_ms = 2000
 *   name_pattern = %D_%Y-%m-%dT%H-%M-%S%z
 *   proc_asound = /proc/asound
 *   demo = false
 *   allowed_hosts =                       (extra names the page may be opened by)
 *   max_connections = 256                 (all clients together; past it: 503)
 *   max_connections_per_client = 32       (one address; past it: 503)
 *   max_event_streams = 64                (SSE, all clients together)
 *   max_event_streams_per_client = 8
 *   header_timeout_seconds = 10           (a request's headers must arrive by then: 408)
 *   gap_fill = true                     (lost frames become silence at their place)
 *
 *   [forward]                           (optional: mirror every take to a `pirec ingest`)
 *   url = ws://nas.local:9090/          (or wss://; must end with '/')
 *   recorder = stage-pi                 (folder name on the ingest; default: host name)
 *   ca_file = /etc/pirec/nas-ca.pem     (wss://: the CAs to trust; default: the system's)
 *   pin = sha256:64HEX                  (wss://: also require this key/certificate hash)
 *
 *   [device scarlett]
 *   pcm = hw:CARD=USB
 *   name = Piano left                   (shown on the page; default: the card's name)
 *   format = S32_LE
 *   rate = 192000
 *   channels = 2
 *   bits = 24
 *   stall_seconds = 0                     (no audio that long = stalled; 0 auto, off)
 *   forward = off                       (or a ws:// URL of its own; default: [forward])
 *
 * Threads: load on the main thread before anything starts; read-only afterwards.
 */
#ifndef PIREC_SERVER_CONFIG_H
#define PIREC_SERVER_CONFIG_H

#include "audio/format.h"

#include <stdint.h>

#define CONFIG_MAX_DEVICES 16

struct device_config {
    char id[64];
    char pcm[96];          /* ALSA PCM, or "tone" for a demo tone device */
    struct audio_format format;  /* fields 0/SF_UNKNOWN = device's best */
    unsigned bits;         /* stored FLAC depth, 0 = auto */
    int stall_ms;          /* stall_seconds: silence that makes a stall; 0 auto, -1 off */
    char forward[512];     /* "" = [forward] url, "off" = not forwarded, else a URL */
    char name[64];         /* shown to people ("Piano left"); "" = from the card or pcm */
};

struct server_config {
    char listen[128];
    char recordings[4096];
    char state_dir[4096];
    unsigned lease_seconds;
    unsigned takeover_after_seconds;   /* 5..3600, default 120 (docs/api.md) */
    unsigned preroll_seconds;
    unsigned max_take_seconds;
    uint64_t min_free_bytes;
    unsigned flush_ms;
    char name_pattern[256];
    char proc_asound[4096];
    int demo;
    char allowed_hosts[1024];
    unsigned max_connections;
    unsigned max_connections_per_client;
    unsigned max_event_streams;
    unsigned max_event_streams_per_client;
    unsigned header_timeout_seconds;
    int gap_fill;          /* default 1 */
    char forward_url[512]; /* "" = no forwarding */
    char forward_recorder[64];
    char forward_ca_file[4096]; /* "" = the system's CAs */
    char forward_pin[80];       /* "" = no pin; else as record_set_tls() */
    struct device_config devices[CONFIG_MAX_DEVICES];
    unsigned n_devices;
};

void config_defaults(struct server_config *cfg);
/* The forwarding URL of a device ("" = not forwarded). */
const char *config_forward_url(const struct server_config *cfg, const char *device_id);
/* 0, or -EINVAL with a message in err ("FILE:LINE: problem"), -errno if unreadable. */
int config_load(const char *path, struct server_config *cfg, char *err, size_t err_len);

#endif
