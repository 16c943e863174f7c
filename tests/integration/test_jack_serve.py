"""`pirec serve` with a configured device on a real, clock-paced ALSA PCM (JACK's dummy
backend behind the ALSA jack plugin, tests/support/jack_dummy.py, docs/audio.md).

1. The device connects in the format asked for; its meters move with the device's clock
   (level events with 2 channels, about 25 a second of the capture's own time); a take
   records at the clock's pace (never more audio than the wall time it ran, not much less)
   and stops into a valid FLAC file of exactly the frames it reports.
2. The sound server dies mid-take (the PCM just stops delivering, like a frozen USB
   interface): within the watchdog's bound the take is finalized (`stop` with reason
   `device_stalled`, then an `error`), the file is valid with the stall in its comments,
   the status says `stalled` while the device stays connected and the lease held, and
   `start` is refused (409). Prints the detection time (kill -> `stop` seen by a client).
3. A new server: `back`, levels again, no take starts by itself, a new take works.
4. The server dies with no take (an `error`, no `stop`); a new one is then paused 0.3 s
   of every second (SIGSTOP/SIGCONT: a clock that stops and goes on, never long enough
   to be a stall): a loss of timing is reported (`error`) and counted in the status.
Without the watchdog wired into serve, step 2 waits for ever (no `stop`, frozen meters)."""
import json, os, signal, subprocess, sys, threading, time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "support"))
from jack_dummy import JackDummy  # noqa: E402
from test_serve_common import SLOW, TMP, Server, Sse, check, wait_for  # noqa: E402

RATE = 48000
TAKE_S = 3.0
BOUND_S = 2.0           # the automatic watchdog bound for this device (at least 2 s)
PAUSE_S, RUN_S = 0.3, 0.7   # the crawling clock: jackd stopped 30% of the time

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
crawling = threading.Event()


def crawl():
    """Pauses jackd PAUSE_S of every PAUSE_S + RUN_S while `crawling` is set. The dummy
    backend does not catch up after a pause (it restarts its timer anchor)."""
    proc = jack.proc
    while crawling.wait(0) and proc.poll() is None:
        time.sleep(RUN_S)
        proc.send_signal(signal.SIGSTOP)
        time.sleep(PAUSE_S)
        proc.send_signal(signal.SIGCONT)


def tags(path):
    return subprocess.run(["metaflac", "--export-tags-to=-", path], capture_output=True,
                          text=True).stdout.splitlines()


def frames_of(path):
    return int(subprocess.run(["metaflac", "--show-total-samples", path], capture_output=True,
                              text=True).stdout)


def check_flac(path):
    check(os.path.isfile(path) and not os.path.exists(path + ".part"),
          "no finalized file %s" % path)
    t = subprocess.run(["flac", "-t", "-s", path], capture_output=True, text=True)
    check(t.returncode == 0, "flac -t %s: %s" % (path, t.stderr))


try:
    sse = Sse(srv.port)

    def jack_dev(connected=True):
        _, status = srv.json("GET", "/api/status", expect=200)
        for d in status.get("devices", []):
            if d.get("id") == "jack" and (d.get("connected") or not connected):
                return d
        return None

    def mark(kind):
        return len(sse.of(kind))

    def jack_events(kind, since):
        out = []
        for e in sse.of(kind)[since:]:
            d = json.loads(e["data"])
            if d.get("id") == "jack":
                out.append(d)
        return out

    def wait_jack(kind, since, timeout, what, pred=lambda d: True):
        return wait_for(lambda: next((d for d in jack_events(kind, since) if pred(d)), None),
                        timeout, what)

    def control(action, tok):
        """start/stop, and wait for its own event (`record`/`stop` of that file): events
        counted from a mark taken afterwards are then all new."""
        kind = "record" if action == "start" else "stop"
        m = mark(kind)
        st, ans = srv.json("GET", "/api/recording/jack/%s/%s" % (action, tok), expect=200)
        wait_jack(kind, m, 10, "the %s event of %s" % (kind, ans.get("file")),
                  lambda e: e.get("file") == ans.get("file"))
        return ans

    # ---- 1. meters and a take at the clock's pace --------------------------------------
    d = wait_for(jack_dev, 30, "the jack device connected")
    fmt = d.get("format") or {}
    check(fmt.get("rate") == RATE and fmt.get("channels") == 2 and fmt.get("sample") == "S32_LE",
          "format %r" % fmt)
    check(d.get("stalled") is False and d.get("stalled_since") == 0,
          "a live device is not stalled: %r" % d)
    check("timing_losses" in d and "measured_rate" in d, "status lacks the timing keys: %r" % d)
    m0 = mark("level")
    lv = wait_jack("level", m0, 10, "a level event of jack")
    check(len(lv.get("ch", [])) == 2, "level of 2 channels: %r" % lv)
    # The meter makes 25 snapshots per second of audio and the ticker sends the newest
    # every 40 ms: 50 events span about 2 s of the capture's time (t: CLOCK_MONOTONIC ms
    # of each block's last frame). Generous bounds: a loaded machine merges some; a clock
    # at half speed would need 4 s. (The take below checks the rate itself.)
    wait_for(lambda: len(jack_events("level", m0)) >= 50, 20, "50 level events of jack")
    levels = jack_events("level", m0)[:50]
    span = (levels[-1]["t"] - levels[0]["t"]) / 1000.0
    print("meters: 50 level events over %.3f s of capture time" % span)
    check(1.5 <= span <= 3.5 * SLOW, "50 level events spanned %.3f s of capture time" % span)

    tok = srv.take("jack", "jacktest")
    t0 = time.monotonic()
    control("start", tok)
    wait_for(lambda: (jack_dev() or {}).get("elapsed", 0) >= TAKE_S, 30,
             "%.0f s of audio in the take" % TAKE_S)
    ans = control("stop", tok)
    wall = time.monotonic() - t0
    secs = ans.get("seconds", 0)
    print("take: %.3f s of audio in %.3f s of wall time; stop answer %r" % (secs, wall, ans))
    check(secs >= TAKE_S, "the take holds %.3f s" % secs)
    # never faster than the clock (a period or two may sit in the device at the start)
    check(secs <= wall + 0.25, "%.3f s of audio in %.3f s of wall time" % (secs, wall))
    check(wall <= secs * 1.5 + 10 * SLOW, "%.3f s of audio took %.3f s" % (secs, wall))
    path = os.path.join(srv.rec, ans.get("file", ""))
    check_flac(path)
    n = frames_of(path)
    check(abs(n - secs * RATE) <= 1, "the file holds %d frames, the answer says %.3f s" % (n, secs))

    # ---- 2. the sound server dies mid-take -----------------------------------------------
    stalled_file = control("start", tok)["file"]
    wait_for(lambda: (jack_dev() or {}).get("elapsed", 0) >= 1.0, 30, "1 s in the take")
    m_stop, m_err, m_rec, m_back = mark("stop"), mark("error"), mark("record"), mark("back")
    t_kill = jack.kill()
    stop = wait_jack("stop", m_stop, BOUND_S + 8, "a stop event after the device fell silent")
    t_stop = time.monotonic()
    print("serve watchdog: jackd killed -> stop(%s) seen by an SSE client in %.3f s "
          "(bound %.1f s)" % (stop.get("reason"), t_stop - t_kill, BOUND_S))
    check(stop.get("reason") == "device_stalled", "stop reason %r" % stop)
    check(stop.get("file") == stalled_file, "stop names %r, the take was %r" % (stop, stalled_file))
    err = wait_jack("error", m_err, 10, "an error event about the stall",
                    lambda e: "stopped delivering audio" in e.get("message", ""))
    print("error event: %s" % err["message"])
    check("finalized" in err["message"], "the error does not say the take was kept: %r" % err)
    # (the `stop` event goes out while the device is still busy finalizing: wait for idle)
    d = wait_for(lambda: (lambda x: x if x and x.get("recording") is False else None)(
        jack_dev(connected=False)), 10, "the stalled take no longer running")
    check(d.get("connected") is True, "a stalled device stays connected (being reopened): %r" % d)
    check(d.get("stalled") is True and d.get("stalled_since", 0) > 0, "status: %r" % d)
    check(d.get("taken") is True and d.get("holder") == "jacktest", "the lease went: %r" % d)
    path = os.path.join(srv.rec, stalled_file)
    check_flac(path)
    n = frames_of(path)
    check(n >= RATE, "the stalled take kept %d frames" % n)
    check(abs(n - stop.get("seconds", 0) * RATE) <= 1, "file %d frames, stop %r" % (n, stop))
    tg = tags(path)
    loss = [x for x in tg if x.startswith("PIREC_LOSS=")]
    check(len(loss) == 1, "the stall is not in the comments: %s" % tg)
    at, rest = loss[0].split("=", 1)[1].split("+", 1)
    missing = int(rest.split("@")[0])
    # gap fill (the default): the stall is silence at its place, up to when it was noticed
    check(int(at) + missing == n, "stall filed at frame %s + %d, the take has %d" % (at, missing, n))
    check(missing >= BOUND_S * RATE, "stall filed as %s" % loss[0])
    st, ans = srv.json("GET", "/api/recording/jack/start/" + tok, expect=409)
    print("start while stalled: %d %s" % (st, ans.get("error")))
    check("stalled" in ans.get("error", ""), "409 without saying why: %r" % ans)

    # ---- 3. a new server: the device is back, nothing starts by itself -------------------
    jack.start()
    back = wait_jack("back", m_back, 30, "a back event after jackd restarted")
    t_back = time.monotonic()
    print("back: %r, %.3f s after the kill" % (back, t_back - t_kill))
    check(back.get("silent_seconds", 0) >= BOUND_S, "back after %r" % back)
    m_lv = mark("level")
    wait_jack("level", m_lv, 10, "levels of jack again")
    d = jack_dev()
    check(d.get("stalled") is False and d.get("stalled_since") == 0, "status after back: %r" % d)
    check(d.get("recording") is False and not jack_events("record", m_rec),
          "a take started by itself: %r" % d)
    control("start", tok)
    wait_for(lambda: (jack_dev() or {}).get("elapsed", 0) >= 1.0, 30, "1 s in the new take")
    ans = control("stop", tok)
    check(ans.get("file") != stalled_file, "the new take reused %r" % ans)
    check_flac(os.path.join(srv.rec, ans["file"]))
    check(ans.get("seconds", 0) >= 1.0, "new take: %r" % ans)

    # ---- 4. a stall with no take; back with a clock that crawls ------------------------
    m_stop, m_err, m_back = mark("stop"), mark("error"), mark("back")
    t_kill = jack.kill()
    err = wait_jack("error", m_err, BOUND_S + 8, "an error event about the stall (no take)",
                    lambda e: "stopped delivering audio" in e.get("message", ""))
    print("no take: jackd killed -> error seen in %.3f s: %s" % (time.monotonic() - t_kill,
                                                                 err["message"]))
    check(not jack_events("stop", m_stop), "a stop event without a take")
    wait_for(lambda: (jack_dev() or {}).get("stalled") is True, 10, "status stalled (no take)")
    jack.start()
    wait_jack("back", m_back, 30, "a back event")
    crawling.set()
    crawler = threading.Thread(target=crawl, daemon=True)
    crawler.start()
    # the timing window (10 s) restarts when frames flow again
    err = wait_jack("error", m_err, 40, "a loss of timing event",
                    lambda e: e.get("message", "").startswith("loss of timing"))
    print("crawling clock: %s" % err["message"])
    d = wait_for(lambda: (lambda x: x if x and x.get("timing_losses", 0) >= 1 else None)(
        jack_dev()), 10, "timing_losses in the status")
    print("status: timing_losses %d, measured_rate %.1f Hz" % (d["timing_losses"],
                                                               d["measured_rate"]))
    check(0 < d["measured_rate"] < RATE * 0.95, "measured rate %r" % d)
    check(d.get("stalled") is False, "pauses shorter than the bound made a stall: %r" % d)
    crawling.clear()
    crawler.join(10)

    srv.json("GET", "/api/recording/jack/release/" + tok, expect=200)
    check(srv.stop() == 0, "pirec serve did not exit cleanly")
finally:
    crawling.clear()
    if jack.proc:
        jack.proc.send_signal(signal.SIGCONT)
    if sse:
        sse.close()
    srv.kill()
    jack.stop()
print("ok")
