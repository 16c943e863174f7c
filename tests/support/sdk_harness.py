"""Helpers for the tests that run the SDK-style caller programs (tests/support/sdk/callers.c)
against the library under test, the legacy peer (legacy_peer.py) and `pirec ingest`."""
import os
import re
import select
import subprocess
import sys
import time

SRC = os.environ.get("PIREC_SRC", ".")
BUILD = os.environ.get("PIREC_BUILD", "build")
TMP = os.environ.get("TEST_TMP") or "/tmp"
SAN = os.environ.get("PIREC_SAN") == "1"
procs = []


def fail(msg):
    print("FAIL:", msg, flush=True)
    sys.exit(1)


def check(cond, msg):
    if not cond:
        fail(msg)


def cleanup():
    for p in procs:
        if p.poll() is None:
            p.kill()
            p.wait()


def build_callers():
    """Compiles callers.c with only the compat include path, against the static library."""
    if os.environ.get("PIREC_EXEC"):
        # built with the host's cc: a cross build's library cannot be linked here
        # (test_record_module_32bit.sh runs the armhf library under qemu instead)
        print("skip: the SDK caller program is built natively; not for a cross build (%s)"
              % os.environ["PIREC_EXEC"])
        sys.exit(77)
    exe = os.path.join(TMP, "callers")
    libs = subprocess.run(["pkg-config", "--libs", "libwebsockets", "openssl", "jansson"],
                          capture_output=True, text=True, check=True).stdout.split()
    san = ["-fsanitize=address,undefined", "-fno-omit-frame-pointer"] if SAN else []
    cmd = ["cc", "-std=c11", "-D_GNU_SOURCE", "-Wall", "-Wextra", "-Werror", "-O1", "-g", *san,
           "-I", os.path.join(SRC, "include/pirec/compat"),
           "-o", exe, os.path.join(SRC, "tests/support/sdk/callers.c"),
           os.path.join(BUILD, "libpirec-record.a"), *libs, "-pthread"]
    r = subprocess.run(cmd, capture_output=True, text=True)
    check(r.returncode == 0, "cannot build the caller program:\n%s\n%s" % (" ".join(cmd), r.stderr))
    return exe


def pattern(stream, n, start=0):
    """The bytes callers.c writes into ring `stream` (same formula)."""
    out = bytearray(n)
    m = (1 << 64) - 1
    s77 = stream * 77
    for i in range(n):
        k = start + i
        out[i] = ((((k * 2654435761) & m) >> 13) ^ s77 ^ k) & 0xFF
    return bytes(out)


STREAM_RE = re.compile(r"STREAM (\S+) written=(\d+) stop_rc=(-?\d+) stop_ms=(\d+) read=(\d+) "
                       r"acked=(\d+) lost=(\d+) reconnects=(\d+)(?: pending=(\d+))?")


def parse_streams(out):
    res = {}
    for m in STREAM_RE.finditer(out):
        res[m.group(1)] = dict(written=int(m.group(2)), rc=int(m.group(3)), ms=int(m.group(4)),
                               read=int(m.group(5)), acked=int(m.group(6)),
                               lost=int(m.group(7)), reconnects=int(m.group(8)),
                               pending=int(m.group(9) or 0))
    return res


class LegacyPeer:
    """tests/support/legacy_peer.py, controlled through its stdin."""

    def __init__(self, directory):
        self.dir = directory
        os.makedirs(directory, exist_ok=True)
        self.proc = subprocess.Popen([sys.executable, os.path.join(SRC, "tests/support/legacy_peer.py"),
                                      "--dir", directory], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        procs.append(self.proc)
        self.lines = []
        self._buf = b""
        line = self.wait_line("PORT ", 20)
        self.port = int(line.split()[1])

    def _pump(self, timeout):
        fd = self.proc.stdout.fileno()
        r, _, _ = select.select([fd], [], [], timeout)
        if r:
            chunk = os.read(fd, 65536)
            if not chunk:
                return False
            self._buf += chunk
            while b"\n" in self._buf:
                line, self._buf = self._buf.split(b"\n", 1)
                self.lines.append(line.decode(errors="replace"))
        return True

    def wait_line(self, prefix, timeout, count=1):
        end = time.monotonic() + timeout
        while True:
            hits = [ln for ln in self.lines if ln.startswith(prefix)]
            if len(hits) >= count:
                return hits[count - 1]
            left = end - time.monotonic()
            if left <= 0:
                fail("legacy peer: no line %r in %ss; got %r" % (prefix, timeout, self.lines[-20:]))
            if not self._pump(min(left, 0.5)) and self.proc.poll() is not None:
                fail("legacy peer exited: %r" % self.lines[-20:])

    def count(self, prefix):
        self._pump(0)
        return sum(1 for ln in self.lines if ln.startswith(prefix))

    def send(self, cmd):
        self.proc.stdin.write((cmd + "\n").encode())
        self.proc.stdin.flush()

    def stop(self):
        """Waits until every connection ended (the peer may still be writing what it
        received), then quits."""
        end = time.monotonic() + 30
        while self.count("CLOSED") < self.count("CONN") and time.monotonic() < end:
            self._pump(0.2)
        try:
            self.send("quit")
        except OSError:
            pass
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        rest = self._buf + self.proc.stdout.read()
        self._buf = b""
        self.lines += [ln for ln in rest.decode(errors="replace").split("\n") if ln]
        return self.lines

    def url(self, path="/rec"):
        return "ws://127.0.0.1:%d%s" % (self.port, path)


def file_of(directory, name):
    p = os.path.join(directory, name)
    try:
        with open(p, "rb") as f:
            return f.read()
    except FileNotFoundError:
        return b""


class Proxy:
    """tests/support/fault_proxy.py in front of 127.0.0.1:upstream."""

    def __init__(self, upstream, plan, rate=0, tag="proxy"):
        import json
        path = os.path.join(TMP, tag + ".plan.json")
        with open(path, "w") as f:
            json.dump(plan, f)
        self.outpath = os.path.join(TMP, tag + ".out")
        out = open(self.outpath, "w")
        cmd = [sys.executable, os.path.join(SRC, "tests/support/fault_proxy.py"),
               "--upstream", str(upstream), "--plan", path]
        if rate:
            cmd += ["--rate", str(rate)]
        self.proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
        out.close()
        procs.append(self.proc)
        end = time.monotonic() + 20
        while time.monotonic() < end:
            for line in self.lines():
                if line.startswith("PORT "):
                    self.port = int(line.split()[1])
                    return
            time.sleep(0.02)
        fail("the fault proxy did not start")

    def lines(self):
        with open(self.outpath) as f:
            return f.read().splitlines()
