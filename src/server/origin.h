/*
 * origin: only the recorder's own page (and command-line clients) may drive it.
 *
 * - Host check (DNS rebinding): a page on the LAN that rebinds its own name to the
 *   recorder's address still sends its own name as Host. A request is served only when
 *   Host is an IP literal, "localhost" (or a name under .localhost), this machine's host
 *   name, that name + ".local", or one of the configured allowed_hosts. No Host at all
 *   (an HTTP/1.0 command-line client) is accepted.
 * - Same origin for state-changing requests (take, renew, release, start, stop, delete):
 *   refused when Sec-Fetch-Site says "cross-site" or "same-site", or when an Origin
 *   header names another origin than Host (or is "null"); with neither of those (browsers
 *   before Sec-Fetch-Site, e.g. Safari before 16.4), when a Referer names another origin.
 *   A request with none of these headers (curl, scripts) is accepted, so the original's
 *   GET routes keep working for same-origin and command-line clients. (An old browser
 *   told by a page to send no Referer is not caught: that page could still take a free
 *   device's lease, though never read its token.)
 *
 * Threads: any once built; the policy is read-only after origin_policy_init.
 */
#ifndef PIREC_SERVER_ORIGIN_H
#define PIREC_SERVER_ORIGIN_H

#include <stddef.h>

#define ORIGIN_MAX_NAMES 20
#define ORIGIN_NAME_MAX 254

struct origin_policy {
    char names[ORIGIN_MAX_NAMES][ORIGIN_NAME_MAX];   /* lower case, no trailing dot */
    unsigned n;
};

/* localhost, this host's name and name.local, then the names in `extra` (separated by
 * commas or spaces; may be NULL). -EINVAL when a name is not a host name (err says which),
 * -E2BIG when there are too many. */
int origin_policy_init(struct origin_policy *p, const char *extra, char *err, size_t err_len);
/* Checks a list of names as origin_policy_init would (for the config file). */
int origin_names_valid(const char *list, char *err, size_t err_len);

/* 1 when the Host header value (may be NULL) is one of ours. */
int origin_host_allowed(const struct origin_policy *p, const char *host);
/* 1 when a state-changing request with these headers (each may be NULL) comes from the
 * page's own origin or from a non-browser client. */
int origin_same_origin(const char *host, const char *origin, const char *sec_fetch_site,
                       const char *referer);

#endif
