/*
 * addr_registry: see addr_registry.h. A small array under a mutex: a process has a handful
 * of rings and blocks, and lookups happen at record_register() / record_start() only.
 */
#include "record/addr_registry.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>

#include "common/log.h"

struct entry {
    enum rec_addr_kind kind;
    uintptr_t addr;
    size_t size;
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static struct entry *entries;
static size_t count, cap;

int rec_addr_add(enum rec_addr_kind kind, const void *addr, size_t size)
{
    if (!addr || !size)
        return -EINVAL;
    uintptr_t a = (uintptr_t)addr;
    int rc = 0;
    pthread_mutex_lock(&mu);
    size_t i = 0;
    while (i < count && !(entries[i].kind == kind && entries[i].addr == a))
        i++;
    if (i == count) {
        if (count == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            struct entry *n = realloc(entries, ncap * sizeof *n);
            if (!n) {
                rc = -ENOMEM;
                goto out;
            }
            entries = n;
            cap = ncap;
        }
        count++;
    }
    entries[i] = (struct entry){kind, a, size};
out:
    pthread_mutex_unlock(&mu);
    return rc;
}

int rec_addr_remove(enum rec_addr_kind kind, const void *addr)
{
    uintptr_t a = (uintptr_t)addr;
    int rc = -ENOENT;
    pthread_mutex_lock(&mu);
    for (size_t i = 0; i < count; i++)
        if (entries[i].kind == kind && entries[i].addr == a) {
            entries[i] = entries[--count];
            rc = 0;
            break;
        }
    if (count == 0) {   /* nothing left: give the memory back (keeps leak checkers quiet) */
        free(entries);
        entries = NULL;
        cap = 0;
    }
    pthread_mutex_unlock(&mu);
    return rc;
}

/* Where `value` would point inside entry e if it is e's address (or an address in e's
 * block) given in full, or given by its low 32 bits only. */
static int match(const struct entry *e, uint64_t value, uint64_t size, int low32,
                 uintptr_t *at)
{
    uint64_t v = value;
    if (low32) {
        if (value > UINT32_MAX)
            return 0;
        v = ((uint64_t)e->addr & ~(uint64_t)UINT32_MAX) | value;
    }
    if (v < e->addr || v - e->addr >= e->size || size > e->size - (v - e->addr))
        return 0;
    *at = (uintptr_t)v;
    return 1;
}

static int resolve(enum rec_addr_kind kind, uint64_t value, uint64_t size, uintptr_t *out)
{
    const char *what = kind == REC_ADDR_RING ? "ringbuffer://handle" : "mem://address";
    int rc = -ENOENT;
    pthread_mutex_lock(&mu);
    for (int low32 = 0; low32 < 2 && rc == -ENOENT; low32++) {
        int hits = 0;
        uintptr_t at = 0, first = 0;
        for (size_t i = 0; i < count; i++) {
            const struct entry *e = &entries[i];
            /* a ring is named by its own address, not by one inside it */
            if (e->kind == kind && match(e, value, size, low32, &at) &&
                (kind != REC_ADDR_RING || at == e->addr)) {
                if (!hits++)
                    first = at;
            }
        }
        if (hits == 1) {
            *out = first;
            rc = 0;
            if (low32 && first != value)
                log_info("record", "%s=%" PRIu64 " matches the registered address 0x%" PRIxPTR
                         " by its low 32 bits (an address printed with %%u); using it",
                         what, value, first);
        } else if (hits > 1) {
            log_err("record", "%s=%" PRIu64 " is ambiguous: %d registered addresses share "
                    "those low 32 bits; print the full address (0x%%llx)", what, value, hits);
            rc = -EINVAL;
        }
    }
    pthread_mutex_unlock(&mu);
    if (rc == -ENOENT) {
        if (kind == REC_ADDR_RING)
            log_err("record", "%s=0x%" PRIx64 " names no ring of this process: create it with "
                    "ringbuffer_create() first (and do not destroy it before the handle stops)",
                    what, value);
        else
            log_err("record", "%s=0x%" PRIx64 "&size=%" PRIu64 " is not inside a registered "
                    "memory block: call record_register_memory(address, size) first",
                    what, value, size);
    }
    return rc;
}

int rec_addr_resolve_ring(uint64_t value, uintptr_t *out)
{
    return resolve(REC_ADDR_RING, value, 1, out);
}

int rec_addr_resolve_mem(uint64_t value, uint64_t size, uintptr_t *out)
{
    return resolve(REC_ADDR_MEM, value, size, out);
}
