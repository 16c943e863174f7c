#!/usr/bin/python3
"""One truthful clock for the take (docs/api.md "The take's position"): `start` and `record`
carry the pre-roll granted and the position; `level` events carry `pos` while recording, never
going back; status `elapsed` is that position with `started` and `preroll`; the stop answer,
the `stop` event and the recordings list give the same seconds, and no `pos` exceeds them.

/api/clock (docs/api.md): with the system clock not synchronised (PIREC_TEST_CLOCK=unsynced)
a lease holder's time names the takes (offset in the status, `clock` event); 401 without a
token, 400 without a number, 409 when the clock is synchronised."""
import datetime
import json
import os
import re
import time
import urllib.parse

from test_serve_common import Server, Sse, check, wait_for, TMP


def clock():
    q = urllib.parse.quote
    os.environ["PIREC_TEST_CLOCK"] = "unsynced"
    srv = Server("page_clock_unsynced")
    sse = Sse(srv.port)
    try:
        _, obj = srv.json("GET", "/api/status", expect=200)
        check(obj["clock_synchronised"] is False and obj["clock_source"] == "system" and
              obj["clock_offset"] == 0, "before: %r" % obj)
        ahead = 3 * 3600 + 17          # the tablet says three hours and 17 s later
        want_ms = int((time.time() + ahead) * 1000)
        st, o = srv.json("POST", "/api/clock?now=%d" % want_ms)
        check(st == 401, "no token: %d %r" % (st, o))
        tok = srv.take("tone", "ipad")
        st, o = srv.json("POST", "/api/clock?now=%d&token=%s" % (want_ms, q("x" + tok[1:])))
        check(st == 401, "bad token: %d %r" % (st, o))
        for bad in ("", "?now=", "?now=abc", "?now=12x"):
            st, o = srv.json("POST", "/api/clock" + bad, {"Authorization": "Bearer " + tok})
            check(st == 400 and "now=" in o["error"], "%r: %d %r" % (bad, st, o))
        st, o = srv.json("GET", "/api/clock?now=%d" % want_ms, {"Authorization": "Bearer " + tok})
        check(st == 405, "GET /api/clock: %d" % st)
        st, o = srv.json("POST", "/api/clock?now=%d" % want_ms, {"Authorization": "Bearer " + tok},
                         expect=200)
        check(abs(o["clock_offset"] - ahead) < 30 and o["clock_source"] == "ipad", "answer: %r" % o)
        ev = json.loads(sse.wait_event("clock")["data"])
        check(ev == {"clock_offset": o["clock_offset"], "clock_source": "ipad"}, "clock event: %r" % ev)
        _, obj = srv.json("GET", "/api/status", expect=200)
        check(obj["clock_offset"] == o["clock_offset"] and obj["clock_source"] == "ipad", "status: %r" % obj)
        # a take is named and dated by the tablet's time
        st, start = srv.json("GET", "/api/recording/tone/start/" + q(tok), expect=200)
        m = re.search(r"(\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d[+-]\d{4})", start["file"])
        check(m, "a time in the name: %r" % start["file"])
        named = datetime.datetime.strptime(m.group(1), "%Y-%m-%dT%H-%M-%S%z").timestamp()
        started = datetime.datetime.fromisoformat(start["started"]).timestamp()
        check(abs(named - (time.time() + ahead)) < 60 and abs(started - named) < 2,
              "named with the offset: %r %r (now %r)" % (start["file"], start["started"], time.time()))
        srv.json("GET", "/api/recording/tone/stop/" + q(tok), expect=200)
    finally:
        sse.close()
        check(srv.stop() == 0, "unsynced server exits 0")
    os.environ["PIREC_TEST_CLOCK"] = "synced"
    srv = Server("page_clock_synced")
    try:
        tok = srv.take("tone", "ipad")
        st, o = srv.json("POST", "/api/clock?now=%d" % int(time.time() * 1000),
                         {"Authorization": "Bearer " + tok})
        check(st == 409 and "synchronised" in o["error"], "synchronised: %d %r" % (st, o))
        _, obj = srv.json("GET", "/api/status", expect=200)
        check(obj["clock_source"] == "system" and obj["clock_offset"] == 0, "unchanged: %r" % obj)
    finally:
        check(srv.stop() == 0, "synced server exits 0")
    del os.environ["PIREC_TEST_CLOCK"]


def main():
    os.makedirs(TMP, exist_ok=True)
    cfg = os.path.join(TMP, "page_clock.ini")
    with open(cfg, "w") as f:
        f.write("[server]\npreroll_seconds = 2\n")
    srv = Server("page_clock", config=cfg)
    sse = Sse(srv.port)
    q = urllib.parse.quote
    try:
        # let the ring hold the pre-roll (levels flow from the start of the capture)
        wait_for(lambda: len(sse.of("level")) >= 60, 20, "2.4 s of levels")
        check(all("pos" not in json.loads(e["data"]) for e in sse.of("level")),
              "no pos while nothing records")
        tok = srv.take("tone", "ipad")
        st, start = srv.json("GET", "/api/recording/tone/start/" + q(tok), expect=200)
        check(0 < start["preroll"] <= 2.0 and start["pos"] >= start["preroll"],
              "start answer: %r" % start)
        rec = json.loads(sse.wait_event("record")["data"])
        check(rec["preroll"] == start["preroll"] and rec["file"] == start["file"], "record event: %r" % rec)
        n0 = len(sse.of("level"))
        wait_for(lambda: len([e for e in sse.of("level")[n0:] if "pos" in json.loads(e["data"])]) >= 10,
                 10, "levels with pos")
        _, obj = srv.json("GET", "/api/status", expect=200)
        d = [x for x in obj["devices"] if x["id"] == "tone"][0]
        check(d["recording"] and d["started"] == start["started"] and d["preroll"] == start["preroll"]
              and d["elapsed"] >= start["pos"], "status while recording: %r" % d)
        st, stop = srv.json("POST", "/api/recording/tone/stop", {"Authorization": "Bearer " + tok},
                            expect=200)
        ev = json.loads(sse.wait_event("stop")["data"])
        _, lst = srv.json("GET", "/api/recordings", expect=200)
        entry = [e for e in lst["recordings"] if e["name"] == stop["file"]][0]
        check(round(stop["seconds"], 3) == round(ev["seconds"], 3) == round(entry["seconds"], 3),
              "stop %r, event %r and list %r agree" % (stop["seconds"], ev["seconds"], entry["seconds"]))
        pos = [json.loads(e["data"])["pos"] for e in sse.of("level")[n0:]
               if "pos" in json.loads(e["data"])]
        check(pos == sorted(pos) and pos[0] >= start["pos"],
              "pos never goes back: %r" % pos[:20])
        check(pos[-1] <= round(stop["seconds"], 3) + 0.0005,
              "no pos beyond the take's length: %r > %r" % (pos[-1], stop["seconds"]))
    finally:
        sse.close()
        rc = srv.stop()
    check(rc == 0, "exit %d; stderr:\n%s" % (rc, srv.stderr()))
    clock()
    print("ok")


if __name__ == "__main__":
    main()
