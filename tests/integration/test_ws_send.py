#!/usr/bin/python3
"""`pirec send file://IN ws://...` against independent and real servers.

1. A legacy server like the original record_server/server.py (tests/support/ws_peer.py,
   Debian's python3-websockets): every message has >= 2 fragments, the handshake path is the
   URL's path, the file is byte-exact, one connection.
2. The real `pirec ingest`, killed and restarted mid-stream: the input is a FIFO fed by this
   test, so the restart happens while `pirec send` is still streaming; the stored file is
   byte-exact (no gap, no duplicate) and `pirec send` exits 0.
"""
import json
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time

BIN = os.environ.get("PIREC_BIN", "build/pirec")
SRC = os.environ.get("PIREC_SRC", ".")
TMP = os.environ.get("TEST_TMP") or "/tmp/test_ws_send"
SAN = os.environ.get("PIREC_SAN") == "1"
PEER = os.path.join(SRC, "tests/support/ws_peer.py")
os.makedirs(TMP, exist_ok=True)

procs = []


def cleanup(*_):
    for p in procs:
        if p.poll() is None:
            p.kill()
            p.wait()


def fail(msg):
    print("FAIL: " + msg)
    cleanup()
    sys.exit(1)


def wait_for(cond, what, timeout=20.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = cond()
        if v:
            return v
        time.sleep(0.02)
    fail("timed out waiting for " + what)


def start(argv, marker, log):
    """Starts a server and returns (process, port) from the line holding `marker`."""
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=open(log, "ab"), text=True)
    procs.append(p)
    line = ""
    end = time.monotonic() + 20
    while time.monotonic() < end:
        line = p.stdout.readline()
        if not line:
            break
        if marker in line:
            return p, int(re.findall(r"(\d+)\s*$", line.strip())[0])
    fail("server did not start: %r (see %s)" % (line, log))


def payload(n, seed):
    r = random.Random(seed)
    return bytes(r.getrandbits(8) for _ in range(n)) if n < 4096 else \
        r.randbytes(n)


def check_send_result(p, what):
    out, err = p.communicate(timeout=60)
    if p.returncode != 0:
        fail("%s: pirec send exited %d\nstdout: %s\nstderr: %s" % (what, p.returncode, out, err))
    return out + err


def legacy_case():
    d = os.path.join(TMP, "legacy")
    os.makedirs(d)
    events = os.path.join(d, "events")
    srv, port = start(["/usr/bin/python3", PEER, "--mode", "legacy", "--dir", d,
                       "--events", events], "PORT ", os.path.join(TMP, "peer.log"))
    data = payload(300_000 if SAN else 2_000_000, 1)
    inp = os.path.join(TMP, "in.raw")
    with open(inp, "wb") as f:
        f.write(data)
    p = subprocess.Popen([BIN, "send", "file://" + inp, "ws://127.0.0.1:%d/rec/mic.raw" % port],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    procs.append(p)
    check_send_result(p, "legacy")
    out = os.path.join(d, "mic.raw")
    # a legacy server cannot acknowledge: wait for it to have written everything
    wait_for(lambda: os.path.exists(out) and os.path.getsize(out) >= len(data), "the file")
    with open(out, "rb") as f:
        got = f.read()
    if got != data:
        fail("legacy: stored %d bytes, differs from the %d sent" % (len(got), len(data)))
    evs = [json.loads(l) for l in open(events)]
    conns = [e for e in evs if e["ev"] == "conn"]
    msgs = [e for e in evs if e["ev"] == "msg"]
    if len(conns) != 1:
        fail("legacy: %d connections, expected 1" % len(conns))
    if conns[0]["path"] != "/rec/mic.raw":
        fail("legacy: handshake path %r, expected the URL's path" % conns[0]["path"])
    if conns[0]["host"] != "127.0.0.1:%d" % port:
        fail("legacy: Host header %r" % conns[0]["host"])
    if any(e["ev"] == "unfragmented" for e in evs) or any(m["frames"] < 2 for m in msgs):
        fail("legacy: a message had fewer than 2 fragments (the original server drops those)")
    srv.kill()
    srv.wait()
    print("legacy: %d bytes in %d messages, all fragmented, one connection" %
          (len(data), len(msgs)))


def ingest_case():
    d = os.path.join(TMP, "ingest")
    os.makedirs(d)
    log = os.path.join(TMP, "ingest.log")
    ing, port = start([BIN, "ingest", "--listen", "127.0.0.1:0", "--dir", d],
                      "listening on", log)
    fifo = os.path.join(TMP, "in.fifo")
    os.mkfifo(fifo)
    part = 1_000_000 if SAN else 4_000_000
    data = payload(3 * part, 2)
    out = os.path.join(d, "take.raw")
    p = subprocess.Popen([BIN, "send", "--buffer", "1M", "file://" + fifo,
                          "ws://127.0.0.1:%d/take.raw" % port],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    procs.append(p)
    w = open(fifo, "wb")
    done = threading.Event()

    def size():
        return os.path.getsize(out) if os.path.exists(out) else 0

    for i in range(3):
        w.write(data[i * part:(i + 1) * part])
        w.flush()
        if i == 2:
            break
        # kill the server while data is arriving, then bring it back on the same port
        wait_for(lambda: size() >= i * part + part // 2, "ingest to store part %d" % i)
        ing.kill()
        ing.wait()
        ing, port2 = start([BIN, "ingest", "--listen", "127.0.0.1:%d" % port, "--dir", d],
                           "listening on", log)
        if port2 != port:
            fail("ingest came back on port %d, not %d" % (port2, port))
    w.close()
    done.set()
    msg = check_send_result(p, "ingest")
    with open(out, "rb") as f:
        got = f.read()
    if len(got) != len(data):
        fail("ingest: stored %d bytes, sent %d (%s)" % (len(got), len(data),
             "duplicate" if len(got) > len(data) else "gap"))
    if got != data:
        i = next(k for k in range(len(got)) if got[k] != data[k])
        fail("ingest: first difference at byte %d" % i)
    ing.kill()
    ing.wait()
    print("ingest: %d bytes byte-exact across two server restarts" % len(data))
    print(msg.strip().splitlines()[-1] if msg.strip() else "")


def main():
    if not os.access(BIN, os.X_OK):
        print("no pirec binary at " + BIN)
        return 77
    h = subprocess.run([BIN, "send", "--help"], capture_output=True, text=True)
    if h.returncode != 0 or "usage" not in (h.stdout + h.stderr):
        print("pirec send is not implemented in this build")
        return 77
    signal.signal(signal.SIGTERM, lambda *_: (cleanup(), sys.exit(1)))
    try:
        legacy_case()
        ingest_case()
    finally:
        cleanup()
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
