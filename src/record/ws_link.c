/* Stub until the WebSocket link lands: every ws:// stream fails to open. */
#include "record/ws_link.h"

#include <errno.h>

int ws_stream_open(const struct ws_target *t, const struct ws_options *o, struct ws_stream **out)
{
    (void)t; (void)o;
    *out = NULL;
    return -ENOSYS;
}
int ws_stream_write(struct ws_stream *s, const void *d, size_t n, int w) { (void)s; (void)d; (void)n; (void)w; return -ENOSYS; }
int ws_stream_drain(struct ws_stream *s, int t) { (void)s; (void)t; return -ENOSYS; }
void ws_stream_abort(struct ws_stream *s) { (void)s; }
void ws_stream_get_stats(struct ws_stream *s, struct ws_stream_stats *st) { (void)s; (void)st; }
void ws_stream_close(struct ws_stream *s) { (void)s; }
