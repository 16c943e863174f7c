/*
 * aos/ringbuffer.h (pirec compat): the SDK's dev_ringbuf_t and ringbuffer_* calls, from
 * pirec/ringbuffer.h (same names and signatures). Add -I<prefix>/include/pirec/compat and
 * keep `#include <aos/ringbuffer.h>`. Rings made with ringbuffer_create() are registered,
 * so a ringbuffer://handle= URL that names them (even by the low 32 bits of the address,
 * as the SDK's callers print it) resolves; see pirec/ringbuffer.h.
 */
#ifndef PIREC_COMPAT_AOS_RINGBUFFER_H
#define PIREC_COMPAT_AOS_RINGBUFFER_H
#include "../../ringbuffer.h"
#endif
