#!/usr/bin/python3
"""pirec send file://IN ws://.../name into pirec ingest: byte-exact (1 MiB random); and
with the ingest SIGKILLed and restarted on the same port mid-stream: byte-exact, no gap, no
duplicate (the pirec.resume.1 stat after reconnecting). Skips (77) while `pirec send` is
not built yet."""
import os
import signal
import subprocess
import sys
import time

from test_ingest_cli import BIN, SAN, TMP, Ingest, _procs, check, fail, file_bytes, wait_for


def send(src, url, extra=()):
    p = subprocess.Popen([BIN, "send", "--give-up", "60", *extra, "file://" + src, url],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    _procs.append(p)
    return p


def finish(p, what, timeout=120):
    try:
        out = p.communicate(timeout=timeout)[0].decode(errors="replace")
    except subprocess.TimeoutExpired:
        p.kill()
        fail("%s: pirec send did not finish in %ss" % (what, timeout))
    check(p.returncode == 0, "%s: pirec send exit %d:\n%s" % (what, p.returncode, out))
    return out


def main():
    r = subprocess.run([BIN, "send", "--help"], capture_output=True)
    if r.returncode != 0:
        print("FAIL: pirec send --help exit %d" % r.returncode)
        sys.exit(1)

    d = os.path.join(TMP, "store")
    srv = Ingest(d)

    # 1. 1 MiB of random bytes, byte-exact.
    src = os.path.join(TMP, "in.bin")
    data = os.urandom(1 << 20)
    with open(src, "wb") as f:
        f.write(data)
    finish(send(src, srv.url("/one")), "1 MiB")
    wait_for(lambda: file_bytes(os.path.join(d, "one")) == data, "ingest file 'one' == input")
    srv.wait_log("pirec.resume.1")

    # 2. The ingest dies (SIGKILL) mid-stream and comes back on the same port.
    size = (16 if SAN else 64) << 20
    big = os.path.join(TMP, "big.bin")
    with open(big, "wb") as f:
        for _ in range(size >> 20):
            f.write(os.urandom(1 << 20))
    out = os.path.join(d, "two")
    p = send(big, srv.url("/two"), ["--chunk-size", "16K"])
    wait_for(lambda: os.path.exists(out) and os.path.getsize(out) >= size // 8,
             "the first eighth of the stream to arrive", timeout=60, step=0.005)
    port = srv.port
    srv.proc.send_signal(signal.SIGKILL)
    srv.proc.wait()
    at_kill = os.path.getsize(out)
    check(at_kill < size, "the whole stream arrived before the kill; nothing was tested")
    srv2 = None
    end = time.monotonic() + 20
    while srv2 is None:
        try:
            srv2 = Ingest(d, listen="127.0.0.1:%d" % port)
        except SystemExit:
            if time.monotonic() > end:
                raise
            time.sleep(0.1)  # the port may still be held for a moment
    finish(p, "restart mid-stream")
    got = file_bytes(out)
    if got != open(big, "rb").read():
        want = open(big, "rb").read()
        i = next((k for k in range(min(len(got), len(want))) if got[k] != want[k]),
                 min(len(got), len(want)))
        fail("after the restart: file has %d bytes, input %d, first difference at %d "
             "(killed at %d)" % (len(got), len(want), i, at_kill))
    check(srv2.stop() == 0, "exit status after SIGTERM")
    print("ok: killed at %d of %d bytes" % (at_kill, size))


main()
