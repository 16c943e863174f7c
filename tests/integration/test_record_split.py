"""Pre-roll and splits. Content encodes time (left sample = frame index mod 2^15, right =
frame index div 2^15), so the files show where they begin: with --preroll the take begins
the pre-roll before the start point pirec reports; split files by length and by size are
gapless (each begins at the frame after the previous one ends) and add up to the take."""
import os, struct, subprocess, sys, wave, re

BIN = os.environ["PIREC_BIN"]
TMP = os.environ["TEST_TMP"]
RATE = 48000


def check(cond, msg):
    if not cond:
        print("FAIL:", msg)
        sys.exit(1)


def frame_index(l, r):
    return (r << 15) | l


src = os.path.join(TMP, "clock.wav")
with wave.open(src, "wb") as w:
    w.setnchannels(2)
    w.setsampwidth(2)
    w.setframerate(RATE)
    w.writeframes(b"".join(struct.pack("<hh", i & 0x7FFF, i >> 15) for i in range(RATE * 8)))


def decode(path):
    raw = path + ".raw"
    subprocess.run(["flac", "-d", "-s", "-f", "--force-raw-format", "--endian=little",
                    "--sign=signed", "-o", raw, path], check=True)
    b = open(raw, "rb").read()
    return [frame_index(*struct.unpack_from("<hh", b, i)) for i in range(0, len(b), 4)]


def contiguous(idx, first):
    return all(v == first + k for k, v in enumerate(idx))


# pre-roll on a live (real-time) source: the take starts 1 s before the start point
d = os.path.join(TMP, "pre")
r = subprocess.run([BIN, "record", "--source", "file:" + src, "--realtime", "--preroll", "1",
                    "--seconds", "1", "--dir", d, "--min-free-mb", "1"],
                   capture_output=True, text=True, timeout=60)
print(r.returncode, r.stdout, r.stderr[-600:])
check(r.returncode == 0, "preroll: exit %d" % r.returncode)
m = re.search(r"starts at source frame (\d+)", r.stderr)
check(m, "preroll: no start frame reported")
files = sorted(os.listdir(d))
check(len(files) == 1, "preroll files %s" % files)
idx = decode(os.path.join(d, files[0]))
check(len(idx) == 2 * RATE, "preroll: %d frames, want pre-roll + length = %d" % (len(idx), 2 * RATE))
first = idx[0]
check(first == int(m.group(1)), "preroll: first frame %d, reported %s" % (first, m.group(1)))
check(contiguous(idx, first), "preroll: gap inside the take")

# split by length: 8 s in 3 s pieces -> 3 + 3 + 2, gapless
def split_case(name, *opts):
    d = os.path.join(TMP, name)
    r = subprocess.run([BIN, "record", "--source", "file:" + src, "--dir", d,
                        "--name", "take", "--min-free-mb", "1", *opts],
                       capture_output=True, text=True, timeout=60)
    print(name, r.returncode, r.stdout, r.stderr[-300:])
    check(r.returncode == 0, name + ": exit %d" % r.returncode)
    listed = [l.split()[1] for l in r.stdout.splitlines() if l.startswith("file: ")]
    check(len(listed) >= 2, name + ": not split: %s" % listed)
    nxt = 0
    for f in listed:
        check(subprocess.run(["flac", "-t", "-s", f]).returncode == 0, name + ": flac -t " + f)
        idx = decode(f)
        check(idx and idx[0] == nxt, name + ": %s starts at %d, want %d" % (f, idx[0] if idx else -1, nxt))
        check(contiguous(idx, nxt), name + ": gap inside " + f)
        nxt += len(idx)
    check(nxt == 8 * RATE, name + ": %d frames in all, want %d" % (nxt, 8 * RATE))
    return listed


files = split_case("bylen", "--split-seconds", "3")
check(len(files) == 3, "bylen: %d files" % len(files))
split_case("bysize", "--split-mb", "0.02")
print("ok")
