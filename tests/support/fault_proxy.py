#!/usr/bin/python3
"""A TCP proxy that breaks connections on purpose, one planned fault per connection.

  fault_proxy.py --upstream PORT --plan FILE [--rate BYTES_PER_S]

--rate throttles the client-to-server direction (a slow link).

The plan is a JSON list; connection i (in accept order) gets plan[i], later ones pass
through untouched. A fault is a list:
  ["pass"]
  ["reset", DIR, N]              forward exactly N bytes in direction DIR ("c2s" client to
                                 server, "s2c" back), then reset both sides (RST)
  ["stall", DIR, N, SECS, THEN]  after N bytes in DIR forward nothing either way for SECS,
                                 then THEN: "continue" or "reset"
Prints "PORT <n>" when listening, then per connection "CONN <i> <fault>" and, when its fault
fired, "FIRED <i>"; "PLAN DONE" once every planned connection has ended.
"""
import argparse
import json
import select
import socket
import struct
import sys
import threading
import time

lock = threading.Lock()


def say(line):
    with lock:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def rst(*socks):
    for s in socks:
        try:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            s.close()
        except OSError:
            pass


def relay(i, client, upstream_port, fault, on_end, rate=0):
    try:
        server = socket.create_connection(("127.0.0.1", upstream_port), timeout=10)
        server.settimeout(None)
    except OSError:
        rst(client)
        on_end()
        return
    counts = {"c2s": 0, "s2c": 0}
    kind = fault[0]
    fired = False
    try:
        while True:
            r, _, _ = select.select([client, server], [], [], 30)
            if not r:
                continue
            for src in r:
                d = "c2s" if src is client else "s2c"
                dst = server if src is client else client
                data = src.recv(65536 if not rate or d == "s2c" else max(1024, rate // 20))
                if not data:
                    # one side closed: pass the close on and end quietly
                    try:
                        dst.shutdown(socket.SHUT_WR)
                    except OSError:
                        pass
                    rest = [s for s in (client, server) if s is not src]
                    # drain the other side briefly so a close handshake can finish
                    end = time.monotonic() + 2
                    while time.monotonic() < end:
                        rr, _, _ = select.select(rest, [], [], 0.2)
                        if not rr:
                            continue
                        more = rest[0].recv(65536)
                        if not more:
                            break
                        try:
                            src.sendall(more)
                        except OSError:
                            break
                    client.close()
                    server.close()
                    return
                if not fired and kind != "pass" and fault[1] == d and counts[d] + len(data) >= fault[2]:
                    keep = fault[2] - counts[d]
                    if keep:
                        dst.sendall(data[:keep])
                    counts[d] += keep
                    fired = True
                    say("FIRED %d" % i)
                    if kind == "reset" or (kind == "stall" and fault[4] == "reset"):
                        if kind == "stall":
                            time.sleep(fault[3])
                        rst(client, server)
                        return
                    time.sleep(fault[3])   # stall, then continue
                    dst.sendall(data[keep:])
                    counts[d] += len(data) - keep
                    continue
                dst.sendall(data)
                counts[d] += len(data)
                if rate and d == "c2s":
                    time.sleep(len(data) / rate)
    except OSError:
        rst(client, server)
    finally:
        on_end()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--upstream", type=int, required=True)
    ap.add_argument("--plan", required=True)
    ap.add_argument("--rate", type=int, default=0)
    args = ap.parse_args()
    with open(args.plan) as f:
        plan = json.load(f)
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", 0))
    ls.listen(64)
    say("PORT %d" % ls.getsockname()[1])
    left = [len(plan)]

    def ended(i):
        if i < len(plan):
            with lock:
                left[0] -= 1
                done = left[0] == 0
            if done:
                say("PLAN DONE")

    i = 0
    if not plan:
        say("PLAN DONE")
    while True:
        client, _ = ls.accept()
        fault = plan[i] if i < len(plan) else ["pass"]
        say("CONN %d %s" % (i, json.dumps(fault)))
        threading.Thread(target=relay, args=(i, client, args.upstream, fault,
                                             lambda i=i: ended(i), args.rate),
                         daemon=True).start()
        i += 1


if __name__ == "__main__":
    main()
