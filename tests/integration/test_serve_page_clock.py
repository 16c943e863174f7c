#!/usr/bin/python3
"""One truthful clock for the take (docs/api.md "The take's position"): `start` and `record`
carry the pre-roll granted and the position; `level` events carry `pos` while recording, never
going back; status `elapsed` is that position with `started` and `preroll`; the stop answer,
the `stop` event and the recordings list give the same seconds, and no `pos` exceeds them."""
import json
import os
import urllib.parse

from test_serve_common import Server, Sse, check, wait_for, TMP


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
    print("ok")


if __name__ == "__main__":
    main()
