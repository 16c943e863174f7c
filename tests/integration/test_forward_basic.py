#!/usr/bin/python3
"""A take forwarded to `pirec ingest` while it is recorded: the status shows where the
copy stands (sending with seconds behind, then complete with the MD5 the ingest verified),
`forward` events tell the changes, and the copy in INGEST/RECORDER/DEVICE/ is the local
take byte for byte (flac -t, metaflac --show-md5sum, same samples). A take stopped just
before the server is stopped is still copied completely."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from forward_support import (TMP, Ingest, Server, check, check_copy, config, forward_entry,  # noqa: E402
                             forward_events, record, remote_path, wait_complete)
from test_serve_common import Sse  # noqa: E402


def main():
    idir = os.path.join(TMP, "ingest")
    ing = Ingest(idir)
    srv = Server("fwd", config=config("fwd", ing.url("/")))
    sse = None
    try:
        sse = Sse(srv.port, "/api/status/fwd")
        sse.wait_event("status")
        seen = []

        def running(e):
            if e:
                seen.append(e)
            return e and e["remote_bytes"] > 0 and e["local_bytes"] > 100000

        file = record(srv, running)
        check(any(e["state"] == "sending" and e["connected"] for e in seen),
              "status while recording: %r" % seen[-1:])
        check(all("seconds_behind" in e for e in seen), "seconds_behind in the status")
        e = wait_complete(srv, file)
        print("status:", e)
        check(e["remote_bytes"] == e["local_bytes"], "remote bytes %r" % e)
        local = os.path.join(srv.rec, file)
        check_copy(local, remote_path(idir, file))
        sse.wait_event("forward")
        evs = forward_events(sse)
        states = [x["state"] for x in evs if x["file"] == file]
        print("forward events:", states)
        check(states[0] == "sending" and states[-1] == "complete", "forward events %r" % states)
        check(not any(n.startswith("fwd~") for n in os.listdir(idir)),
              "the finished copy left its flat name: %s" % os.listdir(idir))
        check(forward_entry(srv, file)["md5"] == e["md5"], "md5 stays")

        # a take stopped right before the server: its copy still completes (a grace period
        # while the ingest is reachable)
        file2 = record(srv, lambda e: e and e["remote_bytes"] > 0)
        sse.close()
        sse = None
        rc = srv.stop()
        check(rc == 0, "pirec serve exit %d" % rc)
        check_copy(os.path.join(srv.rec, file2), remote_path(idir, file2))
    finally:
        if sse:
            sse.close()
        rc = srv.stop()
        irc = ing.stop()
        print(srv.stderr()[-3000:])
        print(ing.log()[-2000:])
    check(rc == 0, "pirec serve exit %d" % rc)
    check(irc == 0, "pirec ingest exit %d (a leak under the sanitizers?)" % irc)
    print("ok")


main()
