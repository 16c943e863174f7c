/* Fuzzes the ingest wire protocol (src/record/wsproto.c, src/ingest/proto.c) as a client on the network sends
 * it: a binary message "<name> NUL <data>", a JSON control message, a stream name; and
 * the listen address of the command line. */
#include "fuzz_util.h"

#include "ingest/proto.h"
#include "record/wsproto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *msg = fuzz_copy(data, size);
    const char *name, *why;
    const void *payload;
    size_t name_len, payload_len;
    if (wsproto_split_message(msg, size, &name, &name_len, &payload, &payload_len, &why) == 0) {
        if (name_len > size || payload_len > size)
            abort();
    }
    struct wsproto_ctl ctl;
    char err[256];
    wsproto_ctl_parse((const char *)msg, size, &ctl, err, sizeof err);
    wsproto_name_check((const char *)msg, size, &why);
    char esc[64];
    wsproto_name_escape((const char *)msg, size, esc, sizeof esc);
    if (!memchr(esc, 0, sizeof esc))
        abort();
    free(msg);

    char *s = fuzz_cstr(data, size);
    char host[256];
    int port, v6;
    ingest_parse_listen(s, host, sizeof host, &port, &v6, err, sizeof err);
    free(s);
    return 0;
}
