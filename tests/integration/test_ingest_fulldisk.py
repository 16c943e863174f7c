#!/usr/bin/python3
"""pirec ingest on a full disk: the write that fails is undone (the file ends at its last
complete message), that connection is closed with 1011, the error is logged, and other
streams go on. Run twice: on a real 256 KiB tmpfs (when this sandbox may mount), and with
the documented fault hook PIREC_INGEST_FAULT_ENOSPC_AFTER."""
import asyncio
import os
import subprocess

import websockets

from test_ingest_cli import TMP, Ingest, check, expect_close, file_bytes, wait_file

MSG = 40000


async def scenario(srv, d, label):
    async with websockets.connect(srv.url("/other"), max_size=None) as other:
        await other.send([b"other\0", b"before;"])
        wait_file(os.path.join(d, "other"), b"before;")
        async with websockets.connect(srv.url("/big"), max_size=None) as big:
            sent = 0
            closed = False
            for i in range(64):  # 2.5 MB: more than the disk holds
                try:
                    await big.send([b"big\0", bytes([65 + i % 26]) * (MSG // 2),
                                    bytes([97 + i % 26]) * (MSG // 2)])
                except websockets.ConnectionClosed:
                    closed = True
                    break
                sent += 1
            reason = await expect_close(big, 1011, "%s: the stream that filled the disk" % label)
            check("No space left on device" in reason, "%s: close reason %r" % (label, reason))
        content = file_bytes(os.path.join(d, "big")) or b""
        check(len(content) % MSG == 0,
              "%s: file is %d bytes, not a whole number of %d-byte messages"
              % (label, len(content), MSG))
        check(0 < len(content) < 64 * MSG, "%s: %d bytes stored" % (label, len(content)))
        for k in range(len(content) // MSG):
            m = content[k * MSG:(k + 1) * MSG]
            check(m == bytes([65 + k % 26]) * (MSG // 2) + bytes([97 + k % 26]) * (MSG // 2),
                  "%s: message %d in the file is not what was sent" % (label, k))
        srv.wait_log("writing %d bytes failed: No space left on device" % MSG)
        # The other stream is still connected and can go on (truncation freed space).
        await other.send([b"other\0", b"after"])
        wait_file(os.path.join(d, "other"), b"before;after")
    check(srv.alive(), "%s: server died" % label)
    check(srv.stop() == 0, "%s: exit status after SIGTERM" % label)
    print("ok: %s (%d messages stored)" % (label, len(content) // MSG), flush=True)


async def main():
    # 1. A real full disk.
    d = os.path.join(TMP, "tiny")
    os.mkdir(d)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", d],
                       capture_output=True, text=True)
    if r.returncode == 0:
        try:
            await scenario(Ingest(d, ["--sync-interval", "100"]), d, "tmpfs of 256 KiB")
        finally:
            subprocess.run(["umount", "-l", d])
    else:
        print("note: cannot mount a tmpfs here (%s); fault hook only" % r.stderr.strip())
    # 2. The fault hook (same code path, any machine).
    d2 = os.path.join(TMP, "hook")
    srv = Ingest(d2, env={"PIREC_INGEST_FAULT_ENOSPC_AFTER": str(5 * MSG + 123)})
    check("fault injection" in srv.log(), "fault hook not announced in the log")
    await scenario(srv, d2, "fault hook")
    check(len(file_bytes(os.path.join(d2, "big"))) == 5 * MSG,
          "fault hook: expected the 5 messages that fit beside 'other'")


asyncio.run(main())
