#!/usr/bin/python3
"""pirec serve start and stop: SIGTERM during a take exits 0 with the take finalized
(flac -t passes, no .part left) and subscribers told `close`; a bad config file exits 2
naming file:line; bad options exit 2 with a message; a busy port is a clear error."""
import glob
import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_serve_common import BIN, TMP, Server, Sse, check, wait_for  # noqa: E402


def sigterm_during_take():
    srv = Server("term")
    sub = Sse(srv.port, "/api/status/term")
    try:
        sub.wait_event("status")
        tok = srv.take("tone", "t")
        st, obj = srv.json("GET", "/api/recording/tone/start/" + tok, expect=200)
        name = obj["file"]
        # let some audio reach the file: the writer flushes, so wait for bytes
        wait_for(lambda: sum(os.path.getsize(p) for p in glob.glob(os.path.join(srv.rec, "*"))) > 4096,
                 20, "audio in the take")
    finally:
        rc = srv.stop()
    check(rc == 0, "exit %d after SIGTERM; stderr:\n%s" % (rc, srv.stderr()))
    wait_for(lambda: sub.closed, 10, "the event stream to end")
    check(sub.of("close"), "subscriber got close: %r" % [e.get("event") for e in sub.events][-5:])
    stops = sub.of("stop")
    check(stops, "subscriber got stop for the running take")
    sub.close()
    path = os.path.join(srv.rec, name)
    check(os.path.exists(path), "finalized %s exists (dir: %r)" % (name, os.listdir(srv.rec)))
    check(not glob.glob(os.path.join(srv.rec, "*.part")), "no .part left: %r" % os.listdir(srv.rec))
    if shutil.which("flac"):
        r = subprocess.run(["flac", "-t", "-s", path], capture_output=True)
        check(r.returncode == 0, "flac -t: %s" % r.stderr.decode(errors="replace"))


def run(args, timeout=30):
    return subprocess.run([BIN, "serve"] + args, capture_output=True, timeout=timeout, text=True)


def bad_config():
    os.makedirs(TMP, exist_ok=True)
    cfg = os.path.join(TMP, "bad.ini")
    with open(cfg, "w") as f:
        f.write("[server]\nlease_seconds = 300\n\n[device x]\nrate = 19k\n")
    r = run(["--config", cfg, "--listen", "127.0.0.1:0", "--recordings", os.path.join(TMP, "r2"),
             "--state-dir", os.path.join(TMP, "s2")])
    check(r.returncode == 2, "bad config: exit %d" % r.returncode)
    check("bad.ini:5" in r.stderr, "message names file:line: %r" % r.stderr)
    r = run(["--config", os.path.join(TMP, "missing.ini")])
    check(r.returncode == 2 and "missing.ini" in r.stderr, "missing config: %d %r" % (r.returncode, r.stderr))


def bad_options():
    for args, word in [(["--lease-seconds", "abc"], "lease"), (["--listen", "nonsense"], "listen"),
                       (["--bogus"], "bogus"), (["extra"], "extra"), (["--listen"], "listen")]:
        r = run(args)
        check(r.returncode == 2, "%r: exit %d" % (args, r.returncode))
        check(word in r.stderr, "%r: message %r" % (args, r.stderr))
    r = run(["--help"])
    check(r.returncode == 0 and "--listen" in r.stdout, "--help")


def busy_port():
    a = Server("busy1")
    try:
        r = run(["--listen", "127.0.0.1:%d" % a.port, "--recordings", os.path.join(TMP, "r3"),
                 "--state-dir", os.path.join(TMP, "s3"), "--demo"])
        check(r.returncode != 0 and "127.0.0.1:%d" % a.port in r.stderr,
              "busy port: %d %r" % (r.returncode, r.stderr))
        # the log line names the port asked for (libmicrohttpd's own said "port 0")
        check("port 0" not in r.stderr and "cannot listen on 127.0.0.1:%d: Address already in use"
              % a.port in r.stderr, "busy port logged with its number: %r" % r.stderr)
    finally:
        check(a.stop() == 0, "first server exits 0")


def main():
    bad_options()
    bad_config()
    busy_port()
    sigterm_during_take()
    print("ok")


if __name__ == "__main__":
    main()
