#!/usr/bin/python3
"""pirec ingest, subprotocol pirec.resume.1: stat before and after data, acks that reach
what was sent, losses on record in <name>.losses, takeover of a name by a newer
connection, and strict control messages (anything malformed closes with 1008)."""
import asyncio
import json
import os
import random

import websockets

from test_ingest_cli import (TMP, Ingest, asyncio_timeout, check, expect_close, fail,
                             file_bytes, wait_file)

PROTO = ["pirec.resume.1"]


async def recv_json(ws, timeout=20.0):
    try:
        async with asyncio_timeout(timeout):
            m = await ws.recv()
    except asyncio.TimeoutError:
        fail("no control message from the server within %ss" % timeout)
    check(isinstance(m, str), "expected a text control message, got %r" % (m[:60],))
    return json.loads(m)


async def stat(ws, name):
    await ws.send(json.dumps({"op": "stat", "name": name}))
    while True:
        m = await recv_json(ws)
        if m["op"] == "stat":
            check(m["name"] == name, "stat reply for %r, asked %r" % (m["name"], name))
            check(set(m) == {"op", "name", "size"}, "stat reply keys %s" % sorted(m))
            return m["size"]


async def wait_ack(ws, name, size, timeout=20.0):
    """Reads control messages until an ack for `name` reaches `size`."""
    last = None
    try:
        async with asyncio_timeout(timeout):
            while True:
                m = json.loads(await ws.recv())
                if m["op"] == "ack" and m["name"] == name:
                    check(last is None or m["size"] >= last, "ack went backwards")
                    last = m["size"]
                    check(last <= size, "ack %d beyond the %d bytes sent" % (last, size))
                    if last == size:
                        return
    except asyncio.TimeoutError:
        fail("acks for %r stopped at %s, sent %d" % (name, last, size))


async def main():
    d = os.path.join(TMP, "store")
    os.makedirs(d)
    with open(os.path.join(d, "mic"), "wb") as f:
        f.write(b"old content;")  # ingest appends: base is the existing size
    srv = Ingest(d)
    rng = random.Random(7)

    # stat before data reports the existing file; acks follow the data; stat after data
    # counts every message sent before it.
    async with websockets.connect(srv.url("/mic"), subprotocols=PROTO) as ws:
        check(ws.subprotocol == "pirec.resume.1", "subprotocol not answered: %r" % ws.subprotocol)
        base = await stat(ws, "mic")
        check(base == 12, "stat before data: %d, want 12" % base)
        data = b""
        for _ in range(30):
            chunk = rng.randbytes(rng.randint(1, 40000))
            await ws.send([b"mic\0", chunk])
            data += chunk
        await wait_ack(ws, "mic", base + len(data))
        more = rng.randbytes(5000)
        await ws.send(b"mic\0" + more)
        data += more
        check(await stat(ws, "mic") == base + len(data), "stat after data")
        # A stat for a name not yet written: 0, and the file exists empty.
        check(await stat(ws, "fresh") == 0, "stat of a new name")
        # Loss: logged and on record in <name>.losses.
        await ws.send(json.dumps({"op": "loss", "name": "mic", "at": base + len(data),
                                  "bytes": 2560}))
        check(await stat(ws, "mic") == base + len(data), "stat after loss")
    wait_file(os.path.join(d, "mic"), b"old content;" + data)
    losses = (file_bytes(os.path.join(d, "mic.losses")) or b"").decode()
    check(losses.count("\n") == 1 and "at=%d bytes=2560" % (base + len(data)) in losses,
          "mic.losses: %r" % losses)
    srv.wait_log("lost 2560 bytes")

    # Takeover: a newer connection that stats the name owns it; the older one is closed
    # (4001) and what it sends after that is not written.
    async with websockets.connect(srv.url(), subprotocols=PROTO) as old:
        size0 = await stat(old, "take")
        await old.send(b"take\0A")
        await wait_ack(old, "take", size0 + 1)
        async with websockets.connect(srv.url(), subprotocols=PROTO) as new:
            check(await stat(new, "take") == size0 + 1, "takeover stat")
            try:
                await old.send(b"take\0STALE")
            except websockets.ConnectionClosed:
                pass
            await expect_close(old, 4001, "the older connection after takeover")
            await new.send([b"take\0", b"B"])
            await wait_ack(new, "take", size0 + 2)
    wait_file(os.path.join(d, "take"), b"AB")
    srv.wait_log("stream 'take' taken over by connection")

    # Data alone also takes a name over (a legacy client too).
    async with websockets.connect(srv.url(), subprotocols=PROTO) as a:
        await stat(a, "t2")
        async with websockets.connect(srv.url()) as b:
            await b.send(b"t2\0legacy")
            await expect_close(a, 4001, "owner after a legacy client wrote its name")
    wait_file(os.path.join(d, "t2"), b"legacy")

    # Strict control messages.
    bad = [
        ("not json", "not valid JSON"),
        ('["stat","mic"]', "not a JSON object"),
        ('{"name":"mic"}', "no string \"op\""),
        ('{"op":"stat"}', "bad stat message"),
        ('{"op":"stat","name":"mic","extra":1}', "bad stat message"),
        ('{"op":"stat","name":"mic","name":"x"}', "not valid JSON"),
        ('{"op":"stat","name":5}', "bad stat message"),
        ('{"op":"loss","name":"mic","at":-1,"bytes":5}', ">= 0"),
        ('{"op":"loss","name":"mic","at":1.5,"bytes":5}', "bad loss message"),
        ('{"op":"loss","name":"mic","at":1}', "bad loss message"),
        ('{"op":"ack","name":"mic","size":1}', "unknown op"),
        ('{"op":"stat","name":".x"}', "bad name"),
        ('{"op":"stat","name":"a\\u0000b"}', "not valid JSON"),
        ('{"op":"stat","name":"mic"} trailing', "not valid JSON"),
    ]
    for text, why in bad:
        async with websockets.connect(srv.url(), subprotocols=PROTO) as ws:
            await ws.send(text)
            reason = await expect_close(ws, 1008, "control message %r" % text)
            check(why in reason, "control %r: reason %r lacks %r" % (text, reason, why))
    # A text message on a legacy connection is refused (1003): the client did not ask
    # for the control protocol.
    async with websockets.connect(srv.url()) as ws:
        check(ws.subprotocol is None, "legacy connection got a subprotocol")
        await ws.send('{"op":"stat","name":"mic"}')
        await expect_close(ws, 1003, "text on a legacy connection")
    # Legacy connections get no acks: the only thing they receive is the close.
    async with websockets.connect(srv.url()) as ws:
        await ws.send(b"quiet\0" + b"q" * 300000)
        try:
            async with asyncio_timeout(0.5):
                m = await ws.recv()
                fail("legacy connection received %r" % (m,))
        except asyncio.TimeoutError:
            pass
    wait_file(os.path.join(d, "quiet"), b"q" * 300000)

    check(srv.alive(), "server died")
    check(srv.stop() == 0, "exit status after SIGTERM")
    print("ok")


asyncio.run(main())
