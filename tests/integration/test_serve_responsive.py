#!/usr/bin/python3
"""pirec serve stays responsive and answers instead of going silent:
- while device A's stop waits 3 s on a stalled disk (PIREC_TEST_DISK_STALL_MS), /api/status
  is answered and device B's meter keeps sending `level` events;
- during a slowloris from another address (127.0.0.2): connections past that address's
  share are answered 503 at once, /api/status from here is answered, a take on B can be
  started and stopped, the slow ones get 408 at the header deadline, and no socket is left
  in CLOSE-WAIT afterwards;
- a garbage request line gets 400, event streams past the per-address budget get 503, and
  the stream of a client that left is closed at once (not at the next heartbeat).
Behaviour only: counts of answers while something else is pending, never timings."""
import json
import os
import re
import select
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_serve_common import Server, Sse, TMP, check, fail, wait_for  # noqa: E402

CFG = """[server]
header_timeout_seconds = 2
max_connections_per_client = 16
max_event_streams_per_client = 3
preroll_seconds = 0
[device a]
pcm = tone
[device b]
pcm = tone
"""


def status_code(srv, path="/api/status"):
    st, _, _ = srv.request("GET", path)
    return st


def stall_during_stop(srv):
    sse = Sse(srv.port)
    try:
        tok = srv.take("a", "stall")
        srv.json("POST", "/api/recording/a/start", {"Authorization": "Bearer " + tok}, expect=200)
        result = {}

        def stopper():
            result["st"], result["obj"] = srv.json("POST", "/api/recording/a/stop",
                                                   {"Authorization": "Bearer " + tok})
        t = threading.Thread(target=stopper)
        b_levels = lambda: len([e for e in sse.of("level") if json.loads(e["data"])["id"] == "b"])
        t.start()
        answered, levels0, levels_during = 0, None, 0
        while t.is_alive():
            st = status_code(srv)
            if t.is_alive():          # answered while the stop still waits on the disk
                check(st == 200, "status during the stall: %d" % st)
                answered += 1
                if levels0 is None:
                    levels0 = b_levels()
                levels_during = b_levels() - levels0
        t.join()
        check(result.get("st") == 200, "stop after the stall: %r" % result)
        check(answered >= 3, "/api/status answered %d times while the stop waited on the disk "
              "(the event loop must not wait for it)" % answered)
        check(levels_during >= 3, "device b sent %d level events while a's stop waited on "
              "the disk" % levels_during)
        print("stall: status answered %d times, b's meter %d events, during a's stop"
              % (answered, levels_during))
    finally:
        sse.close()


def raw_status(port, data, timeout=10):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.sendall(data)
    out = b""
    while True:
        try:
            b = s.recv(65536)
        except socket.timeout:
            break
        if not b:
            break
        out += b
    s.close()
    m = re.match(rb"HTTP/1\.\d (\d+)", out)
    return int(m.group(1)) if m else 0


def close_wait(port):
    """Sockets of the server's port in CLOSE-WAIT (state 08 in /proc/net/tcp)."""
    n = 0
    for f in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = open(f).read().splitlines()[1:]
        except OSError:
            continue
        for l in lines:
            parts = l.split()
            if parts[3] == "08" and int(parts[1].split(":")[1], 16) == port:
                n += 1
    return n


def slowloris(srv):
    socks, refused = [], 0
    for _ in range(60):
        s = socket.socket()
        s.bind(("127.0.0.2", 0))
        s.connect(("127.0.0.1", srv.port))
        s.sendall(b"GET /api/status HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        socks.append(s)
    # the first 16 are served (they trickle), the rest are told 503 at once
    answers = {}

    def read_some(deadline):
        while time.monotonic() < deadline and len(answers) < len(socks):
            live = [s for s in socks if s not in answers]
            r, _, _ = select.select(live, [], [], 0.1)
            for s in r:
                try:
                    b = s.recv(4096)
                except OSError:
                    b = b""
                answers[s] = b[:12]
            for s in live:          # trickle one header byte, slowloris style
                if s not in answers:
                    try:
                        s.send(b"X")
                    except OSError:
                        answers[s] = b""
    read_some(time.monotonic() + 1.0)
    refused = sum(1 for v in answers.values() if v.startswith(b"HTTP/1.1 503"))
    check(refused >= 60 - 16, "503 for the connections past the address's share: %d of %d"
          % (refused, 60 - 16))
    # meanwhile, from this address: status, and a take on b started and stopped
    for _ in range(5):
        check(status_code(srv) == 200, "status during the slowloris")
    tok = srv.take("b", "during")
    srv.json("POST", "/api/recording/b/start", {"Authorization": "Bearer " + tok}, expect=200)
    check(status_code(srv) == 200, "status during the slowloris")
    srv.json("POST", "/api/recording/b/stop", {"Authorization": "Bearer " + tok}, expect=200)
    srv.json("POST", "/api/recording/b/release", {"Authorization": "Bearer " + tok}, expect=200)
    # the trickling ones meet the header deadline: 408, then closed
    read_some(time.monotonic() + 15)
    timed_out = sum(1 for v in answers.values() if v.startswith(b"HTTP/1.1 408"))
    check(timed_out >= 16, "408 for the slow requests: %d of 16" % timed_out)
    for s in socks:
        s.close()
    wait_for(lambda: close_wait(srv.port) == 0, 10, "no socket left in CLOSE-WAIT")
    print("slowloris: %d refused with 503, %d answered 408, none in CLOSE-WAIT" % (refused, timed_out))


def misc(srv):
    st = raw_status(srv.port, b"GARBAGE\r\n\r\n")
    check(st == 400, "garbage request line: %d, want 400" % st)
    st = raw_status(srv.port, b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n")
    check(st == 400, "TLS hello on the HTTP port: %d, want 400" % st)
    streams = [Sse(srv.port) for _ in range(3)]
    try:
        st, _, _ = srv.request("GET", "/api/status/%d" % time.time_ns())
        check(st == 503, "a 4th event stream from one address: %d, want 503" % st)
    finally:
        for s in streams:
            s.close()
    # pages that go away: their parked streams are closed, not left in CLOSE-WAIT until a
    # heartbeat, and their budget is free again
    wait_for(lambda: close_wait(srv.port) == 0, 10, "the streams of clients that left closed")
    gone = wait_for(lambda: (lambda s: s if s.status == 200 else s.close())(Sse(srv.port)), 10,
                    "an event stream again")
    gone.wait_event("status")
    gone.close()
    log = srv.stderr()
    check(log.count("warning") <= 2, "refusals are summarised, not logged one by one:\n" + log)


def idle_stream_hangup():
    """No device, so no level events: a stream stays parked. Its client leaving must close
    it now, not at the next heartbeat (ten minutes away here)."""
    srv = Server("idle", demo=False, args=["--heartbeat-ms", "600000"])
    try:
        streams = [Sse(srv.port) for _ in range(3)]
        for s in streams:
            s.wait_event("status")
        for s in streams:
            s.close()
        wait_for(lambda: close_wait(srv.port) == 0, 10,
                 "the parked streams of clients that left closed (no socket in CLOSE-WAIT)")
    finally:
        check(srv.stop() == 0, "idle server exits 0")


def main():
    os.makedirs(TMP, exist_ok=True)
    cfg = os.path.join(TMP, "responsive.ini")
    open(cfg, "w").write(CFG)
    os.environ["PIREC_TEST_DISK_STALL_MS"] = "3000"
    # a heartbeat far away: a stream whose client left must be closed without it
    srv = Server("responsive", demo=False, config=cfg, args=["--heartbeat-ms", "600000"])
    del os.environ["PIREC_TEST_DISK_STALL_MS"]
    try:
        stall_during_stop(srv)
        slowloris(srv)
        misc(srv)
        idle_stream_hangup()
    finally:
        rc = srv.stop()
    check(rc == 0, "exit status %d; stderr:\n%s" % (rc, srv.stderr()))
    print("ok")


if __name__ == "__main__":
    main()
