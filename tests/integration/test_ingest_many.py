#!/usr/bin/python3
"""pirec ingest holds many connections at once (200; 50 under ASan), each writing its own
stream in interleaved fragmented messages, all stored byte-exact; with --max-open lower than
the number of streams, files are closed and reopened on the way (the LRU)."""
import asyncio
import os
import random

import websockets

from test_ingest_cli import SAN, TMP, Ingest, check, wait_file

N = 50 if SAN else 200
MSGS = 20


async def client(srv, i, ready, go, want):
    rng = random.Random(i)
    name = b"s%03d" % i
    data = b""
    async with websockets.connect(srv.url("/c%d" % i), max_size=None, open_timeout=60,
                                  close_timeout=30) as ws:
        ready.append(i)
        await go.wait()  # every connection is open before anyone sends
        for _ in range(MSGS):
            chunk = rng.randbytes(rng.randint(1, 3000))
            data += chunk
            if rng.random() < 0.5:
                await ws.send(name + b"\0" + chunk)
            else:
                await ws.send([name + b"\0", chunk[:len(chunk) // 2], chunk[len(chunk) // 2:]])
            await asyncio.sleep(0)
    want[name.decode()] = data


async def main():
    d = os.path.join(TMP, "store")
    srv = Ingest(d, ["--max-open", str(N // 4)])
    ready, want = [], {}
    go = asyncio.Event()
    tasks = [asyncio.create_task(client(srv, i, ready, go, want)) for i in range(N)]
    while len(ready) < N:
        done = [t for t in tasks if t.done() and t.exception()]
        if done:
            raise done[0].exception()
        await asyncio.sleep(0.01)
    go.set()
    await asyncio.gather(*tasks)
    check(len(want) == N, "only %d of %d clients finished" % (len(want), N))
    for name, data in want.items():
        wait_file(os.path.join(d, name), data, timeout=60)
    check(srv.alive(), "server died")
    check(srv.stop() == 0, "exit status after SIGTERM")
    opened = srv.log().count("opened by connection")
    check(opened == N, "%d 'opened' log lines for %d streams" % (opened, N))
    print("ok: %d connections" % N)


asyncio.run(main())
