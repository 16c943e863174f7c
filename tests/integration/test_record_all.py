#!/usr/bin/python3
"""Record all: one call starts a take on every connected device (a demo tone at 48 kHz and
a file device at 44.1 kHz) at the same capture instant and one call stops them together.
Both files carry the session id, the session's instant and the measured offset of their
first frame (within one 10 ms period); their first frames' capture times agree within a
period and so do their lengths; a `session` event tells both; bad or missing tokens and a
stop with nothing recording get clear answers."""
import datetime
import json
import os
import struct
import subprocess
import sys
import time
import wave

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_serve_common import TMP, Server, Sse, check, wait_for  # noqa: E402

PERIOD_S = 0.010


def tags(path):
    out = subprocess.run(["metaflac", "--export-tags-to=-", path], capture_output=True,
                         text=True).stdout.splitlines()
    return dict(line.split("=", 1) for line in out if "=" in line)


def utc(s):
    return datetime.datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc).timestamp()


def main():
    wav = os.path.join(TMP, "loop.wav")
    with wave.open(wav, "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(44100)
        w.writeframes(b"".join(struct.pack("<hh", i % 20000, -(i % 20000)) for i in range(44100)))
    ini = os.path.join(TMP, "all.ini")
    with open(ini, "w") as f:
        f.write("[device a]\npcm = tone\n\n[device b]\npcm = file:%s?realtime=1&loop=1\n" % wav)
    srv = Server("all", demo=False, config=ini)
    sse = None
    try:
        sse = Sse(srv.port, "/api/status/all")
        sse.wait_event("status")
        st, obj = srv.json("GET", "/api/record_all/start/not.a.token", expect=401)
        check("lease token" in obj["error"] or "bad token" in obj["error"], "bad token: %r" % obj)
        tok = srv.take("a", "alltest")
        st, obj = srv.json("GET", "/api/record_all/stop/" + tok, expect=409)
        check("no record-all session" in obj["error"], "stop with nothing recording: %r" % obj)

        st, obj = srv.json("GET", "/api/record_all/start/" + tok, expect=200)
        print("start:", obj)
        session = obj["session"]
        started = obj["started"]
        devs = {d["id"]: d for d in obj["devices"]}
        check(set(devs) == {"a", "b"} and all(d["file"] for d in devs.values()),
              "both devices started: %r" % obj)
        check(all(abs(d["offset_us"]) <= PERIOD_S * 1e6 for d in devs.values()),
              "offsets within a period: %r" % obj)
        st, again = srv.json("GET", "/api/record_all/start/" + tok, expect=409)
        check(session in again["error"], "a second start names the session: %r" % again)
        ev = json.loads(sse.wait_event("session")["data"])
        check(ev["session"] == session and ev["recording"] == "recording", "session event %r" % ev)

        def long_enough():
            s = srv.json("GET", "/api/status", expect=200)[1]
            return all(d.get("recording") and d.get("elapsed", 0) >= 1.5 for d in s["devices"])
        wait_for(long_enough, 30, "both takes to run 1.5 s")

        st, obj = srv.json("POST", "/api/record_all/stop/" + tok, expect=200)
        print("stop:", obj)
        check(obj["session"] == session and len(obj["devices"]) == 2, "stop answer %r" % obj)
        sse.wait_event("session", pred=lambda e: json.loads(e["data"])["recording"] == "stopped")

        info = {}
        for d in obj["devices"]:
            path = os.path.join(srv.rec, d["file"])
            check(subprocess.run(["flac", "-t", "-s", path]).returncode == 0, "flac -t " + path)
            t = tags(path)
            n = int(subprocess.run(["metaflac", "--show-total-samples", path],
                                   capture_output=True, text=True).stdout)
            rate = int(subprocess.run(["metaflac", "--show-sample-rate", path],
                                      capture_output=True, text=True).stdout)
            info[d["id"]] = (t, n / rate)
            print(d["id"], {k: v for k, v in t.items() if k.startswith("PIREC")}, n / rate, "s")
            check(t.get("PIREC_SESSION") == session, "session id in %s: %r" % (path, t))
            check(t.get("PIREC_SESSION_START") == started, "session start in %s" % path)
            check(abs(int(t["PIREC_SESSION_OFFSET_US"])) <= PERIOD_S * 1e6, "offset in %s" % path)
        (ta, la), (tb, lb) = info["a"], info["b"]
        da = utc(ta["PIREC_START_TIME"])
        db = utc(tb["PIREC_START_TIME"])
        check(abs(da - db) <= PERIOD_S + 0.0011, "first frames %.4f s apart" % abs(da - db))
        check(abs(la - lb) <= PERIOD_S + 0.0011, "lengths %.4f vs %.4f s" % (la, lb))
        srv.json("GET", "/api/recording/a/release/" + tok, expect=200)
    finally:
        if sse:
            sse.close()
        rc = srv.stop()
        print(srv.stderr()[-2500:])
    check(rc == 0, "pirec serve exit %d" % rc)
    print("ok")


main()
