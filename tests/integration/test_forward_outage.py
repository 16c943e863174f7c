#!/usr/bin/python3
"""Forwarding across outages, the copy always caught up from the local file:
1. the ingest killed (SIGKILL) in the middle of a take and started again a few seconds
   after the take ended (the behaviour does not depend on how long it stays away: the
   bytes wait in the local file, not in RAM): the status says not connected and how far
   behind, and the copy ends byte-identical;
2. the ingest down for a whole take (nothing listens) and started after it: the take is
   sent when it comes back."""
import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from forward_support import (TMP, Ingest, Server, check, check_copy, config,  # noqa: E402
                             forward_entry, free_port, record, remote_path, wait_complete, wait_for)

DEVICE = "[device hi]\npcm = tone\nformat = S32_LE\nrate = 192000\nchannels = 2\n"


def main():
    # 1. killed mid-take, back after the take
    idir = os.path.join(TMP, "ingest1")
    ing = Ingest(idir)
    port = ing.port
    srv = Server("fwd1", demo=False, config=config("fwd1", ing.url("/"), DEVICE))
    try:
        state = {}

        def kill_midway(e):
            if e and e["remote_bytes"] > 200000 and "killed" not in state:
                ing.proc.send_signal(signal.SIGKILL)
                ing.proc.wait()
                state["killed"] = time.monotonic()
            if "killed" in state and e and not e["connected"] and e["seconds_behind"] > 1:
                state["down"] = e
                return True
            return False

        file = record(srv, kill_midway, dev="hi")
        print("while the ingest was down:", state["down"])
        e = forward_entry(srv, file)
        check(e["state"] == "sending" and not e["connected"], "status after the take: %r" % e)
        ing2 = Ingest(idir, listen="127.0.0.1:%d" % port)
        e = wait_complete(srv, file)
        check_copy(os.path.join(srv.rec, file), remote_path(idir, file, "hi"))
    finally:
        rc = srv.stop()
        print(srv.stderr()[-2500:])
    check(rc == 0, "pirec serve exit %d" % rc)

    # 2. down for the whole take, started after it
    idir = os.path.join(TMP, "ingest2")
    port = free_port()
    srv = Server("fwd2", demo=False,
                 config=config("fwd2", "ws://127.0.0.1:%d/" % port, DEVICE))
    try:
        t0 = time.monotonic()
        file = record(srv, lambda e: e and e["local_bytes"] > 500000 and
                      time.monotonic() - t0 > 2, dev="hi")
        e = forward_entry(srv, file)
        print("before the ingest exists:", e)
        check(e["state"] == "sending" and not e["connected"] and e["remote_bytes"] == 0,
              "status with no ingest: %r" % e)
        ing3 = Ingest(idir, listen="127.0.0.1:%d" % port)
        wait_complete(srv, file)
        check_copy(os.path.join(srv.rec, file), remote_path(idir, file, "hi"))
        print(ing3.log()[-1500:])
    finally:
        rc = srv.stop()
        print(srv.stderr()[-1500:])
    check(rc == 0, "pirec serve exit %d" % rc)
    print("ok")


main()
