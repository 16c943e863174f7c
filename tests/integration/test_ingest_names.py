#!/usr/bin/python3
"""pirec ingest refuses bad stream names with close code 1008 and a log line naming the
connection and the reason (the name escaped), writes nothing outside DIR, refuses
symlinks, and keeps serving the others meanwhile."""
import asyncio
import os

import websockets

from test_ingest_cli import TMP, Ingest, check, expect_close, file_bytes, wait_file


def tree(path):
    out = set()
    for root, dirs, files in os.walk(path):
        for n in dirs + files:
            out.add(os.path.relpath(os.path.join(root, n), path))
    return out


async def main():
    top = os.path.join(TMP, "top")
    d = os.path.join(top, "store")
    os.makedirs(d)
    outside = os.path.join(top, "outside")
    with open(outside, "wb") as f:
        f.write(b"untouched")
    os.symlink(outside, os.path.join(d, "link"))
    os.mkdir(os.path.join(d, "adir"))
    srv = Ingest(d)

    bad = [
        (b"../escape", "starts with '.'", "name starts with '.': '../escape'"),
        (b"a/b", "contains '/'", None),
        (b"/etc/passwd", "contains '/'", None),
        (b"..", "starts with '.'", None),
        (b".", "starts with '.'", None),
        (b".hidden", "starts with '.'", None),
        (b"", "empty name", None),
        (b"tab\there", "control character", "tab\\x09here"),
        (b"nl\nx", "control character", "nl\\x0ax"),
        (b"esc\x1b[31m", "control character", "esc\\x1b[31m"),
        (b"del\x7f", "control character", "del\\x7f"),
        (b"n" * 256, "longer than 255", None),
        (b"n" * 300, "no NUL", None),
    ]
    # A good client stays connected (and writing) through all of it.
    async with websockets.connect(srv.url("/good")) as good:
        sent = b""
        for name, why, logged in bad:
            async with websockets.connect(srv.url("/bad")) as ws:
                await ws.send([name + b"\0", b"payload"])
                reason = await expect_close(ws, 1008, "name %r" % name)
                check(why in reason, "name %r: close reason %r lacks %r" % (name, reason, why))
            srv.wait_log(why)
            if logged:
                srv.wait_log(logged)
            part = b"ok%d " % len(sent)
            await good.send([b"good\0", part])
            sent += part
        # A message with no NUL at all.
        async with websockets.connect(srv.url()) as ws:
            await ws.send(b"nonul")
            reason = await expect_close(ws, 1008, "message without NUL")
            check("NUL" in reason, "no-NUL reason: %r" % reason)
        # A name that is a symlink (to a file outside DIR) or a directory: refused.
        for name in (b"link", b"adir"):
            async with websockets.connect(srv.url()) as ws:
                await ws.send([name + b"\0", b"EVIL"])
                reason = await expect_close(ws, 1008, "name %r" % name)
                check("symlink" in reason, "%r: reason %r" % (name, reason))
        # Control messages are held to the same rules.
        async with websockets.connect(srv.url(), subprotocols=["pirec.resume.1"]) as ws:
            await ws.send('{"op":"stat","name":"../x"}')
            await expect_close(ws, 1008, "stat with a bad name")
        await good.send(b"good\0end")
        sent += b"end"
    wait_file(os.path.join(d, "good"), sent)

    check(file_bytes(outside) == b"untouched", "the file outside DIR behind a symlink changed")
    check(tree(top) == {"store", "outside", "store/link", "store/adir", "store/good"},
          "unexpected files: %s" % sorted(tree(top)))
    check("connection #" in srv.log() and "127.0.0.1" in srv.log(),
          "log lines do not name the connection")
    # An escape sequence in a name must not reach the log raw.
    check("\x1b" not in srv.log() and "tab\there" not in srv.log(), "unescaped name in the log")
    check(srv.stop() == 0, "exit status after SIGTERM")
    print("ok")


asyncio.run(main())
