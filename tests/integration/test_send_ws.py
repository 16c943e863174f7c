#!/usr/bin/python3
"""pirec send file:// -> ws://: byte-exact into `pirec ingest` (IPv4, and IPv6 [::1] when
the machine has it) and into a legacy server without pirec.resume.1 (a Python websockets
peer that stores "<name> NUL <data>" messages like the original's record_server); against
a port nobody serves, --give-up ends the run with exit 1 and says how much was not
delivered, and so does SIGINT with --stop-timeout. Skips (77) while pirec ingest is not
built."""
import asyncio
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time

BIN = os.environ["PIREC_BIN"]
TMP = os.environ["TEST_TMP"]
SAN = os.environ.get("PIREC_SAN") == "1"
procs = []


def fail(msg):
    print("FAIL:", msg)
    sys.exit(1)


def cleanup():
    for p in procs:
        if p.poll() is None:
            p.kill()
            p.wait()


def wait_for(cond, what, timeout=30, step=0.02):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return
        time.sleep(step)
    fail("timed out waiting for " + what)


def start_ingest(listen, d):
    p = subprocess.Popen([BIN, "ingest", "--listen", listen, "--dir", d],
                         stdout=subprocess.PIPE, stderr=open(os.path.join(TMP, "ingest.err"), "ab"))
    procs.append(p)
    end = time.monotonic() + 30
    buf = b""
    while time.monotonic() < end:
        r, _, _ = select.select([p.stdout], [], [], 0.2)
        if r:
            chunk = os.read(p.stdout.fileno(), 4096)
            if not chunk:
                break
            buf += chunk
            for line in buf.decode(errors="replace").splitlines():
                if "listening on" in line:
                    return p, int(line.rsplit(":", 1)[1])
        if p.poll() is not None:
            break
    fail("pirec ingest --listen %s did not print its port: %r" % (listen, buf))


def send(args, timeout=120):
    p = subprocess.Popen([BIN, "send", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    procs.append(p)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        fail("pirec send %s did not end in %d s" % (args, timeout))
    return p.returncode, out.decode(errors="replace"), err.decode(errors="replace")


def read(path):
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        return None


class LegacyServer:
    """Stores every binary message "<name> NUL <data>" by appending data to name, and
    never answers the pirec.resume.1 subprotocol: what the original's server does."""

    def __init__(self):
        import websockets  # Debian's python3-websockets
        self.files = {}
        self.ready = threading.Event()
        self.loop = asyncio.new_event_loop()

        async def handler(ws, path=None):
            async for msg in ws:
                if isinstance(msg, bytes) and b"\0" in msg:
                    name, data = msg.split(b"\0", 1)
                    self.files.setdefault(name.decode(), bytearray()).extend(data)

        async def main():
            self.server = await websockets.serve(handler, "127.0.0.1", 0, max_size=None)
            self.port = self.server.sockets[0].getsockname()[1]
            self.ready.set()
            await self.server.wait_closed()

        self.thread = threading.Thread(target=lambda: self.loop.run_until_complete(main()),
                                       daemon=True)
        self.thread.start()
        if not self.ready.wait(30):
            fail("legacy server did not start")

    def close(self):
        self.loop.call_soon_threadsafe(self.server.close)
        self.thread.join(10)


def main():
    if subprocess.run([BIN, "ingest", "--help"], capture_output=True).returncode != 0:
        print("FAIL: pirec ingest --help fails")
        sys.exit(1)
    size = (1 if SAN else 3) << 20
    data = os.urandom(size) + b"tail"
    src = os.path.join(TMP, "in.bin")
    with open(src, "wb") as f:
        f.write(data)

    # 1. into pirec ingest, byte-exact, odd chunk size
    store = os.path.join(TMP, "store")
    ing, port = start_ingest("127.0.0.1:0", store)
    rc, out, err = send(["--chunk-size", "1000", "file://" + src, "ws://127.0.0.1:%d/rec/one" % port])
    if rc != 0:
        fail("send to ingest: exit %d: %s" % (rc, err))
    if "%d bytes" % len(data) not in out or "all delivered" not in out:
        fail("summary: %r" % out)
    # exit 0 means the ingest acknowledged every byte as stored: no waiting needed
    if read(os.path.join(store, "one")) != data:
        fail("ingest file 'one' differs from the input")

    # 2. IPv6 loopback, when this machine has it
    try:
        socket.socket(socket.AF_INET6).bind(("::1", 0))
        has6 = True
    except OSError:
        has6 = False
    if has6:
        store6 = os.path.join(TMP, "store6")
        ing6, port6 = start_ingest("[::1]:0", store6)
        rc, out, err = send(["file://" + src, "ws://[::1]:%d/six" % port6])
        if rc != 0:
            fail("send to [::1]: exit %d: %s" % (rc, err))
        if read(os.path.join(store6, "six")) != data:
            fail("ingest over IPv6: file differs")
    else:
        print("no IPv6 loopback here: [::1] part not run")

    # 3. a legacy server (no resume): everything written to the socket counts as delivered
    legacy = LegacyServer()
    rc, out, err = send(["file://" + src, "ws://127.0.0.1:%d/legacy.pcm" % legacy.port])
    if rc != 0:
        fail("send to legacy server: exit %d: %s" % (rc, err))
    wait_for(lambda: bytes(legacy.files.get("legacy.pcm", b"")) == data,
             "the legacy server to hold the whole input")
    legacy.close()

    # 4. nobody serves the port: --give-up 1 fails and says what was not delivered
    hole = socket.socket()
    hole.bind(("127.0.0.1", 0))  # bound, not listening: connections are refused
    dead = hole.getsockname()[1]
    t0 = time.monotonic()
    rc, out, err = send(["--give-up", "1", "file://" + src, "ws://127.0.0.1:%d/x" % dead], timeout=60)
    if rc != 1:
        fail("give-up: exit %d (want 1): %s" % (rc, err))
    if "giving up" not in err or "not delivered" not in err:
        fail("give-up: message: %s" % err)
    print("give-up ended after %.1f s" % (time.monotonic() - t0))

    # 5. SIGINT while the server is down ends within the stop timeout, exit 1, says the loss
    p = subprocess.Popen([BIN, "send", "--stop-timeout", "200", "file://" + src,
                          "ws://127.0.0.1:%d/y" % dead], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    procs.append(p)
    err_lines = []
    # wait until it has tried to connect (the warning line), then interrupt
    end = time.monotonic() + 30
    while time.monotonic() < end:
        r, _, _ = select.select([p.stderr], [], [], 0.2)
        if r:
            line = p.stderr.readline().decode(errors="replace")
            err_lines.append(line)
            if "connect" in line:
                break
    p.send_signal(signal.SIGINT)
    try:
        out, rest = p.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        fail("SIGINT: pirec send did not end")
    err = "".join(err_lines) + rest.decode(errors="replace")
    if p.returncode != 1:
        fail("SIGINT: exit %d (want 1): %s" % (p.returncode, err))
    if "interrupted" not in err or "not delivered" not in err:
        fail("SIGINT: message: %s" % err)
    hole.close()
    print("ok")


try:
    main()
finally:
    cleanup()
