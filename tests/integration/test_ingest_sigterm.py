#!/usr/bin/python3
"""SIGTERM (and SIGINT) while streams are open: pirec ingest closes the connections with
1001, every complete message is on disk, a message cut off by the stop is not, exit 0,
and the log has one closing line per stream with the bytes received."""
import asyncio
import os
import random
import signal

import websockets

from test_ingest_cli import SAN, TMP, Ingest, RawWS, check, expect_close, file_bytes, wait_file

N = 8 if SAN else 20


async def one_run(sig, label):
    d = os.path.join(TMP, label)
    srv = Ingest(d)
    rng = random.Random(3)
    conns, want = [], {}
    for i in range(N):
        ws = await websockets.connect(srv.url("/s%d" % i), max_size=None)
        name = "st%02d" % i
        data = b""
        for _ in range(10):
            chunk = rng.randbytes(rng.randint(1, 20000))
            await ws.send([name.encode() + b"\0", chunk])
            data += chunk
        conns.append(ws)
        want[name] = data
    # A message still incomplete when the stop comes.
    raw = RawWS("127.0.0.1", srv.port)
    raw.frame(0x2, b"partial\0whole;", fin=True)
    raw.frame(0x2, b"partial\0half", fin=False)
    for name, data in want.items():
        wait_file(os.path.join(d, name), data)
    wait_file(os.path.join(d, "partial"), b"whole;")

    srv.proc.send_signal(sig)
    for i, ws in enumerate(conns):
        await expect_close(ws, 1001, "%s: connection %d" % (label, i))
    check(raw.read_close() == 1001, "%s: raw connection did not get 1001" % label)
    rc = srv.proc.wait(30)
    check(rc == 0, "%s: exit status %d" % (label, rc))
    for name, data in want.items():
        check(file_bytes(os.path.join(d, name)) == data, "%s: %s not byte-exact" % (label, name))
    check(file_bytes(os.path.join(d, "partial")) == b"whole;",
          "%s: the incomplete message reached the file" % label)
    log = srv.log()
    for name, data in want.items():
        check("stream '%s' closed (server stopping" % name in log
              and "received %d bytes" % len(data) in log,
              "%s: no closing line for %s with its byte count:\n%s" % (label, name, log))
    check("every file synced and closed" in log, "%s: no final log line" % label)
    print("ok: %s" % label, flush=True)


async def main():
    await one_run(signal.SIGTERM, "term")
    await one_run(signal.SIGINT, "int")


asyncio.run(main())
