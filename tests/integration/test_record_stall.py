"""A disk that stalls longer than the capture ring holds (PIREC_TEST_DISK_STALL_MS: the
take's disk thread sleeps 4 s before its first fdatasync, the ring of `pirec record`
holds 3 s): the encoder keeps reading the ring into its queue of encoded blocks, so no
frame is lost, and the file is complete and exactly as long as asked.
--bits 32: the tone uses all 32 bits, and a depth switch (like a split) still waits for
the previous file's queue to reach the disk (a known limit, see docs/takes.md)."""
import os, subprocess, sys

BIN = os.environ["PIREC_BIN"]
TMP = os.environ["TEST_TMP"]
RATE, SECS, STALL_MS = 192000, 6, 4000


def check(cond, msg):
    if not cond:
        print("FAIL:", msg)
        sys.exit(1)


out = os.path.join(TMP, "stall.flac")
env = dict(os.environ, PIREC_TEST_DISK_STALL_MS=str(STALL_MS))
r = subprocess.run([BIN, "record", "--source", "tone", "--format", "S32_LE", "--rate", str(RATE),
                    "--channels", "2", "--bits", "32", "--seconds", str(SECS), "--out", out, "--min-free-mb", "1",
                    "--flush-ms", "500"], capture_output=True, text=True, timeout=120, env=env)
print(r.returncode, r.stdout, r.stderr[-2000:])
check(r.returncode == 0, "pirec record reported a loss or failure")
check("LOST" not in r.stderr, "frames were lost during the disk stall")
check(os.path.exists(out) and not os.path.exists(out + ".part"), "no final file")
t = subprocess.run(["flac", "-t", "-s", out], capture_output=True, text=True)
check(t.returncode == 0, "flac -t: " + t.stderr)
m = subprocess.run(["metaflac", "--show-total-samples", "--show-md5sum", out],
                   capture_output=True, text=True).stdout.split()
check(m[0] == str(RATE * SECS), "total samples %s, want %d" % (m[0], RATE * SECS))
check(m[1] != "0" * 32, "no MD5 in a finalized file")
print("ok")
