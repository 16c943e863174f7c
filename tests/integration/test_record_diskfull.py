"""A take on a nearly full disk (a 3 MiB tmpfs): refused at the start below --min-free-mb,
stopped cleanly when the free space runs low during the take, and when the disk really
fills (ENOSPC in the middle of a frame) the file still ends at a whole frame and passes
flac -t, with the error reported."""
import os, random, subprocess, sys, wave

BIN = os.environ["PIREC_BIN"]
TMP = os.environ["TEST_TMP"]


def check(cond, msg):
    if not cond:
        print("FAIL:", msg)
        sys.exit(1)


if os.geteuid() != 0:
    print("skip: mounting a small tmpfs needs root")
    sys.exit(77)
mnt = os.path.join(TMP, "mnt")
os.makedirs(mnt)
m = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", mnt],
                   capture_output=True, text=True)
if m.returncode != 0:
    print("skip: cannot mount a tmpfs here:", m.stderr.strip())
    sys.exit(77)
try:
    src = os.path.join(TMP, "noise.wav")
    rnd = random.Random(3)
    with wave.open(src, "wb") as w:   # noise does not compress: ~5.8 MB of FLAC
        w.setnchannels(2)
        w.setsampwidth(3)
        w.setframerate(48000)
        w.writeframes(rnd.randbytes(48000 * 20 * 6))

    def record(sub, *extra):
        d = os.path.join(mnt, sub)
        r = subprocess.run([BIN, "record", "--source", "file:" + src, "--dir", d,
                            "--flush-ms", "100", *extra],
                           capture_output=True, text=True, timeout=120)
        print(sub, r.returncode, r.stdout.strip(), "|", r.stderr.strip()[-600:])
        return d, r

    # refused at the start: clear message, exit 2, nothing created
    d, r = record("refused", "--min-free-mb", "100")
    check(r.returncode == 2, "start below min free: exit %d" % r.returncode)
    check("free" in r.stderr and "--min-free-mb" in r.stderr, "no clear message")
    check(not os.path.exists(d) or not os.listdir(d), "files created although refused")

    # stopped cleanly when less than 1 MiB is left
    d, r = record("low", "--min-free-mb", "1")
    check(r.returncode == 1, "low disk: exit %d" % r.returncode)
    check("disk is (nearly) full" in r.stderr, "no disk message")
    files = os.listdir(d)
    check(len(files) == 1 and files[0].endswith(".flac"), "files: %s" % files)
    f = os.path.join(d, files[0])
    t = subprocess.run(["flac", "-t", "-s", f], capture_output=True, text=True)
    check(t.returncode == 0, "flac -t: " + t.stderr)
    n = int(subprocess.run(["metaflac", "--show-total-samples", f], capture_output=True,
                           text=True).stdout)
    check(n > 48000, "only %d samples kept" % n)
    os.unlink(f)

    # the disk really fills: ENOSPC inside a frame
    d, r = record("enospc", "--min-free-mb", "0")
    check(r.returncode == 1, "ENOSPC: exit %d" % r.returncode)
    check("disk is (nearly) full" in r.stderr or "No space" in r.stderr, "no ENOSPC message")
    files = os.listdir(d)
    check(len(files) == 1 and files[0].endswith(".flac"), "files: %s" % files)
    f = os.path.join(d, files[0])
    t = subprocess.run(["flac", "-t", "-s", f], capture_output=True, text=True)
    check(t.returncode == 0, "flac -t after ENOSPC: " + t.stderr)
    n = int(subprocess.run(["metaflac", "--show-total-samples", f], capture_output=True,
                           text=True).stdout)
    check(n > 48000, "only %d samples kept" % n)
    print("ok")
finally:
    subprocess.run(["umount", "-l", mnt])
