#!/usr/bin/python3
"""The SDK's ring callers (three rings, only data_ready and a quit flag, fed 2560 bytes every
80 ms; tests/support/sdk/callers.c, built with only the compat include path) against a peer
that behaves like the original record_server (tests/support/legacy_peer.py: never answers a
ping, deletes a stream's file on a new connection, saves only fragmented messages).

1. 60 s real time in the plain build, the suite's one long run (four times the 15 s after
   which a ping keep-alive used to hang up on this peer); 20 s under the sanitizers, which
   change nothing time-based: one connection, no ping, every file byte-exact, every stop
   bounded (a hang check) and successful.
2. The peer resets the connection mid-stream: the reconnect makes it delete a file, and the
   library reports what the old connection carried as lost (acked + lost == written) instead
   of success; what the file holds is the exact tail of the stream.
3. `pirec send` of a file to this peer through a proxy that resets the connection once:
   exit 1 with the loss in its message, never 0 over the truncated file.
"""
import atexit
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.environ.get("PIREC_SRC", "."), "tests/support"))
from sdk_harness import (TMP, LegacyPeer, Proxy, build_callers, check, cleanup,  # noqa: E402
                         file_of, parse_streams, pattern, procs)

atexit.register(cleanup)
KINDS = ["mic", "ref", "proc"]


def run_callers(exe, url, seconds, save, fmt="hex", stop_ms=2000, peer=None, drop_after=None):
    p = subprocess.Popen([exe, "ring", url, str(seconds), save, fmt, str(stop_ms)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    procs.append(p)
    if drop_after is not None:
        # wait until the first connection carried data, then reset it
        peer.wait_line("CONN 1", 30)
        import time
        end = time.monotonic() + 30
        while time.monotonic() < end:
            if any(len(file_of(peer.dir, f)) >= drop_after for f in os.listdir(peer.dir)):
                break
            time.sleep(0.05)
        peer.send("drop")
        peer.wait_line("DROPPED", 10)
    try:
        out, err = p.communicate(timeout=seconds + 60)
    except subprocess.TimeoutExpired:
        p.kill()
        check(False, "the caller program hung (stop not bounded?)")
    out, err = out.decode(), err.decode(errors="replace")
    check(p.returncode == 0, "caller exit %d\n%s\n%s" % (p.returncode, out, err[-3000:]))
    streams = parse_streams(out)
    check(len(streams) == 3, "expected 3 STREAM lines:\n%s\n%s" % (out, err[-3000:]))
    return streams, err


def stream_index(name):
    for i, k in enumerate(KINDS):
        if "_%s_" % k in name:
            return i
    raise AssertionError(name)


def main():
    exe = build_callers()

    # 1. a long real-time run: never cut by our keep-alive, byte-exact
    d1 = os.path.join(TMP, "legacy1")
    peer = LegacyPeer(d1)
    secs = 20 if os.environ.get("PIREC_SAN") == "1" else 60
    streams, err = run_callers(exe, peer.url(), secs, "long", peer=peer)
    lines = peer.stop()
    check(sum(1 for ln in lines if ln.startswith("CONN")) == 1,
          "expected one connection, got %r\nlog:\n%s" % (lines, err[-2000:]))
    check(not any(ln == "PING" for ln in lines), "the library pinged a legacy peer")
    for name, s in streams.items():
        want = pattern(stream_index(name), s["written"])
        got = file_of(d1, name)
        check(s["written"] >= secs * 1000 // 80 * 2560 * 9 // 10,
              "%s: producer wrote only %d bytes" % (name, s["written"]))
        check(got == want, "%s: file has %d bytes, want %d (byte-exact)" % (name, len(got), len(want)))
        # The streams share one link and stop one after the other: only the link's clean
        # close (at the last stop) can confirm a legacy peer read them, so the first two
        # report their last bytes as pending (unconfirmed), never as acked, never as lost.
        check(s["rc"] == 0 and s["lost"] == 0 and s["acked"] + s["pending"] == s["written"],
              "%s: stop rc %d lost %d acked %d pending %d" % (name, s["rc"], s["lost"],
                                                             s["acked"], s["pending"]))
        if name == KINDS[-1]:
            check(s["acked"] == s["written"] and s["pending"] == 0,
                  "%s (stopped last): acked %d of %d" % (name, s["acked"], s["written"]))
        check(s["ms"] < 2000 + 1000 + 5000, "%s: stop took %d ms (hang?)" % (name, s["ms"]))

    # 2. a reset mid-stream: the peer deletes a file on the new connection; reported as loss
    d2 = os.path.join(TMP, "legacy2")
    peer = LegacyPeer(d2)
    streams, err = run_callers(exe, peer.url(), 5, "drop", peer=peer, drop_after=20000)
    lines = peer.stop()
    check(sum(1 for ln in lines if ln.startswith("CONN")) >= 2, "no reconnect: %r" % lines)
    deleted = [ln.split(" ", 1)[1] for ln in lines if ln.startswith("DELETE ")]
    check(deleted, "the peer deleted no file on the new connection: %r" % lines)
    check("counted as lost" in err, "no log line about the loss:\n" + err[-3000:])
    for name, s in streams.items():
        i = stream_index(name)
        check(s["lost"] > 0, "%s: a drop to a legacy peer was not reported as loss: %r" % (name, s))
        check(s["acked"] + s["lost"] + s["pending"] == s["written"],
              "%s: acked %d + lost %d + pending %d != written %d"
              % (name, s["acked"], s["lost"], s["pending"], s["written"]))
        check(s["rc"] != 0, "%s: record_stop returned success over a loss" % name)
        got = file_of(d2, name)
        # what the new connection carried: acked, or unconfirmed (pending) for the streams
        # that stopped while another still used the link
        kept = s["acked"] + s["pending"]
        tail = pattern(i, s["written"])[s["written"] - kept:]
        check(got.endswith(tail), "%s: the file does not end with the %d acked+pending bytes"
              % (name, kept))
        if name in deleted:
            check(got == tail, "%s: deleted and rewritten, but not exactly the acked+pending "
                  "bytes" % name)

    # 3. pirec send over a drop: exit 1, never success over the truncated file
    d3 = os.path.join(TMP, "legacy3")
    peer = LegacyPeer(d3)
    proxy = Proxy(peer.port, [["reset", "c2s", 60000]], tag="legacy-drop")
    data = os.urandom(1 << 20)
    src = os.path.join(TMP, "send.bin")
    with open(src, "wb") as f:
        f.write(data)
    r = subprocess.run([os.environ.get("PIREC_BIN", "build/pirec"), "send", "--reconnect-max",
                        "50", "file://" + src, "ws://127.0.0.1:%d/sent.bin" % proxy.port],
                       capture_output=True, text=True, timeout=120)
    peer.stop()
    got = file_of(d3, "sent.bin")
    check(any(ln.startswith("FIRED") for ln in proxy.lines()), "the proxy never reset the link")
    check(r.returncode == 1, "pirec send exit %d over a legacy drop (file %d of %d bytes):\n%s"
          % (r.returncode, len(got), len(data), r.stderr[-3000:]))
    check("counted as lost" in r.stderr and "not delivered" in r.stderr,
          "pirec send did not say what was lost:\n" + r.stderr[-3000:])
    check(got != data, "the peer kept everything although it deletes on reconnect?")
    print("legacy peer: ok")


main()
