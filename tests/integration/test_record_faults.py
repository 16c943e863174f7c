"""What a user sees when things go wrong during `pirec record`: the device vanishes
(file source with --fail-at-frame: the file holds exactly those frames, exit 1 says
"went away"), a stall loses frames (counted, on stderr, in PIREC_LOSSES/PIREC_LOSS), a
clock that crawls (--pace-percent 50) is a loss of timing (exit 1, LOSS OF TIMING, in the
file's comments), and bad input (unknown device, impossible format, unwritable folder, missing file) gets a
clear message and exit 2 without touching anything."""
import os, struct, subprocess, sys, wave

BIN = os.environ["PIREC_BIN"]
TMP = os.environ["TEST_TMP"]
RATE = 48000


def check(cond, msg):
    if not cond:
        print("FAIL:", msg)
        sys.exit(1)


def run(*args):
    r = subprocess.run([BIN, *args], capture_output=True, text=True, timeout=60)
    print(args[:4], r.returncode, r.stdout.strip(), "|", r.stderr.strip()[-500:])
    return r


def tags(path):
    out = subprocess.run(["metaflac", "--export-tags-to=-", path], capture_output=True,
                         text=True).stdout
    return out.splitlines()


src = os.path.join(TMP, "ramp.wav")
with wave.open(src, "wb") as w:
    w.setnchannels(2)
    w.setsampwidth(2)
    w.setframerate(RATE)
    w.writeframes(b"".join(struct.pack("<hh", i % 32768, -(i % 32768)) for i in range(RATE * 4)))

# unplug: exactly the frames before the device vanished, finalized
out = os.path.join(TMP, "gone.flac")
r = run("record", "--source", "file:" + src, "--fail-at-frame", "70000", "--out", out,
        "--min-free-mb", "1")
check(r.returncode == 1, "device gone: exit %d" % r.returncode)
check("went away" in r.stderr, "no device-gone message")
check(subprocess.run(["flac", "-t", "-s", out]).returncode == 0, "gone: flac -t")
n = subprocess.run(["metaflac", "--show-total-samples", out], capture_output=True, text=True).stdout
check(int(n) == 70000, "gone: %s samples, want 70000" % n.strip())

# a stall: the frames it cost are counted and written into the file
out = os.path.join(TMP, "stall.flac")
r = run("record", "--source", "file:" + src, "--realtime", "--stall-at-frame", "24000",
        "--stall-ms", "300", "--seconds", "1.5", "--out", out, "--min-free-mb", "1")
check(r.returncode == 1, "stall: exit %d" % r.returncode)
check("LOST" in r.stderr, "stall: no loss message")
t = tags(out)
print(t)
losses = [x for x in t if x.startswith("PIREC_LOSSES=")]
check(len(losses) == 1 and not losses[0].startswith("PIREC_LOSSES=0:"), "PIREC_LOSSES: %s" % losses)
ev, fr = losses[0].split("=")[1].split(":")
check(int(ev) == 1 and int(fr) >= RATE * 3 // 10 * 9 // 10, "loss counted: %s" % losses)
each = [x for x in t if x.startswith("PIREC_LOSS=")]
check(len(each) == 1 and each[0].split("=")[1].startswith("24000+"), "PIREC_LOSS: %s" % each)
check(subprocess.run(["flac", "-t", "-s", out]).returncode == 0, "stall: flac -t")

# a crawling clock: half the frames the wall clock allows, over 1 s windows
out = os.path.join(TMP, "crawl.flac")
r = run("record", "--source", "file:" + src, "--realtime", "--pace-percent", "50",
        "--timing-seconds", "1", "--seconds", "2", "--out", out, "--min-free-mb", "1")
check(r.returncode == 1, "crawl: exit %d" % r.returncode)
check("LOSS OF TIMING" in r.stderr, "crawl: no loss-of-timing message")
check("device clock:" in r.stderr, "crawl: no measured clock")
hz = float(r.stderr.split("device clock:")[1].split()[0])
check(RATE * 0.3 < hz < RATE * 0.7, "crawl: clock measured at %.1f Hz" % hz)
check(subprocess.run(["flac", "-t", "-s", out]).returncode == 0, "crawl: flac -t")
n = subprocess.run(["metaflac", "--show-total-samples", out], capture_output=True, text=True).stdout
check(int(n) == 2 * RATE, "crawl: %s samples, want %d" % (n.strip(), 2 * RATE))
t = tags(out)
print(t)
each = [x for x in t if x.startswith("PIREC_LOSS=")]
check(each, "crawl: the loss of timing is not in the comments: %s" % t)
for x in each:   # each window missed about half a second
    missing = int(x.split("=", 1)[1].split("+", 1)[1].split("@")[0])
    check(RATE * 3 // 10 <= missing <= RATE * 7 // 10, "crawl: %s" % x)

# bad input: clear messages, exit 2, nothing destroyed
r = run("record", "--device", "no-such-device", "--seconds", "1", "--dir", TMP)
check(r.returncode == 2 and "no capture device 'no-such-device'" in r.stderr, "unknown device")
r = run("record", "--source", "tone", "--rate", "12", "--seconds", "1", "--dir", TMP)
check(r.returncode == 2 and "--rate" in r.stderr, "impossible rate")
r = run("record", "--source", "tone", "--format", "S20_LE", "--seconds", "1", "--dir", TMP)
check(r.returncode == 2 and "S16_LE" in r.stderr, "impossible format")
for opt, val, want in (("--stall-seconds", "0", "--stall-seconds must be"),
                       ("--timing-seconds", "0.1", "--timing-seconds must be"),
                       ("--pace-percent", "0", "--pace-percent must be")):
    r = run("record", "--source", "tone", opt, val, "--seconds", "1", "--dir", TMP)
    check(r.returncode == 2 and want in r.stderr, "%s %s: %d %s" % (opt, val, r.returncode, r.stderr))
r = run("record", "--source", "tone", "--bits", "24", "--seconds", "1", "--dir", TMP,
        "--min-free-mb", "1")
check(r.returncode == 2 and "bits" in r.stderr, "24 bits from a 16-bit source")
ro = os.path.join(TMP, "ro")
os.makedirs(ro)
with open(os.path.join(ro, "keep.flac"), "wb") as f:
    f.write(b"precious")
os.chmod(ro, 0o555)
if os.geteuid() == 0:
    # root writes anywhere; a path under a regular file is unwritable for everyone
    bad = os.path.join(ro, "keep.flac", "sub")
else:
    bad = ro
r = run("record", "--source", "tone", "--seconds", "1", "--dir", bad, "--min-free-mb", "1")
check(r.returncode == 2 and ("Not a directory" in r.stderr or "Permission" in r.stderr),
      "unwritable dir")
check(open(os.path.join(ro, "keep.flac"), "rb").read() == b"precious", "file destroyed")
r = run("record", "--source", "file:" + os.path.join(TMP, "missing.wav"), "--dir", TMP)
check(r.returncode == 2 and "missing.wav" in r.stderr, "missing source file")
# --out onto an existing file: never overwritten, a free name next to it
keep = os.path.join(TMP, "keep.flac")
with open(keep, "wb") as f:
    f.write(b"precious")
r = run("record", "--source", "file:" + src, "--seconds", "0.5", "--out", keep, "--min-free-mb", "1")
check(r.returncode == 0 and open(keep, "rb").read() == b"precious", "existing --out overwritten")
check(os.path.exists(os.path.join(TMP, "keep-1.flac")), "no keep-1.flac")
print("ok")
