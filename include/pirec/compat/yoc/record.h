/*
 * yoc/record.h (pirec compat): lets code written for the SDK's record module compile
 * unchanged against pirec: add -I<prefix>/include/pirec/compat (pkg-config
 * --cflags pirec-record-compat gives it) and keep `#include <yoc/record.h>`.
 * Everything is declared by pirec/record.h (same names and signatures, plus pirec's
 * additions); see it for threads and ownership.
 */
#ifndef PIREC_COMPAT_YOC_RECORD_H
#define PIREC_COMPAT_YOC_RECORD_H
#include "../../record.h"
#endif
