#!/usr/bin/python3
"""The SDK's file callers poll record_get_count()'s read_bytes as progress and call
record_stop() once it reaches the file's size (tests/support/sdk/callers.c, `file` mode).
Progress must mean delivery: through a slow link (a proxy throttled to 256 KiB/s) into
`pirec ingest`, 1.5 MiB must arrive byte-exact with record_stop() returning 0 and nothing
lost (before, read_bytes ran up to 8 MiB ahead and the stop after 5 s cut the rest); and the
same caller into the legacy peer is byte-exact too."""
import atexit
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.environ.get("PIREC_SRC", "."), "tests/support"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sdk_harness import (TMP, LegacyPeer, Proxy, build_callers, check, cleanup,  # noqa: E402
                         file_of, parse_streams, procs)
from test_ingest_cli import Ingest  # noqa: E402

atexit.register(cleanup)
SIZE = 1536 * 1024


def run_file(exe, url, src):
    p = subprocess.Popen([exe, "file", "file://" + src, url, str(SIZE)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    procs.append(p)
    try:
        out, err = p.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        p.kill()
        check(False, "the file caller hung")
    out, err = out.decode(), err.decode(errors="replace")
    check(p.returncode == 0, "caller exit %d\n%s\n%s" % (p.returncode, out, err[-3000:]))
    s = parse_streams(out).get("file")
    check(s is not None, "no STREAM line:\n" + out + err[-2000:])
    return s, err


def main():
    exe = build_callers()
    data = os.urandom(SIZE)
    src = os.path.join(TMP, "src.bin")
    with open(src, "wb") as f:
        f.write(data)

    d = os.path.join(TMP, "ingest")
    os.makedirs(d)
    ing = Ingest(d)
    proxy = Proxy(ing.port, [], rate=256 * 1024, tag="slow")
    s, err = run_file(exe, "ws://127.0.0.1:%d/slow.bin" % proxy.port, src)
    check(s["rc"] == 0 and s["lost"] == 0,
          "slow link: stop rc %d, lost %d (read_bytes ran ahead of delivery?)\n%s"
          % (s["rc"], s["lost"], err[-3000:]))
    got = file_of(d, "slow.bin")
    check(got == data, "slow link: stored %d of %d bytes, or they differ" % (len(got), SIZE))

    peer = LegacyPeer(os.path.join(TMP, "legacy"))
    s, err = run_file(exe, peer.url("/legacy.bin"), src)
    peer.stop()
    check(s["rc"] == 0 and s["lost"] == 0, "legacy: stop rc %d lost %d\n%s" % (s["rc"], s["lost"], err))
    got = file_of(peer.dir, "legacy.bin")
    check(got == data, "legacy: stored %d of %d bytes, or they differ" % (len(got), SIZE))
    print("progress means delivery: ok")


main()
