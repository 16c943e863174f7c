#!/usr/bin/python3
"""`pirec serve` finalizes at start the takes a crash or power cut left unfinished: a torn
"x.flac.part" in the recordings folder becomes "x.flac" that passes `flac -t`, holds every
whole frame, and is listed by the API; a take killed right after a split (header only, no
audio) is removed rather than failing at every start; a damaged file that is not FLAC is
left untouched."""
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_serve_common import BIN, TMP, Server, check  # noqa: E402

rec = os.path.join(TMP, "repair", "rec")
os.makedirs(rec)

# a real take, cut off mid-frame as a power cut would leave it
whole = os.path.join(TMP, "whole.flac")
r = subprocess.run([BIN, "record", "--source", "tone", "--seconds", "1", "--out", whole,
                    "--min-free-mb", "1"], capture_output=True, text=True)
check(r.returncode == 0, "pirec record: %s" % r.stderr)
raw = open(whole, "rb").read()
torn = os.path.join(rec, "tone_crashed.flac.part")
open(torn, "wb").write(raw[: len(raw) * 3 // 4])
# SIGKILL just after a split: the next file holds its metadata and no frame
meta_end = 4
while True:
    h = raw[meta_end:meta_end + 4]
    meta_end += 4 + int.from_bytes(h[1:4], "big")
    if h[0] & 0x80:
        break
header_only = os.path.join(rec, "tone_split_002.flac.part")
open(header_only, "wb").write(raw[:meta_end])
junk = os.path.join(rec, "junk.flac.part")
open(junk, "wb").write(b"not a flac file at all")

srv = Server("repair", demo=True)
try:
    fixed = os.path.join(rec, "tone_crashed.flac")
    check(os.path.exists(fixed) and not os.path.exists(torn),
          "the torn take was finalized at start: %r" % os.listdir(rec))
    t = subprocess.run(["flac", "-t", "-s", fixed], capture_output=True, text=True)
    check(t.returncode == 0, "flac -t passes on the repaired take: %s" % t.stderr)
    samples = subprocess.run(["metaflac", "--show-total-samples", fixed], capture_output=True,
                             text=True).stdout.strip()
    check(samples.isdigit() and int(samples) > 0, "STREAMINFO holds the length: %r" % samples)
    check(open(junk, "rb").read() == b"not a flac file at all", "a non-FLAC .part is untouched")
    check(not os.path.exists(header_only) and
          not os.path.exists(os.path.join(rec, "tone_split_002.flac")),
          "the header-only take was removed at start: %r" % os.listdir(rec))
    st, lst = srv.json("GET", "/api/recordings", expect=200)
    names = [x["name"] for x in lst["recordings"]]
    check("tone_crashed.flac" in names, "the repaired take is listed: %r" % names)
    check(not any(n.startswith("tone_split_002") for n in names),
          "no empty take is listed: %r" % names)
finally:
    rc = srv.stop()
check(rc == 0, "serve exits 0 (got %r)" % rc)
print("ok: torn take finalized at start, empty take removed, junk left alone")
