/*
 * ingest proto: the pure parts of `pirec ingest` that are not the wire protocol itself
 * (that is record/wsproto.h, shared with the client), kept apart from the socket code so
 * that unit tests can drive them.
 *
 * Owner: "C" (pirec ingest). No state, no allocation except inside the JSON helpers
 * (jansson); any thread may call these.
 */
#ifndef PIREC_INGEST_PROTO_H
#define PIREC_INGEST_PROTO_H

#include <stddef.h>
#include <stdint.h>

#include "record/wsproto.h"

/* Parses the listen grammar of common/listen_addr.h ("ADDR:PORT", "[V6]:PORT", ":PORT" or
 * "PORT") and checks the address is numeric. host gets the address ("" when none was
 * given: every address), *v6 is set for bracketed addresses. -EINVAL with err saying what
 * is wrong otherwise. */
int ingest_parse_listen(const char *s, char *host, size_t hostlen, int *port, int *v6,
                        char *err, size_t errlen);

#endif
