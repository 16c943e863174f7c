#!/usr/bin/python3
"""Forwarding through a network that fails: a proxy between `pirec serve` and
`pirec ingest` cuts the connection three times in the middle of a frame, stalls it for
two seconds, and refuses connections for a while; the remote copy of the 192 kHz take
still ends byte-identical to the local file, with the MD5 verified by the ingest."""
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "support"))
from forward_support import (TMP, Ingest, Server, check, check_copy, config,  # noqa: E402
                             forward_entry, record, remote_path, wait_complete, wait_for)
from fwd_cut_proxy import CutProxy  # noqa: E402

DEVICE = "[device hi]\npcm = tone\nformat = S32_LE\nrate = 192000\nchannels = 2\n"


def main():
    idir = os.path.join(TMP, "ingest")
    ing = Ingest(idir)
    proxy = CutProxy(ing.port)
    srv = Server("fwdp", demo=False, config=config("fwdp", "ws://127.0.0.1:%d/" % proxy.port, DEVICE))
    try:
        plan = [("cut", 70001), ("cut", 150007), ("stall", 2.0), ("refuse", 1.5), ("cut", 33333)]
        step = {"i": 0, "mark": None, "cuts": 0, "until": 0}

        def drive(e):
            """One fault at a time: the next only once the previous one took effect and
            the copy grew again after it."""
            if not e:
                return False
            now = time.monotonic()
            if now < step["until"] or proxy.cuts < step["cuts"]:
                return False
            proxy.refusing = False
            if step["mark"] is None:
                step["mark"] = e["remote_bytes"]
                return False
            if e["remote_bytes"] <= step["mark"]:
                return False
            if step["i"] == len(plan):
                return True
            kind, arg = plan[step["i"]]
            step["i"] += 1
            step["mark"] = None
            print("fault:", kind, arg, "at", e["remote_bytes"], "remote bytes")
            if kind == "cut":
                step["cuts"] = proxy.cuts + 1
                proxy.cut_in(arg)
            elif kind == "stall":
                proxy.stall(arg)
                step["until"] = now + arg
            else:
                proxy.refusing = True
                step["cuts"] = proxy.cuts + 1
                proxy.cut_in(1)
                step["until"] = now + arg
            return False

        file = record(srv, drive, dev="hi")
        e = wait_complete(srv, file, timeout=90)
        print("status:", e, "cuts:", proxy.cuts, "connections:", proxy.accepted)
        check(proxy.cuts >= 4 and proxy.accepted >= 4, "the proxy cut %d times" % proxy.cuts)
        check_copy(os.path.join(srv.rec, file), remote_path(idir, file, "hi"))
    finally:
        rc = srv.stop()
        proxy.close()
        print(srv.stderr()[-2000:])
        print(ing.log()[-2000:])
    check(rc == 0, "pirec serve exit %d" % rc)
    print("ok")


main()
