/*
 * listen_addr: the one grammar of a listening address, shared by the command line and
 * the config files: "ADDR:PORT", "[IPV6]:PORT", ":PORT" (all addresses) or "PORT".
 * Port 0 means any free port. Any thread; no state.
 */
#ifndef PIREC_LISTEN_ADDR_H
#define PIREC_LISTEN_ADDR_H

#include <stddef.h>

/* host gets the address without brackets ("0.0.0.0" when none was given). 0 or -EINVAL
 * (no port, a port that is not 0..65535, a bare IPv6 address without brackets, host too
 * long for host_len). */
int listen_addr_parse(const char *s, char *host, size_t host_len, unsigned *port);

#endif
