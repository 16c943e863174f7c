#!/usr/bin/python3
"""One source grammar for `pirec record --source` and `pirec serve`'s `pcm =`
(docs/audio.md "Sources"):
- `record --source file:P?fail_at=N` and the deprecated `--source file:P --fail-at-frame N`
  both stop the take at exactly N frames;
- a bad spec gets the same worded message from both commands (record: exit 2; serve: the
  config's file and line, exit 2), and a file-source flag on a tone is refused;
- a number option out of range names the option and its range."""
import os
import struct
import subprocess
import sys
import wave

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_serve_common import BIN, TMP, check  # noqa: E402

RATE = 48000


def run(*args):
    r = subprocess.run([BIN, *args], capture_output=True, text=True, timeout=60)
    print(args[:5], r.returncode, "|", r.stderr.strip()[-300:])
    return r


def samples(path):
    return int(subprocess.run(["metaflac", "--show-total-samples", path], capture_output=True,
                              text=True).stdout)


src = os.path.join(TMP, "ramp.wav")
with wave.open(src, "wb") as w:
    w.setnchannels(2)
    w.setsampwidth(2)
    w.setframerate(RATE)
    w.writeframes(b"".join(struct.pack("<hh", i % 32768, -(i % 32768)) for i in range(RATE * 2)))

# the same test hook, both spellings
for label, args in (("spec", ["--source", "file:%s?fail_at=30000" % src]),
                    ("deprecated", ["--source", "file:" + src, "--fail-at-frame", "30000"])):
    out = os.path.join(TMP, label + ".flac")
    r = run("record", *args, "--out", out, "--min-free-mb", "1")
    check(r.returncode == 1 and "went away" in r.stderr, "%s: exit %d" % (label, r.returncode))
    check(samples(out) == 30000, "%s: %d samples, want 30000" % (label, samples(out)))

# bad specs: worded, and the same words from serve's config
BAD = (("file:%s?speed=2" % src, "unknown option 'speed'"),
       ("file:%s?fail_at=lots" % src, "fail_at must be a whole number"),
       ("file:", "needs a path"),
       ("file:%s?stall_at=5" % src, "stall_at and stall_ms go together"))
for spec, says in BAD:
    r = run("record", "--source", spec, "--out", os.path.join(TMP, "bad.flac"))
    check(r.returncode == 2 and says in r.stderr, "record --source %s: %d %s"
          % (spec, r.returncode, r.stderr))
    cfg = os.path.join(TMP, "bad.ini")
    with open(cfg, "w") as f:
        f.write("[device a]\npcm = %s\n" % spec)
    r = run("serve", "--config", cfg, "--listen", "127.0.0.1:0", "--recordings",
            os.path.join(TMP, "rec"), "--state-dir", os.path.join(TMP, "state"))
    check(r.returncode == 2 and says in r.stderr and "bad.ini:2" in r.stderr,
          "serve pcm = %s: %d %s" % (spec, r.returncode, r.stderr))
check(not os.path.exists(os.path.join(TMP, "bad.flac")), "a bad spec wrote a file")

r = run("record", "--source", "tone", "--fail-at-frame", "5", "--seconds", "1", "--dir", TMP)
check(r.returncode == 2 and "--fail-at-frame is an option of a file source" in r.stderr,
      "file flag on a tone: %d" % r.returncode)
r = run("record", "--source", "tone", "--rate", "12", "--seconds", "1", "--dir", TMP)
check(r.returncode == 2 and "--rate must be a whole number 1000..768000, not '12'" in r.stderr,
      "rate message")
r = run("record", "--source", "tone", "--seconds", "1.5s", "--dir", TMP)
check(r.returncode == 2 and "--seconds must be a number" in r.stderr, "seconds message")
print("ok")
