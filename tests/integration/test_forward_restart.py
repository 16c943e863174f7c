#!/usr/bin/python3
"""Forwarding resumes after `pirec serve` itself stops or crashes (docs/protocol.md,
"Forwarded takes", "Across restarts"); the remote copy never loses or repeats a byte:
1. the ingest killed mid-take, the take finished, then serve SIGKILLed; the ingest back,
   serve started again: the copy continues from where the ingest's file ends and ends
   byte-identical to the local take with the same MD5;
2. serve SIGKILLed in the middle of a take that is being forwarded: the next start repairs
   the take and completes its copy, byte-identical to the repaired local file;
3. a take finished while the ingest was unreachable, then serve stopped (SIGTERM) and the
   ingest started: the next serve sends the whole take.
Each time the status of the new serve shows the copy complete, and no state file is left.
The device's tone uses all 32 bits, so every take first opens a 24-bit file and replaces it
by a 32-bit one of the same name (a depth switch): the dropped first file must not take the
state file of its replacement with it (it did, now and then, before)."""
import os
import signal
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from forward_support import (TMP, Ingest, Server, check, check_copy, config,  # noqa: E402
                             forward_entry, free_port, record, remote_path, wait_complete, wait_for)

DEVICE = "[device hi]\npcm = tone\nformat = S32_LE\nrate = 192000\nchannels = 2\n"


def state_files(srv):
    d = os.path.join(srv.state, "forward")
    return sorted(n for n in os.listdir(d) if n.endswith(".fwd")) if os.path.isdir(d) else []


def restarted(name, cfg, file, repaired=False):
    """A new serve on the same folders; waits for the copy of file to complete."""
    srv = Server(name, demo=False, config=cfg)
    try:
        if repaired:   # no MD5 in a take repaired after a crash: the ingest decodes it
            e = wait_for(lambda: (lambda x: x if x and x["state"] in ("complete", "lost")
                                  else None)(forward_entry(srv, file)), 90, "the copy")
            check(e["state"] == "complete" and e["md5"] == "", "status %r" % e)
        else:
            e = wait_complete(srv, file, timeout=90)
        print("after the restart:", e)
        check(state_files(srv) == [], "state files left: %r" % state_files(srv))
    except BaseException:
        srv.kill()
        print(srv.stderr()[-3000:])
        raise
    return srv


def finish(srv):
    rc = srv.stop()
    print(srv.stderr()[-2000:])
    check(rc == 0, "pirec serve exit %d" % rc)


def crash_after_take():
    idir = os.path.join(TMP, "ingest-r1")
    ing = Ingest(idir)
    port = ing.port
    cfg = config("fwdr1", ing.url("/"), DEVICE)
    srv = Server("fwdr1", demo=False, config=cfg)
    state = {}

    def kill_ingest_midway(e):
        if e and e["remote_bytes"] > 300000 and "killed" not in state:
            ing.proc.send_signal(signal.SIGKILL)
            ing.proc.wait()
            state["killed"] = e["remote_bytes"]
        return "killed" in state and e and not e["connected"] and e["local_bytes"] > 900000

    try:
        file = record(srv, kill_ingest_midway, dev="hi")
        e = forward_entry(srv, file)
        print("before the crash:", e, state_files(srv))
        check(e["state"] == "sending" and 0 < e["remote_bytes"] < e["local_bytes"],
              "partly forwarded before the crash: %r" % e)
        check(len(state_files(srv)) == 1, "one state file: %r" % state_files(srv))
    finally:
        srv.kill()
    Ingest(idir, listen="127.0.0.1:%d" % port)
    srv = restarted("fwdr1", cfg, file)
    log = srv.stderr()
    check("resuming its copy at byte" in log, "the log says where it resumed:\n" + log[-2000:])
    check_copy(os.path.join(srv.rec, file), remote_path(idir, file, "hi"))
    finish(srv)


def crash_mid_take():
    idir = os.path.join(TMP, "ingest-r2")
    ing = Ingest(idir)
    cfg = config("fwdr2", ing.url("/"), DEVICE)
    srv = Server("fwdr2", demo=False, config=cfg)
    try:
        tok = srv.take("hi", "fwdtest")
        st, obj = srv.json("GET", "/api/recording/hi/start/%s" % tok, expect=200)
        file = obj["file"]
        wait_for(lambda: (lambda e: e and e["remote_bytes"] > 400000)(forward_entry(srv, file)),
                 60, "part of the take forwarded")
    finally:
        srv.kill()   # SIGKILL in the middle of the take and of its copy
    srv = restarted("fwdr2", cfg, file, repaired=True)
    local = os.path.join(srv.rec, file)
    remote = remote_path(idir, file, "hi")
    check(os.path.exists(local), "the take was repaired as %s" % local)
    check(subprocess.run(["flac", "-t", "-s", remote]).returncode == 0, "flac -t " + remote)
    a, b = open(local, "rb").read(), open(remote, "rb").read()
    check(a == b, "the remote copy (%d bytes) is the repaired local take (%d bytes)"
          % (len(b), len(a)))
    print("copy of the repaired take ok: %d bytes" % len(a))
    finish(srv)


def stopped_while_unreachable():
    idir = os.path.join(TMP, "ingest-r3")
    port = free_port()
    cfg = config("fwdr3", "ws://127.0.0.1:%d/" % port, DEVICE)
    srv = Server("fwdr3", demo=False, config=cfg)
    try:
        file = record(srv, lambda e: e and e["local_bytes"] > 500000, dev="hi")
    finally:
        rc = srv.stop()
    check(rc == 0, "pirec serve exit %d" % rc)
    Ingest(idir, listen="127.0.0.1:%d" % port)
    srv = restarted("fwdr3", cfg, file)
    check_copy(os.path.join(srv.rec, file), remote_path(idir, file, "hi"))
    finish(srv)


crash_after_take()
crash_mid_take()
stopped_while_unreachable()
print("ok")
