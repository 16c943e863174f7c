#!/usr/bin/python3
"""Helpers for the `pirec serve` integration tests (imported by test_serve_*.py and
test_original_client.py); run as a script it is the smoke test: start, GET /api/status,
SIGTERM, exit 0.

Every server is started on 127.0.0.1:0 and the port is read from the line pirec prints;
waits poll a condition with a deadline, never a fixed sleep."""
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time

BIN = os.environ.get("PIREC_BIN", "build/pirec")
TMP = os.environ.get("TEST_TMP", "/tmp/pirec-serve-test")
SAN = os.environ.get("PIREC_SAN") == "1"
SLOW = 3 if SAN else 1          # deadlines only; never asserted as timings


def skip(msg):
    print(msg)
    sys.exit(77)


def fail(msg):
    print("FAIL: " + msg)
    sys.exit(1)


def check(cond, msg):
    if not cond:
        fail(msg)


def wait_for(pred, timeout, what):
    end = time.monotonic() + timeout * SLOW
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        time.sleep(0.02)
    fail("timed out waiting for " + what)


class Server:
    """One `pirec serve --demo` on a free loopback port, in its own directories."""

    def __init__(self, name="srv", args=(), demo=True, config=None):
        self.dir = os.path.join(TMP, name)
        self.rec = os.path.join(self.dir, "rec")
        self.state = os.path.join(self.dir, "state")
        os.makedirs(self.dir, exist_ok=True)
        cmd = [BIN, "serve", "--listen", "127.0.0.1:0", "--recordings", self.rec,
               "--state-dir", self.state]
        if demo:
            cmd.append("--demo")
        if config:
            cmd += ["--config", config]
        cmd += list(args)
        self.err_path = os.path.join(self.dir, "stderr")
        self.err = open(self.err_path, "wb")
        self.p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self.err)
        self.lines = []
        self.port = None
        got = threading.Event()

        def reader():
            for raw in self.p.stdout:
                line = raw.decode(errors="replace")
                self.lines.append(line)
                m = re.search(r"listening on http://\S+:(\d+)/", line)
                if m and not got.is_set():
                    self.port = int(m.group(1))
                    got.set()
            got.set()

        threading.Thread(target=reader, daemon=True).start()
        if not got.wait(30 * SLOW) or self.port is None:
            self.p.kill()
            self.p.wait()
            err = open(self.err_path, "rb").read().decode(errors="replace")
            fail("pirec serve did not print its port; stderr:\n" + err)

    def stderr(self):
        if not self.err.closed:
            self.err.flush()
        return open(self.err_path, "rb").read().decode(errors="replace")

    def request(self, method, path, headers=None, body=None, timeout=10):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout * SLOW)
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        data = r.read()
        c.close()
        return r.status, dict((k.lower(), v) for k, v in r.getheaders()), data

    def json(self, method, path, headers=None, expect=None):
        st, h, data = self.request(method, path, headers)
        check(h.get("content-type", "").startswith("application/json"),
              "%s %s: content-type %r" % (method, path, h.get("content-type")))
        try:
            obj = json.loads(data)
        except ValueError:
            fail("%s %s: answer is not JSON: %r" % (method, path, data[:200]))
        if expect is not None and st != expect:
            fail("%s %s: status %d, want %d: %s" % (method, path, st, expect, obj))
        return st, obj

    def raw(self, request_bytes, timeout=10):
        """Sends bytes exactly as given (no client-side normalisation of '..')."""
        s = socket.create_connection(("127.0.0.1", self.port), timeout=timeout * SLOW)
        s.sendall(request_bytes)
        out = b""
        while True:
            b = s.recv(65536)
            if not b:
                break
            out += b
        s.close()
        head = out.split(b"\r\n", 1)[0].decode(errors="replace")
        m = re.match(r"HTTP/1\.\d (\d+)", head)
        return (int(m.group(1)) if m else 0), out

    def take(self, dev="tone", client="test"):
        st, obj = self.json("GET", "/api/recording/%s/take?client=%s" % (dev, client), expect=200)
        check(obj.get("state") is True and obj.get("token"), "take answer %r" % obj)
        return obj["token"]

    def stop(self, sig=signal.SIGTERM, timeout=30):
        if self.p.poll() is None:
            self.p.send_signal(sig)
        try:
            rc = self.p.wait(timeout * SLOW)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
            fail("pirec serve did not exit after %s" % sig)
        self.err.close()
        return rc

    def kill(self):
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait()


class Sse:
    """A minimal EventSource over a raw socket: parses id/event/data/retry and comments."""

    def __init__(self, port, path="/api/status/%d" % int(time.time() * 1000), last_id=None):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=10 * SLOW)
        hdr = "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n" % path
        if last_id is not None:
            hdr += "Last-Event-ID: %s\r\n" % last_id
        self.s.sendall((hdr + "\r\n").encode())
        self.buf = b""
        self.events = []        # dicts: id, event, data(str), retry
        self.comments = []
        self.closed = False
        self.headers = {}
        self.status = 0
        self.lock = threading.Lock()
        self._read_headers()
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()

    def _recv(self):
        try:
            b = self.s.recv(65536)
        except OSError:
            b = b""
        if not b:
            self.closed = True
        return b

    def _read_headers(self):
        while b"\r\n\r\n" not in self.buf:
            b = self._recv()
            if not b:
                fail("SSE: connection closed before headers")
            self.buf += b
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode().split("\r\n")
        self.status = int(lines[0].split()[1])
        for l in lines[1:]:
            k, _, v = l.partition(":")
            self.headers[k.strip().lower()] = v.strip()
        self.chunked = "chunked" in self.headers.get("transfer-encoding", "")
        self.raw = b""

    def _dechunk(self):
        # Move whole chunks from buf into raw.
        while True:
            if not self.chunked:
                self.raw += self.buf
                self.buf = b""
                return
            i = self.buf.find(b"\r\n")
            if i < 0:
                return
            size = int(self.buf[:i].split(b";")[0], 16)
            if size == 0:
                self.closed = True
                return
            if len(self.buf) < i + 2 + size + 2:
                return
            self.raw += self.buf[i + 2:i + 2 + size]
            self.buf = self.buf[i + 2 + size + 2:]

    def _run(self):
        while True:
            self._dechunk()
            while b"\n\n" in self.raw:
                block, self.raw = self.raw.split(b"\n\n", 1)
                ev = {}
                for line in block.decode().split("\n"):
                    if line.startswith(":"):
                        with self.lock:
                            self.comments.append(line)
                        continue
                    k, _, v = line.partition(":")
                    v = v[1:] if v.startswith(" ") else v
                    if k == "data" and "data" in ev:
                        ev["data"] += "\n" + v
                    else:
                        ev[k] = v
                if ev:
                    with self.lock:
                        self.events.append(ev)
            if self.closed:
                return
            b = self._recv()
            if not b:
                return
            self.buf += b

    def of(self, kind):
        with self.lock:
            return [e for e in self.events if e.get("event") == kind]

    def wait_event(self, kind, timeout=10, pred=lambda e: True):
        def find():
            for e in self.of(kind):
                if pred(e):
                    return e
            return None
        return wait_for(find, timeout, "SSE event %r" % kind)

    def close(self):
        try:
            self.s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.s.close()


def main():
    srv = Server("smoke")
    try:
        st, obj = srv.json("GET", "/api/status", expect=200)
        check(isinstance(obj.get("devices"), list), "status has devices: %r" % obj)
        check(any(d.get("id") == "tone" for d in obj["devices"]), "demo tone listed: %r" % obj)
    finally:
        rc = srv.stop()
    check(rc == 0, "exit status %d after SIGTERM; stderr:\n%s" % (rc, srv.stderr()))
    print("ok")


if __name__ == "__main__":
    main()
