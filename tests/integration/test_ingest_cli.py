#!/usr/bin/python3
"""pirec ingest: command line (--help, bad --listen, unwritable --dir, port in use, IPv6).

Also the helpers the other test_ingest_*.py import (this file is a test and a module:
tests/run.sh runs it, the others `from test_ingest_cli import ...`).
"""
import asyncio
import atexit
import base64
import os
import select
import signal
import socket
import struct
import subprocess
import sys
import time

BIN = os.environ.get("PIREC_BIN", "build/pirec")
TMP = os.environ.get("TEST_TMP") or "/tmp"
SAN = os.environ.get("PIREC_SAN") == "1"

_procs = []


def _cleanup():
    for p in _procs:
        if p.poll() is None:
            p.kill()
            p.wait()


atexit.register(_cleanup)


def fail(msg):
    print("FAIL:", msg, flush=True)
    sys.exit(1)


def check(cond, msg):
    if not cond:
        fail(msg)


def wait_for(cond, what, timeout=20.0, step=0.02):
    """Polls cond() until true; fails the test with `what` after timeout seconds."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = cond()
        if v:
            return v
        time.sleep(step)
    fail("timed out waiting for " + what)


class Ingest:
    """A running `pirec ingest --listen 127.0.0.1:0`, killed at exit whatever happens."""

    def __init__(self, dir, extra=(), env=None, listen="127.0.0.1:0", prefix=()):
        self.dir = dir
        self.logpath = os.path.join(TMP, "ingest-%d.log" % len(_procs))
        e = dict(os.environ)
        if env:
            e.update(env)
        self.proc = subprocess.Popen([*prefix, BIN, "ingest", "--listen", listen, "--dir", dir,
                                      *extra],
                                     stdout=subprocess.PIPE, stderr=open(self.logpath, "wb"),
                                     env=e)
        _procs.append(self.proc)
        line = self._read_line(30.0)
        check(line.startswith("pirec ingest: listening on "),
              "unexpected first line %r; log:\n%s" % (line, self.log()))
        self.port = int(line.rsplit(":", 1)[1])
        self.host = "[::1]" if listen.startswith("[") else "127.0.0.1"

    def _read_line(self, timeout):
        buf = b""
        end = time.monotonic() + timeout
        fd = self.proc.stdout.fileno()
        while b"\n" not in buf:
            left = end - time.monotonic()
            if left <= 0:
                fail("pirec ingest printed no listening line; log:\n" + self.log())
            r, _, _ = select.select([fd], [], [], left)
            if r:
                chunk = os.read(fd, 4096)
                if not chunk:
                    fail("pirec ingest exited (%s) before listening; log:\n%s"
                         % (self.proc.wait(), self.log()))
                buf += chunk
        return buf.decode().strip()

    def url(self, path="/"):
        return "ws://%s:%d%s" % (self.host, self.port, path)

    def log(self):
        try:
            with open(self.logpath, "rb") as f:
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def wait_log(self, text, timeout=20.0):
        return wait_for(lambda: text in self.log(), "log line %r; log:\n%s" % (text, self.log()),
                        timeout)

    def stop(self, sig=signal.SIGTERM, timeout=30.0):
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            fail("pirec ingest did not exit within %ss of signal %d; log:\n%s"
                 % (timeout, sig, self.log()))

    def alive(self):
        return self.proc.poll() is None


def file_bytes(path):
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        return None


def wait_file(path, want, timeout=20.0):
    """Polls until the file holds exactly `want`; fails with what it holds instead."""
    end = time.monotonic() + timeout
    got = None
    while time.monotonic() < end:
        got = file_bytes(path)
        if got == want:
            return
        time.sleep(0.02)
    fail("%s: expected %d bytes, found %s" % (path, len(want),
         "no file" if got is None else "%d bytes%s" % (
             len(got), " (same prefix)" if want.startswith(got) else " (different content)")))


class RawWS:
    """A minimal WebSocket client over a plain socket, for frames a library will not send
    (a message cut off mid-way, a name split across fragments)."""

    def __init__(self, host, port, path="/", protocol=None):
        self.s = socket.create_connection((host, port), timeout=20)
        key = base64.b64encode(os.urandom(16)).decode()
        req = ("GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n" % (path, host, port, key))
        if protocol:
            req += "Sec-WebSocket-Protocol: %s\r\n" % protocol
        self.s.sendall((req + "\r\n").encode())
        resp = b""
        while b"\r\n\r\n" not in resp:
            chunk = self.s.recv(4096)
            if not chunk:
                fail("handshake: connection closed; got %r" % resp)
            resp += chunk
        head, self.rest = resp.split(b"\r\n\r\n", 1)
        check(head.startswith(b"HTTP/1.1 101"), "handshake refused: %r" % head)

    def frame(self, opcode, payload, fin=True):
        b0 = (0x80 if fin else 0) | opcode
        n = len(payload)
        if n < 126:
            hdr = struct.pack("!BB", b0, 0x80 | n)
        elif n < 65536:
            hdr = struct.pack("!BBH", b0, 0x80 | 126, n)
        else:
            hdr = struct.pack("!BBQ", b0, 0x80 | 127, n)
        mask = os.urandom(4)
        body = _mask(payload, mask)
        self.s.sendall(hdr + mask + body)

    def read_close(self, timeout=20.0):
        """Reads frames until a close frame; returns its code (None if the TCP connection
        ended without one)."""
        self.s.settimeout(timeout)
        buf = self.rest
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            while len(buf) >= 2:
                op = buf[0] & 0x0F
                n = buf[1] & 0x7F
                off = 2
                if n == 126:
                    if len(buf) < 4:
                        break
                    n = struct.unpack("!H", buf[2:4])[0]
                    off = 4
                elif n == 127:
                    if len(buf) < 10:
                        break
                    n = struct.unpack("!Q", buf[2:10])[0]
                    off = 10
                if len(buf) < off + n:
                    break
                payload = buf[off:off + n]
                buf = buf[off + n:]
                if op == 8:
                    return struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
            try:
                chunk = self.s.recv(65536)
            except socket.timeout:
                break
            if not chunk:
                return None
            buf += chunk
        return None

    def abort(self):
        """Drops the TCP connection at once (RST), no close frame."""
        self.s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.s.close()

    def close(self):
        self.s.close()


def _mask(payload, mask):
    n = len(payload)
    m = (mask * (n // 4 + 1))[:n]
    return (int.from_bytes(payload, "little") ^ int.from_bytes(m, "little")).to_bytes(n, "little")


async def expect_close(ws, code, what, timeout=20.0):
    """Waits until the server closes ws; fails unless it used `code`. Returns the reason."""
    import websockets
    try:
        async with asyncio_timeout(timeout):
            while True:
                await ws.recv()
    except websockets.ConnectionClosed as e:
        got = e.rcvd.code if e.rcvd else None
        check(got == code, "%s: expected close code %s, got %s (%s)"
              % (what, code, got, e.rcvd.reason if e.rcvd else "no close frame"))
        return e.rcvd.reason
    except asyncio.TimeoutError:
        fail("%s: the server did not close the connection" % what)


class asyncio_timeout:
    def __init__(self, t):
        self.t = t

    async def __aenter__(self):
        self.task = asyncio.current_task()
        self.h = asyncio.get_running_loop().call_later(self.t, self.task.cancel)

    async def __aexit__(self, et, e, tb):
        self.h.cancel()
        if et is asyncio.CancelledError:
            raise asyncio.TimeoutError()
        return False


# ---- the test of this file ---------------------------------------------------------

def run(args, timeout=20):
    return subprocess.run([BIN, "ingest", *args], capture_output=True, text=True, timeout=timeout)


def main():
    r = run(["--help"])
    check(r.returncode == 0, "--help exit status %d" % r.returncode)
    for word in ("--listen", "--dir", "0.0.0.0:9090", "created if missing", "1009"):
        check(word in r.stdout, "--help does not mention %r:\n%s" % (word, r.stdout))

    d = os.path.join(TMP, "store")
    bad = {
        "127.0.0.1": "no port",
        "127.0.0.1:99999": "0 to 65535",
        "127.0.0.1:-1": "0 to 65535",
        "127.0.0.1:http": "0 to 65535",
        "::1:9090": "brackets",
        "[::1]9090": "brackets",
        "localhost:9090": "not a numeric",
        "999.1.1.1:9090": "not a numeric",
        "": "empty",
    }
    for val, msg in bad.items():
        r = run(["--listen", val, "--dir", d])
        check(r.returncode == 2, "--listen %r: exit %d, want 2" % (val, r.returncode))
        check(msg in r.stderr, "--listen %r: message %r lacks %r" % (val, r.stderr, msg))
    r = run(["--bogus"])
    check(r.returncode == 2 and "--help" in r.stderr, "unknown option: %r" % (r.stderr,))
    r = run(["--max-message", "lots"])
    check(r.returncode == 2 and "--max-message" in r.stderr, "bad number: %r" % (r.stderr,))

    # A --dir that cannot be a directory: clear error, exit 1, nothing listening.
    f = os.path.join(TMP, "plainfile")
    open(f, "w").close()
    r = run(["--listen", "127.0.0.1:0", "--dir", f])
    check(r.returncode == 1, "--dir FILE: exit %d, want 1" % r.returncode)
    check(f in r.stderr and "Not a directory" in r.stderr, "--dir FILE message: %r" % r.stderr)
    r = run(["--listen", "127.0.0.1:0", "--dir", os.path.join(f, "sub")])
    check(r.returncode == 1 and "cannot create directory" in r.stderr,
          "--dir FILE/sub: %d %r" % (r.returncode, r.stderr))
    # Read-only even for root: a read-only bind mount, when this sandbox allows mounting.
    ro = os.path.join(TMP, "ro")
    os.mkdir(ro)
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", ro],
                      capture_output=True).returncode == 0:
        try:
            r = run(["--listen", "127.0.0.1:0", "--dir", ro])
            check(r.returncode == 1 and "not writable" in r.stderr,
                  "read-only --dir: %d %r" % (r.returncode, r.stderr))
        finally:
            subprocess.run(["umount", ro])
    else:
        print("note: cannot mount here; read-only --dir case not run")

    # DIR is created when missing.
    newdir = os.path.join(TMP, "fresh")
    srv = Ingest(newdir)
    check(os.path.isdir(newdir), "--dir was not created")
    # Port in use: exit 1 and say so.
    r = run(["--listen", "127.0.0.1:%d" % srv.port, "--dir", d])
    check(r.returncode == 1 and "Address already in use" in r.stderr,
          "port in use: %d %r" % (r.returncode, r.stderr))
    check(srv.stop() == 0, "SIGTERM: nonzero exit")

    # IPv6 loopback, when this machine has it.
    try:
        s6 = socket.socket(socket.AF_INET6)
        s6.bind(("::1", 0))
        s6.close()
        have6 = True
    except OSError:
        have6 = False
    if have6:
        srv6 = Ingest(d, listen="[::1]:0")
        import websockets

        async def go():
            async with websockets.connect(srv6.url("/v6")) as ws:
                await ws.send([b"six\0", b"hello"])
        asyncio.run(go())
        wait_file(os.path.join(d, "six"), b"hello")
        check(srv6.stop() == 0, "SIGTERM [::1]: nonzero exit")
    else:
        print("note: no IPv6 loopback; [::1] case not run")
    print("ok")


if __name__ == "__main__":
    main()
