#!/usr/bin/python3
"""The ingest's side of forwarded takes, driven by hand over WebSocket: a head that does
not match the copy (wrong length, an MD5 that differs from its STREAMINFO, a torn copy
whose samples do not match the MD5, a malformed line) is never acknowledged and the log
says why, the copy stays where it is; a head with a bad folder name is refused; the right
head is acknowledged only after the check, and the copy moves to RECORDER/DEVICE/ byte for
byte equal to the original, the head's own file gone."""
import asyncio
import json
import os
import subprocess
import sys

import websockets

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_ingest_cli import TMP, Ingest, asyncio_timeout, check, fail  # noqa: E402

PROTO = ["pirec.resume.1"]
NAME = "fwd~pi1~mic~take.flac"


def make_flac():
    wav = os.path.join(TMP, "src.wav")
    flac = os.path.join(TMP, "src.flac")
    subprocess.run(["sox", "-n", "-r", "48000", "-c", "2", "-b", "16", wav, "synth", "2",
                    "sine", "440"], check=True)
    subprocess.run(["flac", "-s", "-f", "--padding=4096", "-o", flac, wav], check=True)
    return open(flac, "rb").read()


def header_len(b):
    off = 4
    while True:
        last = b[off] & 0x80
        off += 4 + int.from_bytes(b[off + 1:off + 4], "big")
        if last:
            return off


async def recv_json(ws, timeout=10.0):
    async with asyncio_timeout(timeout):
        while True:
            m = await ws.recv()
            if isinstance(m, str):
                return json.loads(m)


async def stat(ws, name):
    await ws.send(json.dumps({"op": "stat", "name": name}))
    while True:
        m = await recv_json(ws)
        if m["op"] == "stat" and m["name"] == name:
            return m["size"]


async def acked(ws, name, size, timeout):
    """True when an ack (or a stat) says `size` bytes of `name` are stored in time."""
    try:
        async with asyncio_timeout(timeout):
            while True:
                if await stat(ws, name) >= size:
                    return True
                await asyncio.sleep(0.1)
    except asyncio.TimeoutError:
        return False


def head(size, hdr, md5=None):
    m = md5 or hdr[26:42].hex()
    return b"pirec-forward-head 1 %d %d %s\n" % (size, len(hdr), m.encode()) + hdr


async def main():
    data = make_flac()
    hl = header_len(data)
    final_hdr = data[:hl]
    # what the recorder streams first: the header as first written (0 samples, no MD5)
    first_hdr = bytearray(final_hdr)
    first_hdr[18 + 3:18 + 8] = bytes([first_hdr[21] & 0xF0, 0, 0, 0, 0])
    first_hdr[26:42] = bytes(16)
    copy = bytes(first_hdr) + data[hl:]
    d = os.path.join(TMP, "store")
    srv = Ingest(d)
    flat = os.path.join(d, NAME)
    moved = os.path.join(d, "pi1", "mic", "take.flac")
    hname = NAME + ".head"
    async with websockets.connect(srv.url("/" + NAME), subprotocols=PROTO) as ws:
        check(await stat(ws, NAME) == 0, "fresh stream")
        await ws.send(NAME.encode() + b"\0" + copy[:len(copy) - 1000])
        check(await acked(ws, NAME, len(copy) - 1000, 10), "data stored")

        # the copy is short: never acked, log says so
        await ws.send(hname.encode() + b"\0" + head(len(copy), final_hdr))
        check(not await acked(ws, hname, 1, 1.5), "a head for a short copy was acked")
        srv.wait_log("length differs")
        # an MD5 on the line that is not the header's
        await ws.send(hname.encode() + b"\0" + head(len(copy), final_hdr, "0" * 32))
        srv.wait_log("differs from the one in STREAMINFO")
        # a malformed line
        await ws.send(hname.encode() + b"\0" + b"pirec-forward-head 2 x\n" + final_hdr)
        srv.wait_log("is not 'pirec-forward-head 1 SIZE HLEN MD5'")
        check(not await acked(ws, hname, 1, 0.5), "a bad head was acked")

        # the rest arrives, but one byte of audio is wrong: the MD5 check fails
        bad = bytearray(copy[len(copy) - 1000:])
        bad[500] ^= 0x01
        await ws.send(NAME.encode() + b"\0" + bytes(bad))
        check(await acked(ws, NAME, len(copy), 10), "rest stored")
        await ws.send(hname.encode() + b"\0" + head(len(copy), final_hdr))
        check(not await acked(ws, hname, 1, 2.0), "a head for a damaged copy was acked")
        srv.wait_log("it stays unverified")
        check(os.path.exists(flat) and not os.path.exists(moved), "a damaged copy stays flat")

    # repair the copy (as a resend of the right bytes would): the next head verifies it
    with open(flat, "r+b") as f:
        f.seek(len(copy) - 1000 + 500)
        f.write(bytes([copy[len(copy) - 1000 + 500]]))
    async with websockets.connect(srv.url("/" + hname), subprotocols=PROTO) as ws:
        for _ in range(40):   # the recorder's resends
            await ws.send(hname.encode() + b"\0" + head(len(copy), final_hdr))
            if await acked(ws, hname, 1, 0.5):
                break
        else:
            fail("the verified head was never acked; log:\n" + srv.log()[-2000:])
        # a folder name that could leave the folder is refused, never acked
        evil = "fwd~..~mic~x.flac.head"
        await ws.send(evil.encode() + b"\0" + head(len(copy), final_hdr))
        check(not await acked(ws, evil, 1, 1.0), "an evil name was acked")
    srv.wait_log("MD5 verified")
    check(os.path.exists(moved), "verified copy not moved into pi1/mic/")
    check(open(moved, "rb").read() == data, "the moved copy is not the original")
    check(not os.path.exists(flat) and not os.path.exists(os.path.join(d, hname)),
          "flat files left: %s" % os.listdir(d))
    check(not os.path.exists(os.path.join(TMP, "x.flac")), "escaped the folder")
    check(srv.stop() == 0, "ingest exit")
    print("ok")


asyncio.run(main())
