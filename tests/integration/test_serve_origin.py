#!/usr/bin/python3
"""Only the page's own origin drives the recorder (DNS rebinding and cross-site requests),
while the original Pi_Record client's GET routes keep working from its own page and from
command-line clients:
- a Host that is not ours (a rebound name) is refused 403, for reads too; IP literals,
  localhost and allowed_hosts names are served;
- take/start/stop/release by GET from another site (Sec-Fetch-Site: cross-site, or an
  Origin of another site, or Origin: null) is refused 403 and takes nothing;
- the same GET routes with Sec-Fetch-Site: same-origin / none, a matching Origin, or no
  such header at all (curl) work as in the original;
- HEAD on a control route changes nothing (405)."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_serve_common import Server, TMP, check  # noqa: E402


def main():
    os.makedirs(TMP, exist_ok=True)
    cfg = os.path.join(TMP, "origin.ini")
    open(cfg, "w").write("[server]\nallowed_hosts = studio.lan, recorder\n")
    srv = Server("origin", config=cfg)
    try:
        here = "127.0.0.1:%d" % srv.port
        for host in ("evil.example", "evil.example:%d" % srv.port, "127.0.0.1.evil.example"):
            st, obj = srv.json("GET", "/api/status", {"Host": host})
            check(st == 403 and obj.get("state") is False, "Host %s: %d %r" % (host, st, obj))
            st, obj = srv.json("GET", "/api/recording/tone/take", {"Host": host})
            check(st == 403, "take with Host %s: %d" % (host, st))
        for host in (here, "localhost:%d" % srv.port, "studio.lan", "RECORDER:80", "[::1]:1"):
            st, _ = srv.json("GET", "/api/status", {"Host": host})
            check(st == 200, "Host %s: %d" % (host, st))

        cross = [{"Sec-Fetch-Site": "cross-site"}, {"Sec-Fetch-Site": "same-site"},
                 {"Origin": "http://evil.example"}, {"Origin": "http://127.0.0.1:1"},
                 {"Origin": "null"}, {"Referer": "http://evil.example/page.html"}]
        for h in cross:
            st, obj = srv.json("GET", "/api/recording/tone/take?client=evil", h)
            check(st == 403 and obj.get("state") is False and obj.get("token") == "",
                  "cross-origin take %r: %d %r" % (h, st, obj))
        st, obj = srv.json("GET", "/api/status")
        tone = [d for d in obj["devices"] if d["id"] == "tone"][0]
        check(tone["taken"] is False, "a refused take took nothing: %r" % tone)

        # the original client's GET routes from its own page and from the command line
        same = [{}, {"Sec-Fetch-Site": "same-origin"}, {"Sec-Fetch-Site": "none"},
                {"Origin": "http://" + here}, {"Origin": "http://" + here, "Sec-Fetch-Site": "same-origin"},
                {"Referer": "http://%s/index.html" % here}]
        for h in same:
            st, obj = srv.json("GET", "/api/recording/tone/take?client=page", h, expect=200)
            tok = obj["token"]
            for verb in ("start", "stop"):
                st, obj = srv.json("GET", "/api/recording/tone/%s/%s" % (verb, tok), h)
                check(st == 200 and obj.get("state") is True, "%s %r: %d %r" % (verb, h, st, obj))
            # another site cannot stop or release with a token it learned
            st, _ = srv.json("GET", "/api/recording/tone/release/" + tok, cross[0])
            check(st == 403, "cross-site release: %d" % st)
            st, obj = srv.json("GET", "/api/recording/tone/release/" + tok, h, expect=200)
            check(obj.get("state") is True, "release %r" % obj)

        st, _, _ = srv.request("HEAD", "/api/recording/tone/take")
        check(st == 405, "HEAD take: %d" % st)
        st, obj = srv.json("GET", "/api/status")
        check([d for d in obj["devices"] if d["id"] == "tone"][0]["taken"] is False,
              "HEAD took nothing")
        # the page and the events are read-only: served to any origin we answer to
        st, _, _ = srv.request("GET", "/", {"Sec-Fetch-Site": "cross-site"})
        check(st == 200, "the page: %d" % st)
    finally:
        rc = srv.stop()
    check(rc == 0, "exit status %d; stderr:\n%s" % (rc, srv.stderr()))
    print("ok")


if __name__ == "__main__":
    main()
