#!/usr/bin/python3
"""The writer falls behind the ring for real, in `pirec serve`: the take's disk thread
stalls 5 s (PIREC_TEST_DISK_STALL_MS) while its queue of encoded blocks holds only 64 KiB
(PIREC_TEST_QUEUE_BYTES; both test-only hooks of src/store/flac_writer.c), so the encoder
waits and the 3 s capture ring (no pre-roll) overruns under it. Then:
- the log says "the writer fell behind the ring";
- the stop answer and the `stop` status event count the lost frames;
- the file passes flac -t and its comments carry PIREC_LOSSES=EVENTS:FRAMES (the same
  count) and PIREC_LOSS=AT+FRAMES@TIME per gap;
- with gap fill (the default) the lost frames are silence at exactly that place, the tone
  right before and after it; with gap_fill = false there is no such silence (the take is
  shorter by the loss), the loss still counted."""
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_serve_common import TMP, Server, check, wait_for  # noqa: E402

RATE = 48000


def config(name, fill):
    path = os.path.join(TMP, name + ".ini")
    with open(path, "w") as f:
        f.write("[server]\npreroll_seconds = 0\nflush_ms = 500\ngap_fill = %s\n"
                "[device w]\npcm = tone\nformat = S16_LE\nrate = %d\nchannels = 2\n"
                % ("true" if fill else "false", RATE))
    return path


def tags(path):
    r = subprocess.run(["metaflac", "--export-tags-to=-", path], capture_output=True, text=True)
    check(r.returncode == 0, "metaflac " + path)
    return r.stdout.splitlines()


def frames_of(path):
    r = subprocess.run(["flac", "-d", "-s", "-c", "--force-raw-format", "--endian=little",
                        "--sign=signed", path], capture_output=True)
    check(r.returncode == 0, "flac -d " + path)
    return r.stdout   # 4 bytes a frame (S16 stereo)


def run(name, fill):
    env = dict(os.environ, PIREC_TEST_DISK_STALL_MS="5000", PIREC_TEST_QUEUE_BYTES="65536")
    saved = dict(os.environ)
    os.environ.update(env)
    try:
        srv = Server(name, demo=False, config=config(name, fill))
    finally:
        os.environ.clear()
        os.environ.update(saved)
    try:
        tok = srv.take("w", "gaptest")
        srv.json("GET", "/api/recording/w/start/%s" % tok, expect=200)
        wait_for(lambda: "the writer fell behind the ring" in srv.stderr(), 60,
                 "the writer to fall behind the ring")
        st, ans = srv.json("GET", "/api/recording/w/stop/%s" % tok, expect=200)
        print("stop answer:", ans)
        lost = ans.get("lost_frames", 0)
        check(lost > RATE // 10, "the stop answer counts the lost frames: %r" % ans)
        path = os.path.join(srv.rec, ans["file"])
    finally:
        rc = srv.stop()
        log = srv.stderr()
    check(rc == 0, "pirec serve exit %d:\n%s" % (rc, log[-2000:]))
    check(subprocess.run(["flac", "-t", "-s", path]).returncode == 0, "flac -t " + path)
    t = tags(path)
    print([x for x in t if x.startswith("PIREC_LOSS")])
    summary = [x for x in t if x.startswith("PIREC_LOSSES=")]
    check(len(summary) == 1, "PIREC_LOSSES in the comments: %r" % t)
    events, total = map(int, summary[0].split("=", 1)[1].split(":"))
    check(events >= 1 and total == lost, "PIREC_LOSSES=%d:%d, the answer said %d"
          % (events, total, lost))
    gaps = [tuple(map(int, re.match(r"PIREC_LOSS=(\d+)\+(\d+)@", x).groups()))
            for x in t if x.startswith("PIREC_LOSS=")]
    check(sum(n for _, n in gaps) == lost, "each gap noted: %r" % gaps)
    pcm = frames_of(path)
    n_frames = len(pcm) // 4
    print("%s: %d frames in the file, %d lost, gaps %r" % (name, n_frames, lost, gaps))
    zero = bytes(4 * 1000)
    if fill:
        for at, n in gaps:
            check(at + n <= n_frames, "gap %d+%d inside the file (%d frames)" % (at, n, n_frames))
            check(pcm[4 * at:4 * (at + n)] == bytes(4 * n), "the gap at %d is silence" % at)
            check(at < 100 or pcm[4 * (at - 100):4 * at] != bytes(400), "tone before the gap")
            check(at + n + 100 > n_frames or pcm[4 * (at + n):4 * (at + n + 100)] != bytes(400),
                  "tone after the gap")
    else:
        check(zero not in pcm, "without gap fill no silence is inserted")


run("gapw-fill", True)
run("gapw-nofill", False)
print("ok")
