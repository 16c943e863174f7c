#!/usr/bin/python3
"""pirec serve events over SSE: framing (retry, id, event, one data line of JSON with the
device id), an initial status also keyed by device id for the original's clients, ids
that increase, level ~25/s, heartbeats, two subscribers seeing the same events in the same
order, replay with Last-Event-ID of exactly the missed non-level events, and a lease that
expires by itself with an `expire` event."""
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_serve_common import Server, Sse, check, wait_for  # noqa: E402


def non_level(evs):
    return [(e["id"], e["event"], e["data"]) for e in evs if "event" in e and e["event"] not in ("level", "status")]


def main():
    srv = Server("events", args=["--heartbeat-ms", "300", "--lease-seconds", "2"])
    subs = []
    try:
        a = Sse(srv.port, "/api/status/%d" % int(time.time() * 1000))
        subs.append(a)
        check(a.status == 200, "SSE status %d" % a.status)
        check(a.headers.get("content-type", "").startswith("text/event-stream"), "type %r" % a.headers)
        check(a.headers.get("cache-control") == "no-cache", "cache-control %r" % a.headers)
        first = wait_for(lambda: a.events[:2] if len(a.events) >= 2 else None, 10, "first events")
        check(first[0].get("retry") == "2000", "retry first: %r" % first[0])
        st = a.wait_event("status")
        obj = json.loads(st["data"])
        check(isinstance(obj.get("devices"), list), "status devices %r" % obj)
        check(isinstance(obj.get("tone"), dict) and "connected" in obj["tone"] and "taken" in obj["tone"],
              "status keyed by id for the original: %r" % obj)
        check("id" in st, "status has an id")

        # level ~25/s, each with the device id and a capture time
        n0 = len(a.of("level"))
        t0 = time.monotonic()
        wait_for(lambda: len(a.of("level")) >= n0 + 25, 10, "25 level events")
        rate = (len(a.of("level")) - n0) / (time.monotonic() - t0)
        lv = json.loads(a.of("level")[-1]["data"])
        check(lv.get("id") == "tone" and "t" in lv and isinstance(lv.get("ch"), list), "level %r" % lv)
        check(5 < rate < 100, "level rate %.1f/s is not about 25/s" % rate)
        wait_for(lambda: any("heartbeat" in c for c in a.comments), 10, "a heartbeat comment")

        b = Sse(srv.port, "/api/status/b")
        subs.append(b)
        b.wait_event("status")
        tok = srv.take("tone", "evtest")
        srv.json("GET", "/api/recording/tone/start/" + tok, expect=200)
        a.wait_event("record")
        last_seen = int(a.of("record")[-1]["id"])
        a.close()   # a goes away; b keeps listening
        srv.json("GET", "/api/recording/tone/stop/" + tok, expect=200)
        srv.json("GET", "/api/recording/tone/release/" + tok, expect=200)
        b.wait_event("release")

        # every event: id, event, data JSON; ids increase; device events carry "id"
        for s in (b,):
            ids = [int(e["id"]) for e in s.events if "id" in e]
            check(ids == sorted(ids) and len(set(ids)) == len(ids), "ids increase: %r" % ids[:20])
            for e in s.events:
                if "event" not in e:
                    continue
                d = json.loads(e["data"])
                if e["event"] in ("take", "release", "record", "stop", "level", "expire"):
                    check(d.get("id") == "tone", "%s carries the device id: %r" % (e["event"], d))

        # reconnect with Last-Event-ID: exactly the missed non-level events
        c = Sse(srv.port, "/api/status/c", last_id=last_seen)
        subs.append(c)
        wait_for(lambda: c.of("release"), 10, "replayed release")
        want = [x for x in non_level(b.events) if int(x[0]) > last_seen]
        got = non_level(c.events)[:len(want)]
        check(got == want, "replay\n got %r\nwant %r" % (got, want))
        check(not [e for e in c.events if e.get("event") == "level" and int(e["id"]) <= int(want[-1][0])],
              "no level events replayed")
        check(not c.of("status"), "no status on a replay")

        # two live subscribers see the same events in the same order
        d = Sse(srv.port, "/api/status/d")
        subs.append(d)
        d.wait_event("status")
        tok = srv.take("tone", "twice")
        d.wait_event("take")
        b.wait_event("take", pred=lambda e: int(e["id"]) >= int(d.of("take")[-1]["id"]))
        # the lease of 2 s runs out by itself: expire (+ release), no request needed
        exp = d.wait_event("expire", 15)
        check(json.loads(exp["data"]).get("id") == "tone", "expire %r" % exp)
        b.wait_event("expire", 15)
        srv.json("GET", "/api/recording/tone/renew/" + tok, expect=401)
        common = int(d.of("take")[-1]["id"])
        sb = [(e["id"], e["event"], e["data"]) for e in b.events if "id" in e and int(e["id"]) >= common]
        sd = [(e["id"], e["event"], e["data"]) for e in d.events if "id" in e and int(e["id"]) >= common]
        k = min(len(sb), len(sd))
        check(k > 0 and sb[:k] == sd[:k], "two subscribers differ")
    finally:
        for s in subs:
            s.close()
        rc = srv.stop()
    check(rc == 0, "exit %d; stderr:\n%s" % (rc, srv.stderr()))
    print("ok")


if __name__ == "__main__":
    main()
