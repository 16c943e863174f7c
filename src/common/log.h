/*
 * log: one line per event, to stderr or to a sink the embedding program sets.
 *
 * Thread-safe: a line is formatted on the caller's stack and written with one write(2),
 * so lines from different threads never interleave. Allocates nothing. Not for the capture
 * thread (write(2) on a slow terminal can block): capture code counts and lets another
 * thread log.
 *
 * Never pass secrets (tokens, keys) to these functions.
 */
#ifndef PIREC_LOG_H
#define PIREC_LOG_H

#include <stdarg.h>

enum { PLOG_ERR = 3, PLOG_WARN = 4, PLOG_INFO = 6, PLOG_DEBUG = 7 };

typedef void (*plog_sink_func)(int level, const char *line, void *arg);

/* component: a short word naming the module ("record", "ingest", "capture", ...). */
void plog(int level, const char *component, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void vplog(int level, const char *component, const char *fmt, va_list ap);

/* Lines above max_level are skipped (default PLOG_INFO; PIREC_DEBUG=1 in the environment
 * raises it to PLOG_DEBUG). */
void plog_set_level(int max_level);
int  plog_get_level(void);
/* NULL restores the default sink (stderr with an ISO time stamp). */
void plog_set_sink(plog_sink_func sink, void *arg);

#define log_err(c, ...)   plog(PLOG_ERR, c, __VA_ARGS__)
#define log_warn(c, ...)  plog(PLOG_WARN, c, __VA_ARGS__)
#define log_info(c, ...)  plog(PLOG_INFO, c, __VA_ARGS__)
#define log_debug(c, ...) plog(PLOG_DEBUG, c, __VA_ARGS__)

#endif
