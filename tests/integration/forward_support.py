"""Helpers for the forwarding tests (test_forward_*.py): a `pirec serve` whose takes are
forwarded to a `pirec ingest`, and the checks that the remote copy is the local take
byte for byte, a valid FLAC file with the same MD5. Not a test itself."""
import json
import os
import socket
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_serve_common import SLOW, TMP, Server, check, fail, wait_for  # noqa: E402,F401
from test_ingest_cli import Ingest  # noqa: E402,F401

RECORDER = "testpi"


def free_port():
    """A loopback port nobody listens on now (for an ingest started later)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def config(name, url, extra=""):
    path = os.path.join(TMP, name + ".ini")
    with open(path, "w") as f:
        f.write("[forward]\nurl = %s\nrecorder = %s\n%s" % (url, RECORDER, extra))
    return path


def status(srv):
    return srv.json("GET", "/api/status", expect=200)[1]


def forward_entry(srv, file):
    for e in status(srv).get("forward", []):
        if e["file"] == file:
            return e
    return None


def record(srv, seconds_pred, dev="tone"):
    """Starts a take, waits until seconds_pred(entry, status) holds, stops it. Returns
    the take's file name."""
    tok = srv.take(dev, "fwdtest")
    st, obj = srv.json("GET", "/api/recording/%s/start/%s" % (dev, tok), expect=200)
    file = obj.get("file")
    check(file, "start answer %r" % obj)
    wait_for(lambda: seconds_pred(forward_entry(srv, file)), 60, "the take to run")
    srv.json("GET", "/api/recording/%s/stop/%s" % (dev, tok), expect=200)
    srv.json("GET", "/api/recording/%s/release/%s" % (dev, tok), expect=200)
    return file


def wait_complete(srv, file, timeout=60):
    e = wait_for(lambda: (lambda x: x if x and x["state"] in ("complete", "lost") else None)(
        forward_entry(srv, file)), timeout, "the remote copy of %s to be complete" % file)
    check(e["state"] == "complete", "forward state %r" % e)
    check(e["md5"] and len(e["md5"]) == 32, "md5 in the status: %r" % e)
    return e


def md5(path):
    r = subprocess.run(["metaflac", "--show-md5sum", path], capture_output=True, text=True)
    check(r.returncode == 0, "metaflac %s: %s" % (path, r.stderr))
    return r.stdout.strip()


def decode(path):
    r = subprocess.run(["flac", "-d", "-s", "-c", "--force-raw-format", "--endian=little",
                        "--sign=signed", path], capture_output=True)
    check(r.returncode == 0, "flac -d %s: %s" % (path, r.stderr[-300:]))
    return r.stdout


def check_copy(local, remote):
    """The remote copy is the local file byte for byte, flac -t passes, same MD5 and
    samples."""
    check(os.path.exists(remote), "no remote copy at %s" % remote)
    check(subprocess.run(["flac", "-t", "-s", remote]).returncode == 0, "flac -t " + remote)
    m = md5(local)
    check(m != "0" * 32, "the local take has no MD5")
    check(md5(remote) == m, "MD5 remote %s local %s" % (md5(remote), m))
    check(decode(remote) == decode(local), "decoded samples differ")
    a = open(local, "rb").read()
    b = open(remote, "rb").read()
    if a != b:
        first = next((i for i in range(min(len(a), len(b))) if a[i] != b[i]), min(len(a), len(b)))
        fail("remote copy differs from the local file (%d vs %d bytes, first at %d)"
             % (len(b), len(a), first))
    print("copy ok: %s (%d bytes, md5 %s)" % (remote, len(a), m))


def remote_path(ingest_dir, file, dev="tone"):
    return os.path.join(ingest_dir, RECORDER, dev, file)


def forward_events(sse):
    return [json.loads(e["data"]) for e in sse.of("forward")]
