#!/usr/bin/python3
"""The server side of the page's contract (issue 10, docs/api.md "Control follows the take"),
through the real `pirec serve --demo` over HTTP and its event stream.

- A running take keeps its holder's lease: no `expire` while it runs, the status says
  `kept_by_take`, stop with the holder's token works long after `expires` (the camera-app
  flow), and the lease's timer starts again at the end of the take with a `take` event.
- Leases are named (`lease`: "L<n>"), stable across renewals, in answers, status and events.
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
    print("ok")


if __name__ == "__main__":
    main()
