#!/usr/bin/python3
"""The server side of the page's contract (issue 10, docs/api.md "Control follows the take"),
through the real `pirec serve --demo` over HTTP and its event stream.

- A running take keeps its holder's lease: no `expire` while it runs, the status says
  `kept_by_take`, stop with the holder's token works long after `expires` (the camera-app
  flow), and the lease's timer starts again at the end of the take with a `take` event.
- Leases are named (`lease`: "L<n>"), stable across renewals, in answers, status and events.
- Presence and the announced take-over: refused (409, `present`) while the holder's event
  stream with `?token=` is open or it was seen lately, allowed `takeover_after_seconds`
  after its stream closed, announced with `presence` and `takeover` events; the replaced
  token answers 401 with `taken_over_by`; on a free device a take-over is a take.
- `instance` changes across a restart; status carries `lease_seconds`,
  `takeover_after_seconds`.
- The original GET routes do the same (path tokens)."""
import json
import os
import time
import urllib.parse

from test_serve_common import Server, Sse, check, fail, wait_for, TMP


def config(name, text):
    os.makedirs(TMP, exist_ok=True)
    p = os.path.join(TMP, name + ".ini")
    with open(p, "w") as f:
        f.write(text)
    return p


def status_of(srv, dev="tone"):
    st, obj = srv.json("GET", "/api/status", expect=200)
    for d in obj["devices"]:
        if d["id"] == dev:
            return obj, d
    fail("no device %s in %r" % (dev, obj))


def events(sse, kind):
    return [json.loads(e["data"]) for e in sse.of(kind)]


def kept_lease(srv, sse, original):
    """Take, start, outlive the lease, stop with the same token."""
    q = urllib.parse.quote
    if original:
        st, lease = srv.json("GET", "/api/recording/tone/take?client=ipad", expect=200)
    else:
        st, lease = srv.json("POST", "/api/recording/tone/take?client=ipad", expect=200)
    tok = lease["token"]
    check(lease.get("lease", "").startswith("L"), "take answer names the lease: %r" % lease)
    check(lease.get("kept_by_take") is False, "no take yet: %r" % lease)
    if original:
        srv.json("GET", "/api/recording/tone/start/" + q(tok), expect=200)
    else:
        srv.json("POST", "/api/recording/tone/start", {"Authorization": "Bearer " + tok},
                 expect=200)
    # the page freezes (camera app) well past `expires`
    wait_for(lambda: time.time() > lease["expires"] + 1.5, 10, "the lease's expiry to pass")
    _, d = status_of(srv)
    check(d["taken"] and d["holder"] == "ipad" and d["kept_by_take"] is True and
          d["lease"] == lease["lease"], "a running take keeps the lease: %r" % d)
    check(not any(e.get("lease") == lease["lease"] for e in events(sse, "expire")),
          "no expire while the take keeps the lease: %r" % events(sse, "expire"))
    # someone else cannot take it meanwhile
    st, other = srv.json("POST", "/api/recording/tone/take?client=intruder")
    check(st == 409 and other.get("holder") == "ipad", "take by another: %d %r" % (st, other))
    # one tap on Stop with the token the page had
    n_take = len(events(sse, "take"))
    t_stop = time.time()
    if original:
        st, ans = srv.json("GET", "/api/recording/tone/stop/" + q(tok))
    else:
        st, ans = srv.json("POST", "/api/recording/tone/stop",
                           {"Authorization": "Bearer " + tok})
    check(st == 200 and ans.get("state") is True, "stop with the holder's token: %d %r" % (st, ans))
    # the timer starts again, announced
    wait_for(lambda: len(events(sse, "take")) > n_take, 10, "take event after the stop")
    ev = events(sse, "take")[-1]
    check(ev["lease"] == lease["lease"] and ev["holder"] == "ipad" and ev["kept_by_take"] is False
          and ev["expires"] >= int(t_stop) + 2, "take event restarts the timer: %r" % ev)
    _, d = status_of(srv)
    check(d["taken"] and d["kept_by_take"] is False and d["expires"] == ev["expires"],
          "status after the take: %r" % d)
    # the same token still works until then: renew keeps the lease's name
    if original:
        st, ren = srv.json("GET", "/api/recording/tone/renew/" + q(tok), expect=200)
    else:
        st, ren = srv.json("POST", "/api/recording/tone/renew",
                           {"Authorization": "Bearer " + tok}, expect=200)
    check(ren["lease"] == lease["lease"] and ren["token"] != tok, "renew: %r" % ren)
    # without a take the lease runs out as before, and says which lease
    wait_for(lambda: any(e.get("lease") == lease["lease"] for e in events(sse, "expire")), 15,
             "expire of the lease after the take")
    rel = [e for e in events(sse, "release") if e.get("lease") == lease["lease"]]
    check(rel and rel[-1]["holder"] == "ipad", "release event names the lease: %r" % rel)
    _, d = status_of(srv)
    check(not d["taken"] and d["lease"] == "" and d["kept_by_take"] is False,
          "free after expiry: %r" % d)
    return lease["lease"]


def takeover(srv):
    q = urllib.parse.quote
    st, a = srv.json("POST", "/api/recording/tone/take?client=ipad", expect=200)
    # the holder was seen just now: no take-over yet, and the page is told when
    st, no = srv.json("POST", "/api/recording/tone/takeover?client=phone")
    check(st == 409 and no["present"] is True and no["holder"] == "ipad" and
          no["takeover_at"] >= a["expires"] - 300 + 5, "takeover refused while seen: %d %r" % (st, no))
    st, no = srv.json("POST", "/api/recording/tone/take?client=phone")
    check(st == 409 and "present" in no and "takeover_at" in no, "take answers 409 with presence: %r" % no)
    # the holder's page opens its event stream with its token: connected
    sse = Sse(srv.port, "/api/status/1?token=" + q(a["token"]))
    sse.wait_event("presence", pred=lambda e: json.loads(e["data"])["present"] is True)
    obj, d = status_of(srv)
    check(d["takeover_at"] == 0 and d["holder_seen"] >= int(time.time()) - 1 and
          obj["takeover_after_seconds"] == 5 and obj["lease_seconds"] == 300,
          "status while connected: %r" % obj)
    # however long it stays connected (well past takeover_after_seconds), no take-over
    wait_for(lambda: time.time() > no["takeover_at"] + 1, 15, "takeover_after_seconds to pass")
    st, no2 = srv.json("GET", "/api/recording/tone/takeover?client=phone")
    check(st == 409 and no2["present"] is True and no2["takeover_at"] == 0,
          "takeover refused while connected: %d %r" % (st, no2))
    # the page goes away: announced, with the time a take-over becomes possible
    watch = Sse(srv.port)
    sse.close()
    gone = json.loads(watch.wait_event(
        "presence", pred=lambda e: json.loads(e["data"])["present"] is False)["data"])
    check(gone["lease"] == a["lease"] and gone["holder"] == "ipad" and
          gone["takeover_at"] >= gone["holder_seen"] + 5, "presence event: %r" % gone)
    _, d = status_of(srv)
    check(d["takeover_at"] == gone["takeover_at"], "status agrees: %r %r" % (d, gone))
    st, no3 = srv.json("POST", "/api/recording/tone/takeover?client=phone")
    if time.time() < d["takeover_at"] - 1:
        check(st == 409 and no3["present"] is True, "too early for a take-over: %d %r" % (st, no3))
    wait_for(lambda: time.time() >= d["takeover_at"] + 1, 15, "takeover_at")
    st, b = srv.json("POST", "/api/recording/tone/takeover?client=phone")
    check(st == 200 and b["previous"] == "ipad" and b["holder"] == "phone" and
          b["lease"] != a["lease"] and b["token"], "take-over: %d %r" % (st, b))
    ev = json.loads(watch.wait_event("takeover")["data"])
    check(ev["previous"] == "ipad" and ev["holder"] == "phone" and ev["lease"] == b["lease"],
          "takeover event: %r" % ev)
    # the old token: told who took over, on every route, original ones included
    st, o = srv.json("POST", "/api/recording/tone/renew", {"Authorization": "Bearer " + a["token"]})
    check(st == 401 and o.get("taken_over_by") == "phone", "old token: %d %r" % (st, o))
    st, o = srv.json("GET", "/api/recording/tone/start/" + q(a["token"]))
    check(st == 401 and o.get("taken_over_by") == "phone", "old token (GET): %d %r" % (st, o))
    # on a free device a take-over is a take (no takeover event)
    srv.json("GET", "/api/recording/tone/release/" + q(b["token"]), expect=200)
    n = len(watch.of("takeover"))
    st, c = srv.json("GET", "/api/recording/tone/takeover?client=mac", expect=200)
    check("previous" not in c or c["previous"] == "", "free device: %r" % c)
    watch.wait_event("take", pred=lambda e: json.loads(e["data"])["holder"] == "mac")
    check(len(watch.of("takeover")) == n, "no takeover event for a free device")
    srv.json("GET", "/api/recording/tone/release/" + q(c["token"]), expect=200)
    watch.close()


def main():
    cfg = config("page_contract", "[server]\nlease_seconds = 2\n")
    srv = Server("page_contract", config=cfg)
    sse = Sse(srv.port)
    try:
        first = kept_lease(srv, sse, original=False)
        second = kept_lease(srv, sse, original=True)
        check(first != second, "every lease gets its own name: %s %s" % (first, second))
    finally:
        sse.close()
        rc = srv.stop()
    check(rc == 0, "exit status %d; stderr:\n%s" % (rc, srv.stderr()))

    cfg = config("page_takeover", "[server]\ntakeover_after_seconds = 5\n")
    srv = Server("page_takeover", config=cfg)
    try:
        first, _ = status_of(srv)
        check(len(first.get("instance", "")) == 16, "instance: %r" % first)
        takeover(srv)
    finally:
        rc = srv.stop()
    check(rc == 0, "exit status %d; stderr:\n%s" % (rc, srv.stderr()))
    srv = Server("page_takeover", config=cfg)
    try:
        again, _ = status_of(srv)
        check(again["instance"] != first["instance"], "a restart changes instance: %s %s"
              % (first["instance"], again["instance"]))
        # a holder's stream still open at shutdown: it gets `close`, the server exits cleanly
        tok = srv.take("tone", "ipad")
        bound = Sse(srv.port, "/api/status/2?token=" + urllib.parse.quote(tok))
        bound.wait_event("presence")
    finally:
        check(srv.stop() == 0, "second start exits 0: " + srv.stderr()[-2000:])
    bound.wait_event("close")
    bound.close()
    print("ok")


if __name__ == "__main__":
    main()
