"""`pirec record` on a real, clock-paced ALSA capture device (JACK's dummy backend behind
the ALSA jack plugin, see tests/support/jack_dummy.py and docs/audio.md):

1. a real-time take: exactly the frames asked for, never faster than the clock delivers
   them (wall time >= frames / rate, minus one period) and not much slower; the device
   clock measured over a timing window matches the nominal rate and no loss of timing is
   reported -- unless the dummy backend itself ran late (it then really delivers fewer
   frames: its log counts "XRun"s), where a reported loss of timing is the right answer;
2. the sound server dies mid-take (jackd killed: the PCM just stops delivering, the
   symptom of a frozen USB interface): the watchdog notices, the take ends by itself with
   exit status 1 and a message that says the device stalled, the file is valid FLAC with
   everything captured and the stall in its comments (PIREC_LOSS). Without the watchdog
   `pirec record` waits forever here. Prints the detection time (kill -> exit);
3. the server hangs mid-take (SIGSTOP: every call into it blocks, closing the PCM too,
   like a hung firmware): the take is finalized the same way, and `pirec record` still
   exits: the capture thread, stuck in the driver, is abandoned with a message."""
import os, subprocess, sys, threading, time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from jack_dummy import JackDummy  # noqa: E402

BIN = os.environ["PIREC_BIN"]
TMP = os.environ["TEST_TMP"]
RATE, PERIOD = 48000, 480


def check(cond, msg):
    if not cond:
        print("FAIL:", msg)
        sys.exit(1)


def total_samples(path):
    """STREAMINFO's total samples (36 bits), also of a .part being written."""
    with open(path, "rb") as f:
        head = f.read(8 + 34)
    if len(head) < 42 or head[:4] != b"fLaC":
        return 0
    si = head[8:]
    return ((si[13] & 0x0F) << 32) | int.from_bytes(si[14:18], "big")


def tags(path):
    return subprocess.run(["metaflac", "--export-tags-to=-", path], capture_output=True,
                          text=True).stdout.splitlines()


def take_until_silent(name, silence, expect_stuck):
    """A take that runs until the device falls silent by `silence()` (kill or freeze);
    checks what the user gets and returns the seconds from silence to exit."""
    out = os.path.join(TMP, name)
    p = subprocess.Popen([BIN, "record", "--pcm", JackDummy.PCM, "--format", "S32_LE",
                          "--rate", str(RATE), "--channels", "2", "--seconds", "120",
                          "--out", out, "--min-free-mb", "1", "--flush-ms", "200"],
                         env=jack.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    err_lines = []
    reader = threading.Thread(target=lambda: err_lines.extend(p.stderr), daemon=True)
    reader.start()
    end = time.monotonic() + 60
    while time.monotonic() < end and p.poll() is None:
        if os.path.exists(out + ".part") and total_samples(out + ".part") >= RATE:
            break
        time.sleep(0.05)
    check(p.poll() is None, "pirec record ended before the device fell silent: %s"
          % "".join(err_lines))
    check(total_samples(out + ".part") >= RATE, "no second of audio reached the file")
    t_silent = silence()
    try:
        p.wait(timeout=60)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
        check(False, "pirec record still runs 60 s after the device fell silent")
    t_exit = time.monotonic()
    stdout = p.stdout.read()
    reader.join(10)
    stderr = "".join(err_lines)
    print(p.returncode, stdout, stderr[-2500:])
    print("%s: device silent -> take finalized and pirec exited in %.3f s"
          % (name, t_exit - t_silent))
    check(p.returncode == 1, "stalled take: exit %d, want 1" % p.returncode)
    check("stopped delivering audio" in stderr, "no message that the device stalled")
    check("device stalled" in stdout, "the summary does not say the device stalled")
    check(("stuck in the driver" in stderr) == expect_stuck,
          "abandoned capture thread: %s, expected %s" % (not expect_stuck, expect_stuck))
    check(os.path.exists(out) and not os.path.exists(out + ".part"), "take not finalized")
    t = subprocess.run(["flac", "-t", "-s", out], capture_output=True, text=True)
    check(t.returncode == 0, "flac -t: " + t.stderr)
    n = total_samples(out)
    check(n >= RATE, "the stalled take kept %d frames" % n)
    check("%d frames" % n in stdout, "summary and file disagree: %s" % stdout)
    tg = tags(out)
    print(tg)
    loss = [x for x in tg if x.startswith("PIREC_LOSS=")]
    check(len(loss) == 1, "the stall is not in the comments: %s" % tg)
    at, rest = loss[0].split("=", 1)[1].split("+", 1)
    missing = int(rest.split("@")[0])
    # gap fill (the default): the stall's frames are silence at its place, so the take
    # lasts as long as the time that passed until the stall was noticed
    check(int(at) + missing == n, "stall filed at frame %s + %d, the take has %d" % (at, missing, n))
    check(missing >= 2 * RATE, "stall filed with %d missing frames, the bound is >= 2 s" % missing)
    return t_exit - t_silent



jack = JackDummy(TMP, rate=RATE, period=PERIOD)
jack.start()
try:
    # 1. real time: 5 s, with 2 s timing windows so that two close
    out = os.path.join(TMP, "rt.flac")
    secs = 5
    xruns0 = jack.xruns()
    t0 = time.monotonic()
    r = subprocess.run([BIN, "record", "--pcm", JackDummy.PCM, "--format", "S32_LE", "--rate",
                        str(RATE), "--channels", "2", "--seconds", str(secs), "--out", out,
                        "--min-free-mb", "1", "--timing-seconds", "2"], env=jack.env,
                       capture_output=True, text=True, timeout=120)
    wall = time.monotonic() - t0
    late = jack.xruns() - xruns0
    print(r.returncode, r.stdout, r.stderr[-1500:])
    print("real-time take: %.3f s of audio in %.3f s of wall time (dummy backend late %d "
          "times)" % (secs, wall, late))
    n = total_samples(out)
    check(n == RATE * secs, "real-time take: %d frames, want %d" % (n, RATE * secs))
    check(wall >= secs - PERIOD / RATE,
          "%d frames came in %.3f s: faster than the device's clock" % (n, wall))
    check(wall <= secs * 1.5 + 5, "%d frames took %.3f s: the clock crawls" % (n, wall))
    clock = [ln for ln in r.stderr.splitlines() if ln.startswith("device clock:")]
    check(clock, "no device clock measured over a %d s take" % secs)
    hz = float(clock[0].split()[2])
    check(hz <= RATE * 1.01, "device clock measured at %.1f Hz, above nominal %d" % (hz, RATE))
    if late == 0:
        check(r.returncode == 0, "real-time take: exit %d" % r.returncode)
        check("LOSS OF TIMING" not in r.stderr, "a good clock was reported as a loss of timing")
        check(hz >= RATE * 0.99, "device clock measured at %.1f Hz, nominal %d" % (hz, RATE))
    else:
        check(r.returncode in (0, 1), "real-time take: exit %d" % r.returncode)
        print("the dummy clock ran late: loss of timing %s" %
              ("reported" if "LOSS OF TIMING" in r.stderr else "within the tolerance"))

    # 2. the server dies mid-take
    took = take_until_silent("killed.flac", jack.kill, False)
    print("watchdog: jackd killed -> take finalized and pirec exited in %.3f s" % took)

    # 3. the server hangs mid-take; thawed once pirec is done, so that it can stop
    jack.start()

    def freeze():
        jack.freeze()
        return time.monotonic()
    try:
        took = take_until_silent("frozen.flac", freeze, True)
    finally:
        jack.thaw()
    print("watchdog: jackd frozen -> take finalized and pirec exited in %.3f s" % took)
finally:
    jack.stop()
print("ok")
