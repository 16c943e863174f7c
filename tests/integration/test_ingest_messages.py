#!/usr/bin/python3
"""pirec ingest stores fragmented and unfragmented binary messages byte-exact, the way the
original firmware sends them (3 fragments), on any request path; a message larger than
--max-message closes with 1009 and leaves nothing; a client killed mid-message leaves only
its complete messages; a plain HTTP request gets a clear refusal."""
import asyncio
import os
import random
import urllib.error
import urllib.request

import websockets

from test_ingest_cli import (TMP, Ingest, RawWS, check, expect_close, fail, file_bytes,
                             wait_file, wait_for)


def chunks(rng, n, lo, hi):
    return [rng.randbytes(rng.randint(lo, hi)) for _ in range(n)]


async def main():
    d = os.path.join(TMP, "store")
    srv = Ingest(d, ["--max-message", "1048576"])
    rng = random.Random(1)

    # Unfragmented (a plain client), fragmented in two, and the firmware's three
    # fragments (name NUL in the first, data split over the other two), interleaved on
    # one connection with a second stream.
    want = {"plain": b"", "frag": b"", "fw.pcm": b""}
    async with websockets.connect(srv.url("/any/path?x=1"), max_size=None) as ws:
        for i, data in enumerate(chunks(rng, 40, 0, 9000)):
            await ws.send(b"plain\0" + data)
            want["plain"] += data
            cut = rng.randint(0, len(data))
            await ws.send([b"frag\0" + data[:cut], data[cut:]])
            want["frag"] += data
            a, b = sorted((rng.randint(0, len(data)), rng.randint(0, len(data))))
            await ws.send([b"fw.pcm\0", data[:a], data[a:]])
            want["fw.pcm"] += data
        # One message split into many small fragments, and one large single frame.
        big = rng.randbytes(700000)
        await ws.send([b"frag\0"] + [big[i:i + 1000] for i in range(0, len(big), 1000)])
        want["frag"] += big
        await ws.send(b"plain\0" + big)
        want["plain"] += big
    for name, data in want.items():
        wait_file(os.path.join(d, name), data)
    srv.wait_log("stream 'plain' closed")
    check("received %d bytes" % len(want["plain"]) in srv.log(),
          "the close line does not count the bytes received:\n" + srv.log())

    # The name itself split across fragments (raw frames: a library would not do this).
    raw = RawWS("127.0.0.1", srv.port, "/")
    raw.frame(0x2, b"spl", fin=False)
    raw.frame(0x0, b"it\0ab", fin=False)
    raw.frame(0x0, b"cd", fin=True)
    raw.frame(0x2, b"split\0ef", fin=True)
    raw.close()
    wait_file(os.path.join(d, "split"), b"abcdef")

    # Larger than --max-message: 1009, and nothing of that message is written.
    async with websockets.connect(srv.url(), max_size=None) as ws:
        await ws.send(b"cap\0first")
        wait_file(os.path.join(d, "cap"), b"first")
        await ws.send([b"cap\0", b"x" * 600000, b"y" * 600000])
        await expect_close(ws, 1009, "oversized message")
    check(file_bytes(os.path.join(d, "cap")) == b"first", "oversized message left bytes")
    srv.wait_log("larger than 1048576 bytes")

    # Killed mid-message: first fragment, then the TCP connection drops (RST).
    raw = RawWS("127.0.0.1", srv.port, "/")
    raw.frame(0x2, b"cut\0complete-1", fin=True)
    raw.frame(0x2, b"cut\0complete-2", fin=True)
    raw.frame(0x2, b"cut\0half of a mess", fin=False)
    wait_for(lambda: file_bytes(os.path.join(d, "cut")) == b"complete-1complete-2",
             "the complete messages before the cut")
    raw.abort()
    srv.wait_log("stream 'cut' closed")
    check(file_bytes(os.path.join(d, "cut")) == b"complete-1complete-2",
          "a message cut off mid-way left bytes: %r" % file_bytes(os.path.join(d, "cut")))
    # Same, with a large message whose single frame is cut off mid-way.
    raw = RawWS("127.0.0.1", srv.port, "/")
    payload = b"cut2\0" + b"z" * 300000
    raw.frame(0x2, b"cut2\0ok", fin=True)
    raw.s.sendall(bytes([0x82, 0x80 | 127]) + len(payload).to_bytes(8, "big") + b"\0\0\0\0"
                  + payload[:150000])
    wait_file(os.path.join(d, "cut2"), b"ok")
    raw.abort()
    srv.wait_log("stream 'cut2' closed")
    check(file_bytes(os.path.join(d, "cut2")) == b"ok", "cut-off single frame left bytes")

    # Plain HTTP is refused with a status, not a hang.
    try:
        urllib.request.urlopen("http://127.0.0.1:%d/" % srv.port, timeout=10)
        fail("plain HTTP request succeeded")
    except urllib.error.HTTPError as e:
        check(e.code == 400, "plain HTTP: status %d" % e.code)

    # Appends to what is there (like the original server), across connections.
    async with websockets.connect(srv.url()) as ws:
        await ws.send([b"plain\0", b"tail"])
    wait_file(os.path.join(d, "plain"), want["plain"] + b"tail")

    check(srv.alive(), "server died")
    check(srv.stop() == 0, "exit status after SIGTERM")
    print("ok")


asyncio.run(main())
