"""pirec record through ALSA's file plugin (the real libasound capture path) from known
PCM: the FLAC decodes sample for sample to the input, at S16_LE, S24_3LE and S32_LE
(full 32-bit content stored at 32 bits; with no --bits, 24-bit content in S32 is found
and stored at 24; --bits 32 forces 32; a --bits 24 request that meets content needing 32
goes back to 32)."""
import os, random, subprocess, sys

BIN = os.environ["PIREC_BIN"]
TMP = os.environ["TEST_TMP"]
RATE, CH, SECS = 48000, 2, 2
FRAMES = RATE * SECS


def run(*args, **kw):
    return subprocess.run(list(args), capture_output=True, text=True, timeout=120, **kw)


def check(cond, msg):
    if not cond:
        print("FAIL:", msg)
        sys.exit(1)


def case(name, fmt, width, raw, bits, expect_bits, expect_bytes):
    infile = os.path.join(TMP, name + ".raw")
    # the file plugin keeps returning the last data past the end: give it more than needed
    with open(infile, "wb") as f:
        f.write(raw + bytes(len(raw)))
    conf = os.path.join(TMP, name + ".conf")
    with open(conf, "w") as f:
        f.write('pcm.filecap { type file slave.pcm { type null } file "/dev/null" '
                'infile "%s" format "raw" }\n' % infile)
    out = os.path.join(TMP, name + ".flac")
    args = [BIN, "record", "--pcm", "filecap", "--alsa-conf", conf, "--format", fmt,
            "--rate", str(RATE), "--channels", str(CH), "--seconds", str(SECS),
            "--out", out, "--min-free-mb", "1"]
    if bits:
        args += ["--bits", str(bits)]
    r = run(*args)
    print(name, r.returncode, r.stdout.strip(), r.stderr.strip()[-400:])
    check(r.returncode == 0, name + ": pirec record failed")
    check(os.path.exists(out) and not os.path.exists(out + ".part"), name + ": no final file")
    t = run("flac", "-t", "-s", out)
    check(t.returncode == 0, name + ": flac -t: " + t.stderr)
    b = run("metaflac", "--show-bps", "--show-total-samples", out).stdout.split()
    check(b == [str(expect_bits), str(FRAMES)], name + ": bps/samples %s" % b)
    dec = os.path.join(TMP, name + ".dec")
    d = run("flac", "-d", "-s", "-f", "--force-raw-format", "--endian=little",
            "--sign=signed", "-o", dec, out)
    check(d.returncode == 0, name + ": decode " + d.stderr)
    got = open(dec, "rb").read()
    check(len(got) == len(expect_bytes), name + ": %d decoded bytes, want %d"
          % (len(got), len(expect_bytes)))
    if got != expect_bytes:
        n = len(got) // (expect_bits // 8)
        first = next(i for i in range(len(got)) if got[i] != expect_bytes[i])
        check(False, name + ": sample %d differs" % (first // (expect_bits // 8)))


rnd = random.Random(7)
n = FRAMES * CH
s16 = rnd.randbytes(n * 2)
case("s16", "S16_LE", 2, s16, 0, 16, s16)

s24 = rnd.randbytes(n * 3)
case("s24_3", "S24_3LE", 3, s24, 0, 24, s24)

s32 = rnd.randbytes(n * 4)
case("s32", "S32_LE", 4, s32, 0, 32, s32)

# a 24-bit interface in a 32-bit word: low byte zero; stored at 24 bits
s32_24 = bytearray(rnd.randbytes(n * 4))
s32_24[0::4] = bytes(n)
top24 = bytearray(n * 3)
top24[0::3] = s32_24[1::4]
top24[1::3] = s32_24[2::4]
top24[2::3] = s32_24[3::4]
case("s32_at24", "S32_LE", 4, bytes(s32_24), 24, 24, bytes(top24))

# auto (no --bits): the same content is found to be 24-bit and stored at 24
case("s32_auto24", "S32_LE", 4, bytes(s32_24), 0, 24, bytes(top24))

# --bits 32 forces 32 even on 24-bit content
case("s32_forced32", "S32_LE", 4, bytes(s32_24), 32, 32, bytes(s32_24))

# --bits 24 asked for, but the low bits are used: nothing may be cut, 32 bits it is
case("s32_full_asked24", "S32_LE", 4, s32, 24, 32, s32)
print("ok")
