#!/usr/bin/python3
"""Waveform peaks (docs/api.md "Waveform peaks") through the real `pirec serve --demo`:
computed while recording and stored beside the take (NAME.peaks), served while the take is
written (complete false) and after (complete true, about 10 slices a second, the demo tone's
level, not silence), announced in the list (`peaks`), 404 for a take without them, 400 for a
bad name, removed with the take."""
import json
import os
import urllib.parse

from test_serve_common import Server, Sse, check, wait_for, TMP


def main():
    os.makedirs(TMP, exist_ok=True)
    cfg = os.path.join(TMP, "page_peaks.ini")
    with open(cfg, "w") as f:
        f.write("[server]\npreroll_seconds = 0\n")
    srv = Server("page_peaks", config=cfg)
    sse = Sse(srv.port)
    q = urllib.parse.quote
    try:
        tok = srv.take("tone", "ipad")
        st, start = srv.json("GET", "/api/recording/tone/start/" + q(tok), expect=200)
        name = start["file"]

        def growing():
            st, p = srv.json("GET", "/api/recordings/%s/peaks" % q(name))
            return p if st == 200 and len(p["peaks"][0]) >= 8 else None
        p = wait_for(growing, 20, "peaks of the take being written")
        check(p["complete"] is False and p["channels"] == 2 and p["per_second"] == 10,
              "while recording: %r" % {k: v for k, v in p.items() if k != "peaks"})
        st, stop = srv.json("GET", "/api/recording/tone/stop/" + q(tok), expect=200)
        added = json.loads(sse.wait_event("take_added")["data"])
        check(added["peaks"] is True, "take_added says peaks: %r" % added)
        st, p = srv.json("GET", "/api/recordings/%s/peaks" % q(name), expect=200)
        n = len(p["peaks"][0])
        check(p["complete"] is True and len(p["peaks"]) == 2 and len(p["peaks"][1]) == n,
              "complete overview: %r" % {k: v for k, v in p.items() if k != "peaks"})
        want = stop["seconds"] * 10
        check(want - 2 <= n <= want + 1, "%d slices for %.3f s" % (n, stop["seconds"]))
        check(abs(p["seconds"] - n / 10) < 1e-6, "seconds = slices / 10: %r" % p["seconds"])
        check(all(0 < v <= 255 for ch in p["peaks"] for v in ch), "the tone shows: %r" % p["peaks"][0][:20])
        peaks_file = os.path.join(srv.rec, name + ".peaks")
        check(os.path.getsize(peaks_file) == 2 * n, "stored beside the take: 1 byte per slice per channel")
        _, lst = srv.json("GET", "/api/recordings", expect=200)
        check([e["peaks"] for e in lst["recordings"] if e["name"] == name] == [True], "list: %r" % lst)

        st, o = srv.json("GET", "/api/recordings/nosuch.flac/peaks")
        check(st == 404, "unknown take: %d %r" % (st, o))
        st, o = srv.json("GET", "/api/recordings/bad%20name.txt/peaks")
        check(st == 400, "bad name: %d %r" % (st, o))
        st, o = srv.json("POST", "/api/recordings/%s/peaks" % q(name))
        check(st == 405, "POST peaks: %d" % st)
        # an older take without an overview: 404, and the list says so
        os.rename(peaks_file, peaks_file + ".away")
        st, o = srv.json("GET", "/api/recordings/%s/peaks" % q(name))
        check(st == 404, "no overview: %d %r" % (st, o))
        _, lst = srv.json("GET", "/api/recordings", expect=200)
        check([e["peaks"] for e in lst["recordings"] if e["name"] == name] == [False], "list without")
        os.rename(peaks_file + ".away", peaks_file)
        # deleted with the take
        srv.json("DELETE", "/api/recordings/%s" % q(name), {"Authorization": "Bearer " + tok}, expect=200)
        check(not os.path.exists(peaks_file), "the overview goes with the take")
    finally:
        sse.close()
        rc = srv.stop()
    check(rc == 0, "exit %d; stderr:\n%s" % (rc, srv.stderr()))
    print("ok")


if __name__ == "__main__":
    main()
