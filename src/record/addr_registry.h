/*
 * addr_registry: the rings and memory blocks this process made known, so that the
 * addresses in ringbuffer:// and mem:// URLs are checked against them instead of being
 * dereferenced blindly.
 *
 * Owned by the record module. Rings are added by ringbuffer_create() and removed by
 * ringbuffer_destroy(); memory blocks by record_register_memory() /
 * record_unregister_memory() (include/pirec/record.h). Every function takes one global
 * mutex and may be called from any thread. Entries are addresses only: nothing here
 * dereferences them.
 *
 * A number that names no registered address exactly but fits in 32 bits is matched by the
 * low 32 bits of the registered addresses (the SDK's callers print addresses with %u and a
 * uint32_t cast, which truncates a 64-bit pointer): it resolves when exactly one entry
 * matches. Ambiguous or unknown numbers resolve to nothing, with one log line.
 */
#ifndef PIREC_RECORD_ADDR_REGISTRY_H
#define PIREC_RECORD_ADDR_REGISTRY_H

#include <stddef.h>
#include <stdint.h>

enum rec_addr_kind { REC_ADDR_RING = 1, REC_ADDR_MEM };

/* 0, -EINVAL (NULL or size 0), -ENOMEM. Registering an address again replaces its size. */
int rec_addr_add(enum rec_addr_kind kind, const void *addr, size_t size);
/* 0 or -ENOENT. */
int rec_addr_remove(enum rec_addr_kind kind, const void *addr);

/* Resolves `value` (from a URL) to a registered ring: 0 and *out, or -ENOENT / -EINVAL
 * (ambiguous), after logging why. */
int rec_addr_resolve_ring(uint64_t value, uintptr_t *out);
/* Resolves a block [value, value + size) inside one registered memory block. */
int rec_addr_resolve_mem(uint64_t value, uint64_t size, uintptr_t *out);

#endif
