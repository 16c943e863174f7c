#!/usr/bin/python3
"""Takes announced to every page (issue 10, docs/api.md): `take_added` with the recordings
list's object of a take that became complete, `delete` with who deleted it; a device's
`name =` from its [device] section in the status and the `add`-time status. Through the real
`pirec serve` over HTTP, POST and the original GET routes."""
import json
import os
import subprocess
import urllib.parse

from test_serve_common import Server, Sse, check, fail, TMP


def main():
    os.makedirs(TMP, exist_ok=True)
    cfg = os.path.join(TMP, "page_events.ini")
    with open(cfg, "w") as f:
        f.write("[server]\npreroll_seconds = 0\n\n[device tone]\npcm = tone\nname = Piano left \u00e9\n")
    srv = Server("page_events", config=cfg)
    sse = Sse(srv.port)
    q = urllib.parse.quote
    try:
        st, obj = srv.json("GET", "/api/status", expect=200)
        dev = [d for d in obj["devices"] if d["id"] == "tone"]
        check(dev and dev[0]["name"] == "Piano left \u00e9", "name from the config: %r" % obj)
        check(obj["tone"]["name"] == "Piano left \u00e9", "original per-id name: %r" % obj["tone"])

        tok = srv.take("tone", "ipad")
        srv.json("GET", "/api/recording/tone/start/" + q(tok), expect=200)
        sse.wait_event("level", 10)
        st, stop = srv.json("GET", "/api/recording/tone/stop/" + q(tok), expect=200)
        added = json.loads(sse.wait_event("take_added")["data"])
        st, lst = srv.json("GET", "/api/recordings", expect=200)
        entry = [e for e in lst["recordings"] if e["name"] == stop["file"]]
        check(entry and added == entry[0], "take_added is the list's object: %r %r" % (added, entry))
        check(added["complete"] is True and added["device"] == "tone", "complete: %r" % added)

        # delete (POST and the DELETE verb): announced with who did it
        st, d = srv.json("POST", "/api/recordings/%s/delete" % q(stop["file"]),
                         {"Authorization": "Bearer " + tok}, expect=200)
        ev = json.loads(sse.wait_event("delete")["data"])
        check(ev == {"name": stop["file"], "by": "ipad"}, "delete event: %r" % ev)
        st, d = srv.json("POST", "/api/recordings/%s/delete" % q(stop["file"]),
                         {"Authorization": "Bearer " + tok})
        check(st == 404 and len(sse.of("delete")) == 1, "a failed delete is not announced")

        # a bad name in the config: a clear message, exit 2
        bad = os.path.join(TMP, "page_events_bad.ini")
        with open(bad, "w") as f:
            f.write("[device tone]\npcm = tone\nname = \n")
        r = subprocess.run([os.environ.get("PIREC_BIN", "build/pirec"), "serve", "--config", bad,
                            "--listen", "127.0.0.1:0"], capture_output=True, text=True, timeout=30)
        check(r.returncode == 2 and "name:" in r.stderr and "printable UTF-8" in r.stderr,
              "empty name refused: %d %r" % (r.returncode, r.stderr))
    finally:
        sse.close()
        rc = srv.stop()
    check(rc == 0, "exit status %d; stderr:\n%s" % (rc, srv.stderr()))
    print("ok")


if __name__ == "__main__":
    main()
