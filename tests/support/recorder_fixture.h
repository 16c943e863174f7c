/* recorder_fixture: what the unit tests of the recorder core (test_recorder.c, test_api.c)
 * share: a throw-away folder, and a configuration whose recordings, state and fake
 * /proc/asound (with no card, so that real cards never get in the way) lie in it.
 * Include after cmocka.h. Header only: nothing to link. */
#ifndef PIREC_TESTS_RECORDER_FIXTURE_H
#define PIREC_TESTS_RECORDER_FIXTURE_H

#include "server/config.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

/* dir (n bytes, >= 32) gets /tmp/pirec-NAME-XXXXXX, made; cfg the defaults pointing into
 * it, with 1 MiB as the free-space floor. */
static inline void fixture_folder(char *dir, size_t n, const char *name,
                                  struct server_config *cfg)
{
    snprintf(dir, n, "/tmp/pirec-%s-XXXXXX", name);
    assert_non_null(mkdtemp(dir));
    config_defaults(cfg);
    snprintf(cfg->recordings, sizeof(cfg->recordings), "%s/rec", dir);
    snprintf(cfg->state_dir, sizeof(cfg->state_dir), "%s/state", dir);
    snprintf(cfg->proc_asound, sizeof(cfg->proc_asound), "%s/asound", dir);
    assert_int_equal(mkdir(cfg->proc_asound, 0755), 0);
    char p[sizeof(cfg->proc_asound) + 16];
    snprintf(p, sizeof(p), "%s/cards", cfg->proc_asound);
    FILE *c = fopen(p, "w");
    assert_non_null(c);
    fputs("--- no soundcards ---\n", c);
    fclose(c);
    cfg->min_free_bytes = 1 << 20;
}

/* Removes the folder and everything in it. */
static inline void fixture_folder_remove(const char *dir)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

#endif
