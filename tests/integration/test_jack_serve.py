"""`pirec serve` with a configured device on a real, clock-paced ALSA PCM (JACK's dummy
backend behind the ALSA jack plugin, tests/support/jack_dummy.py, docs/audio.md): the
device connects in the format asked for, its meters move (level events with 2 channels),
a take records at the clock's pace (never more audio than the wall time it ran, not much
less) and stops into a valid FLAC file of exactly the frames it reports.

What a stalled device does in `serve` (stop reason `device_stalled`, `back`) is not wired
yet: see the follow-up note of branch i13."""
import json, os, subprocess, sys, time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "support"))
from jack_dummy import JackDummy  # noqa: E402
from test_serve_common import SLOW, TMP, Server, Sse, check, wait_for  # noqa: E402

RATE = 48000
TAKE_S = 3.0

jack = JackDummy(TMP, rate=RATE)
jack.start()
os.environ.update(jack.env)   # pirec serve finds ~/.asoundrc and the server by name
cfg = os.path.join(TMP, "pirec.ini")
with open(cfg, "w") as f:
    f.write("[server]\npreroll_seconds = 0\nmin_free_mb = 1\n\n"
            "[device jack]\npcm = %s\nformat = S32_LE\nrate = %d\nchannels = 2\n"
            % (JackDummy.PCM, RATE))
srv = Server("jack", demo=False, config=cfg)
sse = None
try:
    sse = Sse(srv.port)

    def jack_dev():
        _, status = srv.json("GET", "/api/status", expect=200)
        for d in status.get("devices", []):
            if d.get("id") == "jack" and d.get("connected"):
                return d
        return None

    d = wait_for(jack_dev, 30, "the jack device connected")
    fmt = d.get("format") or {}
    check(fmt.get("rate") == RATE and fmt.get("channels") == 2 and fmt.get("sample") == "S32_LE",
          "format %r" % fmt)
    lv = sse.wait_event("level", timeout=10,
                        pred=lambda e: json.loads(e["data"]).get("id") == "jack")
    check(len(json.loads(lv["data"]).get("ch", [])) == 2, "level of 2 channels: %r" % lv)

    tok = srv.take("jack", "jacktest")
    t0 = time.monotonic()
    st, ans = srv.json("GET", "/api/recording/jack/start/" + tok, expect=200)
    wait_for(lambda: (jack_dev() or {}).get("elapsed", 0) >= TAKE_S, 30,
             "%.0f s of audio in the take" % TAKE_S)
    st, ans = srv.json("GET", "/api/recording/jack/stop/" + tok, expect=200)
    wall = time.monotonic() - t0
    secs = ans.get("seconds", 0)
    print("take: %.3f s of audio in %.3f s of wall time; stop answer %r" % (secs, wall, ans))
    check(secs >= TAKE_S, "the take holds %.3f s" % secs)
    # never faster than the clock (a period or two may sit in the device at the start)
    check(secs <= wall + 0.25, "%.3f s of audio in %.3f s of wall time" % (secs, wall))
    check(wall <= secs * 1.5 + 10 * SLOW, "%.3f s of audio took %.3f s" % (secs, wall))
    path = os.path.join(srv.rec, ans.get("file", ""))
    check(os.path.isfile(path), "no file %s" % path)
    t = subprocess.run(["flac", "-t", "-s", path], capture_output=True, text=True)
    check(t.returncode == 0, "flac -t: " + t.stderr)
    n = int(subprocess.run(["metaflac", "--show-total-samples", path], capture_output=True,
                           text=True).stdout)
    check(abs(n - secs * RATE) <= 1, "the file holds %d frames, the answer says %.3f s" % (n, secs))
    srv.json("GET", "/api/recording/jack/release/" + tok, expect=200)
    check(srv.stop() == 0, "pirec serve did not exit cleanly")
finally:
    if sse:
        sse.close()
    srv.kill()
    jack.stop()
print("ok")
