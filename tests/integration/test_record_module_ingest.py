#!/usr/bin/python3
"""The SDK's ring callers (tests/support/sdk/callers.c: three rings, data_ready and a quit
flag, 2560 bytes every 80 ms, ring addresses printed with %u as the SDK does) into
`pirec ingest`: every stream byte-exact, nothing lost, every record_stop() successful and
bounded (< stop timeout + 1 s without a release callback, < 1 s with one; asserted
generously, as hang checks). 6 s of real time per run: the 60 s of the issue add nothing
the link does not already do in 6 s against this server (it answers pings, nothing is
time-based beyond the 5 s ping), and test_legacy_peer.py has the long run."""
import atexit
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.environ.get("PIREC_SRC", "."), "tests/support"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sdk_harness import (TMP, build_callers, check, cleanup, file_of, parse_streams,  # noqa: E402
                         pattern, procs)
from test_ingest_cli import Ingest  # noqa: E402

atexit.register(cleanup)
KINDS = ["mic", "ref", "proc"]
STOP_MS = 2000


def run(exe, url, save, release):
    args = [exe, "ring", url, "6", save, "u32", str(STOP_MS)] + (["release"] if release else [])
    p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    procs.append(p)
    try:
        out, err = p.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        p.kill()
        check(False, "the caller program hung")
    out, err = out.decode(), err.decode(errors="replace")
    check(p.returncode == 0, "caller exit %d\n%s\n%s" % (p.returncode, out, err[-3000:]))
    streams = parse_streams(out)
    check(len(streams) == 3, "expected 3 STREAM lines:\n%s\n%s" % (out, err[-3000:]))
    return streams, err


def main():
    exe = build_callers()
    d = os.path.join(TMP, "store")
    os.makedirs(d)
    ing = Ingest(d)
    for release in (False, True):
        streams, err = run(exe, ing.url("/rec"), "rel" if release else "norel", release)
        check("low 32 bits" in err, "the %u-formatted ring addresses were not resolved:\n" + err[-2000:])
        bound = 1000 if release else STOP_MS + 1000
        for name, s in streams.items():
            i = [k for k in KINDS if "_%s_" % k in name][0]
            want = pattern(KINDS.index(i), s["written"])
            got = file_of(d, name)
            check(s["written"] > 0 and got == want, "%s: file has %d bytes, want %d byte-exact"
                  % (name, len(got), len(want)))
            check(s["rc"] == 0 and s["lost"] == 0 and s["acked"] == s["written"],
                  "%s: stop rc %d lost %d acked %d of %d" % (name, s["rc"], s["lost"],
                                                             s["acked"], s["written"]))
            # a hang check, with a wide margin for a loaded machine
            check(s["ms"] < bound + 5000, "%s: record_stop took %d ms" % (name, s["ms"]))
            print("%s: stop %d ms (bound %d ms)" % (name, s["ms"], bound))
    print("ring callers into pirec ingest: ok")


main()
