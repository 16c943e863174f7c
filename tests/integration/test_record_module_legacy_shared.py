#!/usr/bin/python3
"""Streams that end one after the other on one link to a legacy peer (issue 7): only the
link's clean close proves the peer read a stream's bytes, so the SDK's three ring callers
(tests/support/sdk/callers.c), stopped in turn, must not claim delivery early. At its stop
each of the first two reports its bytes as pending (unconfirmed), none lost, stop rc 0; the
last stop closes the link and the peer's answer confirms all three: the handles' stats then
say acked == written for every stream (CALLERS_FINAL keeps the handles until then), and
every file is byte-exact. (A drop before that answer counting them as lost is tested on
the link itself: tests/unit/test_ws_link.c, legacy_shared_end.)"""
import atexit
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.join(os.environ.get("PIREC_SRC", "."), "tests/support"))
from sdk_harness import (TMP, LegacyPeer, build_callers, check, cleanup,  # noqa: E402
                         file_of, parse_streams, pattern, procs)

atexit.register(cleanup)
KINDS = ["mic", "ref", "proc"]
FINAL_RE = re.compile(r"FINAL (\S+) acked=(\d+) pending=(\d+) lost=(\d+)")


def main():
    exe = build_callers()
    d = os.path.join(TMP, "shared")
    peer = LegacyPeer(d)
    env = dict(os.environ, CALLERS_FINAL="1")
    p = subprocess.Popen([exe, "ring", peer.url(), "3", "shared", "hex", "3000"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    procs.append(p)
    try:
        out, err = p.communicate(timeout=90)
    except subprocess.TimeoutExpired:
        p.kill()
        check(False, "the caller program hung")
    out, err = out.decode(), err.decode(errors="replace")
    check(p.returncode == 0, "caller exit %d\n%s\n%s" % (p.returncode, out, err[-3000:]))
    lines = peer.stop()
    check(sum(1 for ln in lines if ln.startswith("CONN")) == 1,
          "expected one connection: %r\n%s" % (lines, err[-2000:]))
    streams = parse_streams(out)
    final = {m.group(1): dict(acked=int(m.group(2)), pending=int(m.group(3)),
                              lost=int(m.group(4))) for m in FINAL_RE.finditer(out)}
    check(len(streams) == 3 and len(final) == 3, "expected 3 STREAM and 3 FINAL lines:\n" + out)
    for name, s in streams.items():
        kind = name.split("_")[1]   # <time>_<kind>_<save>
        check(s["written"] > 0, "%s: the producer wrote nothing" % name)
        check(s["rc"] == 0 and s["lost"] == 0 and s["acked"] + s["pending"] == s["written"],
              "%s at its stop: rc %d lost %d acked %d pending %d written %d"
              % (name, s["rc"], s["lost"], s["acked"], s["pending"], s["written"]))
        if kind != KINDS[-1]:
            # stopped while another stream still used the link: nothing confirmed yet
            check(s["pending"] > 0 and s["acked"] < s["written"],
                  "%s claimed delivery before the link's close: acked %d pending %d"
                  % (name, s["acked"], s["pending"]))
        f = final[name]
        check(f["acked"] == s["written"] and f["pending"] == 0 and f["lost"] == 0,
              "%s after the last stop: acked %d pending %d lost %d, written %d"
              % (name, f["acked"], f["pending"], f["lost"], s["written"]))
        check(file_of(d, name) == pattern(KINDS.index(kind), s["written"]), "%s: file not byte-exact" % name)
    print("ok: the early stops reported pending, the link's close confirmed all three")


if __name__ == "__main__":
    main()
