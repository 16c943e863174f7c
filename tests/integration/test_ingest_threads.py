#!/usr/bin/python3
"""pirec ingest --threads 4: a stream resumed again and again by new connections (each
takes it over from the last while that one is still sending, so the two run on
different service threads at once) ends byte-exact: every byte once, in order. Also:
streams of many connections spread over the threads all arrive whole."""
import asyncio
import json
import os
import random

import websockets

from test_ingest_cli import TMP, Ingest, asyncio_timeout, check, fail, file_bytes

PROTO = ["pirec.resume.1"]
TOTAL = 8 * 1024 * 1024
ROUNDS = 60


# Random bytes: a gap, a repeat or a reordering shows.
DATA = random.Random(12).randbytes(TOTAL)


def pattern(off, n):
    return DATA[off:off + n]


async def stat(ws, name):
    await ws.send(json.dumps({"op": "stat", "name": name}))
    async with asyncio_timeout(20):
        while True:
            m = await ws.recv()
            if isinstance(m, str):
                j = json.loads(m)
                if j["op"] == "stat":
                    return j["size"]


async def sender(ws, name, off, stop):
    """Sends the stream from off in random-sized messages until stop is set or the server
    closes (taken over)."""
    try:
        while off < TOTAL and not stop.is_set():
            n = min(random.choice([100, 1000, 4096, 20000, 70000]), TOTAL - off)
            await ws.send([name.encode() + b"\0", DATA[off:off + n]])
            off += n
            await asyncio.sleep(0.002)
    except websockets.ConnectionClosed:
        pass
    return off


async def main():
    d = os.path.join(TMP, "threads")
    os.makedirs(d)
    srv = Ingest(d, ["--threads", "4"])
    check("4 service threads" in srv.log() or srv.wait_log("4 service threads"),
          "--threads 4 not in effect")
    name = "resumed"
    old = None
    old_task = None
    takeovers = 0
    for r in range(ROUNDS):
        ws = await websockets.connect(srv.url("/" + name), subprotocols=PROTO, max_size=None)
        size = await stat(ws, name)   # takes the stream over from `old`, still sending
        if old is not None:
            try:
                async with asyncio_timeout(20):
                    await old.wait_closed()
            except asyncio.TimeoutError:
                fail("round %d: the older connection was not closed after the takeover" % r)
            check(old.close_code == 4001, "round %d: older connection closed with %s, not 4001"
                  % (r, old.close_code))
            takeovers += 1
            await old_task
        got = file_bytes(os.path.join(d, name)) or b""
        check(len(got) >= size, "round %d: stat says %d bytes, the file has %d"
              % (r, size, len(got)))
        check(size <= TOTAL and got[:size] == DATA[:size],
              "round %d: the first %d bytes are not the stream's" % (r, size))
        if size >= TOTAL:
            old = ws
            break
        stop = asyncio.Event()
        task = asyncio.ensure_future(sender(ws, name, size, stop))
        await asyncio.sleep(random.uniform(0, 0.02))
        old, old_task = ws, task
        if r == ROUNDS - 1:
            await task
    # the last connection finishes the stream and sees it all acknowledged
    ws = await websockets.connect(srv.url("/" + name), subprotocols=PROTO, max_size=None)
    size = await stat(ws, name)
    if old_task is not None and not old_task.done():
        await old_task
    await sender(ws, name, size, asyncio.Event())
    check(await stat(ws, name) == TOTAL, "final stat is not the whole stream")
    await ws.close()
    if old is not None:
        await old.close()
    check(file_bytes(os.path.join(d, name)) == DATA,
          "the resumed stream is not byte-exact after %d takeovers" % takeovers)
    check(takeovers >= ROUNDS // 2, "only %d takeovers happened" % takeovers)

    # Many connections at once, spread over the threads.
    async def one(i):
        async with websockets.connect(srv.url("/m%d" % i), subprotocols=PROTO) as w:
            for k in range(20):
                await w.send([b"m%d\0" % i, pattern(i * 1000 + k * 50, 50)])
            check(await stat(w, "m%d" % i) == 1000, "stream m%d: not all 1000 bytes" % i)
    await asyncio.gather(*(one(i) for i in range(64)))
    for i in range(64):
        check(file_bytes(os.path.join(d, "m%d" % i)) == pattern(i * 1000, 1000),
              "stream m%d is not what was sent" % i)
    check(srv.stop() == 0, "exit status after SIGTERM")
    print("ok: %d takeovers across 4 threads, %d bytes byte-exact; 64 parallel streams"
          % (takeovers, TOTAL))


asyncio.run(main())
