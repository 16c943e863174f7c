/*
 * forward_resume: the forwarder's memory across restarts (forward.h, forward_state.h).
 *
 * When a copy's state file is written, and why that order loses nothing after a crash at
 * any point and duplicates nothing at the ingest:
 *   - SAVED_OPEN, on the take's thread as its file is created, before it can hold a frame
 *     (so before any byte can reach the ingest): a crash from then on finds the take,
 *     repaired by the next start, and resumes its copy;
 *   - SAVED_CLOSED, once the take finished it, with the name it finished it under;
 *   - SAVED_VERIFYING, when every byte is stored remotely, before the head is first sent:
 *     the ingest may move the verified copy out of its flat name from then on, so a
 *     restart must only resend the head (which the ingest checks again, idempotently);
 *   - removed when the copy is complete or lost.
 * The byte offset is never kept: a resumed stream asks the ingest how much it stores
 * (record_get_server_size) before it reads a byte, and continues from exactly there.
 */
#include "common/log.h"
#include "server/forward_int.h"
#include "server/forward_state.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

static int ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a > b && strcmp(s + a - b, suffix) == 0;
}

void fwd_persist(struct fwd_job *j, enum fwd_saved_phase phase)
{
    struct forwarder *f = j->f;
    if (!f->state_dir[0] || j->saved >= phase)
        return;
    struct forward_saved s;
    memset(&s, 0, sizeof s);
    snprintf(s.url, sizeof s.url, "%s", j->url);
    snprintf(s.device, sizeof s.device, "%s", j->info.device);
    snprintf(s.file, sizeof s.file, "%s", j->info.file);
    snprintf(s.final_name, sizeof s.final_name, "%s", j->final_name);
    if (phase >= SAVED_CLOSED) {
        pthread_mutex_lock(&f->lock);
        snprintf(s.local, sizeof s.local, "%s", j->closed_name);
        pthread_mutex_unlock(&f->lock);
    } else {
        snprintf(s.local, sizeof s.local, "%s", j->part_name);
    }
    s.verifying = phase == SAVED_VERIFYING;
    int rc = forward_state_save(f->state_dir, j->name, &s);
    if (rc < 0 && !j->save_warned) {
        log_warn("forward", "%s: cannot keep its forwarding state in %s/forward: %s; if "
                 "pirec serve stops before the copy is complete, it is not resumed",
                 j->info.file, f->state_dir, strerror(-rc));
        j->save_warned = 1;
    }
    j->saved = phase;
}

void fwd_forget(struct fwd_job *j)
{
    if (!j->f->state_dir[0] || j->saved == SAVED_NONE)
        return;
    int rc = forward_state_remove(j->f->state_dir, j->name);
    if (rc < 0)
        log_warn("forward", "%s: cannot remove its forwarding state file in %s/forward: %s",
                 j->info.file, j->f->state_dir, strerror(-rc));
    j->saved = SAVED_NONE;
}

/* STREAMINFO's total samples (36 bits): what the finished file holds. */
static uint64_t total_samples(const uint8_t *h)
{
    return ((uint64_t)(h[21] & 0x0f) << 32) | ((uint64_t)h[22] << 24) |
           ((uint64_t)h[23] << 16) | ((uint64_t)h[24] << 8) | h[25];
}

struct resume_ctx {
    struct forwarder *f;
    const char *dir;
    int resumed;
};

/* A copy that cannot be resumed: said once, shown as lost, forgotten. */
static void give_up(struct forwarder *f, struct fwd_job *j, const char *stream,
                    const char *why)
{
    log_err("forward", "%s: its unfinished remote copy (%s) cannot be resumed: %s", j->info.file,
            j->url, why);
    forward_state_remove(f->state_dir, stream);
    j->info.state = FORWARD_LOST;
    j->finished = 1;
    fwd_job_add(f, j);
}

static void resume_one(const char *stream, const struct forward_saved *s, void *arg)
{
    struct resume_ctx *c = arg;
    struct forwarder *f = c->f;
    struct fwd_job *j = fwd_job_new(f, s->url, s->device, s->file);
    if (!j) {
        log_err("forward", "%s: out of memory: its copy is not resumed now", s->file);
        return;
    }
    snprintf(j->final_name, sizeof j->final_name, "%s", s->final_name[0] ? s->final_name
                                                                          : s->file);
    /* a .part was finished by the repair at start-up, under its final name */
    int was_part = ends_with(s->local, ".part");
    const char *name = was_part ? j->final_name : s->local;
    char path[4096];
    int rc = (size_t)snprintf(path, sizeof path, "%s/%s", c->dir, name) >= sizeof path
                 ? -ENAMETOOLONG
                 : fwd_job_open(j, path, stream);
    if (rc < 0) {
        char part[4096];
        struct stat sb;
        int part_left = was_part && (size_t)snprintf(part, sizeof part, "%s/%s", c->dir,
                                                     s->local) < sizeof part &&
                        stat(part, &sb) == 0;
        if (rc == -ENOENT && was_part && !part_left) {
            /* no frame reached it: the take replaced it (a depth switch) or the repair
             * removed it as empty after a crash; nothing to forward */
            log_info("forward", "%s: no audio was written to %s; nothing to resume",
                     s->file, s->local);
            forward_state_remove(f->state_dir, stream);
            fwd_job_free(j);
            return;
        }
        char why[8300];
        snprintf(why, sizeof why, "%s %s (%s)",
                 part_left ? "the repair could not finish the local file" : "no local file",
                 part_left ? s->local : path, strerror(-rc));
        give_up(f, j, stream, why);
        return;
    }
    snprintf(j->part_name, sizeof j->part_name, "%s", s->local);
    snprintf(j->closed_name, sizeof j->closed_name, "%s", name);
    j->closed = 1;
    j->frames = total_samples(j->header);
    j->resume = !s->verifying;
    j->resume_verify = s->verifying;
    /* the file found under its final name is what the state file says from now on */
    j->saved = s->verifying ? SAVED_VERIFYING : was_part ? SAVED_OPEN : SAVED_CLOSED;
    log_info("forward", "%s: resuming its remote copy to %s (%s)", j->info.file, j->url,
             s->verifying ? "only its verification was left" : "the rest of the file");
    fwd_job_add(f, j);
    c->resumed++;
}

int forwarder_resume(struct forwarder *f, const char *recordings)
{
    if (!f || !f->state_dir[0])
        return 0;
    struct resume_ctx c = {.f = f, .dir = recordings};
    int rc = forward_state_load_all(f->state_dir, resume_one, &c);
    if (rc < 0) {
        log_err("forward", "cannot read %s/forward: %s; unfinished copies are not resumed",
                f->state_dir, strerror(-rc));
        return rc;
    }
    return c.resumed;
}
