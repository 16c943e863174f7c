"""The integration paths under valgrind: no invalid access, no definite or indirect leak.

Runs the plain build's pirec under memcheck for: send file->file, record from a WAV file,
repair of a torn take, ingest + send over ws:// (both under valgrind, ingest stopped with
SIGTERM), and serve --demo through take, start, stop, release and SIGTERM.
Skipped for the sanitizer build (valgrind cannot run ASan binaries).
"""
import json
import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import time
import urllib.request
import wave

BIN = os.environ["PIREC_BIN"]
TMP = os.environ["TEST_TMP"]

if os.environ.get("PIREC_SAN") == "1":
    print("valgrind cannot run an ASan build: covered by the plain build")
    sys.exit(77)
if not shutil.which("valgrind"):
    print("FAIL: valgrind is not installed (scripts/install-deps.sh --test installs it)")
    sys.exit(1)

VG = ["valgrind", "--quiet", "--error-exitcode=99", "--leak-check=full",
      "--show-leak-kinds=definite,indirect", "--errors-for-leak-kinds=definite,indirect",
      "--track-fds=no", "--num-callers=30"]
failures = []


def vg(name, args):
    log = os.path.join(TMP, f"vg-{name}.log")
    return VG + [f"--log-file={log}", BIN] + args, log


def check_log(name, log, rc):
    text = open(log).read() if os.path.exists(log) else ""
    bad = re.search(r"(Invalid (read|write|free)|uninitialised|definitely lost: [1-9]|"
                    r"indirectly lost: [1-9]|Mismatched free)", text)
    if rc == 99 or bad:
        failures.append(name)
        print(f"--- valgrind found problems in {name} (exit {rc}):")
        print(text[-6000:])
    else:
        print(f"ok: {name} (exit {rc})")


def run(name, args, expect=0, timeout=240):
    cmd, log = vg(name, args)
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if p.returncode not in (expect, 99):
        failures.append(name)
        print(f"--- {name}: exit {p.returncode}, expected {expect}\n{p.stdout}\n{p.stderr}")
    check_log(name, log, p.returncode)
    return p


def wait_for(pred, what, deadline=120.0):
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        time.sleep(0.05)
    raise SystemExit(f"FAIL: timed out waiting for {what}")


def read_port(proc, pattern, lines):
    def grab():
        line = proc.stdout.readline()
        if not line:
            raise SystemExit(f"FAIL: process ended before printing its port: {''.join(lines)}")
        lines.append(line)
        m = re.search(pattern, line)
        return int(m.group(1)) if m else None
    return wait_for(grab, "the listening line")


# --- inputs ----------------------------------------------------------------------------
data = os.urandom(300_000)
src = os.path.join(TMP, "in.bin")
open(src, "wb").write(data)

wav_path = os.path.join(TMP, "in.wav")
with wave.open(wav_path, "wb") as w:
    w.setnchannels(2)
    w.setsampwidth(2)
    w.setframerate(48000)
    frames = bytearray()
    for i in range(48000):
        v = (i * 37) % 20000 - 10000
        frames += struct.pack("<hh", v, -v)
    w.writeframes(bytes(frames))

# --- send file -> file ---------------------------------------------------------------
out = os.path.join(TMP, "out.bin")
run("send-file", ["send", "--quiet", f"file://{src}", f"file://{out}"])
if open(out, "rb").read() != data:
    failures.append("send-file content")

# --- record from a file, then repair a torn copy ----------------------------------------
take = os.path.join(TMP, "take.flac")
run("record-file", ["record", "--source", f"file:{wav_path}", "--out", take,
                    "--min-free-mb", "1"])
if not os.path.exists(take):
    failures.append("record-file produced no file")
else:
    raw = open(take, "rb").read()
    torn = os.path.join(TMP, "torn.flac.part")
    open(torn, "wb").write(raw[: len(raw) * 2 // 3])
    run("repair", ["repair", torn])
    if not os.path.exists(os.path.join(TMP, "torn.flac")):
        failures.append("repair produced no file")

# --- ingest + send over ws:// ---------------------------------------------------------
store = os.path.join(TMP, "store")
cmd, ilog = vg("ingest", ["ingest", "--listen", "127.0.0.1:0", "--dir", store])
ingest = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
try:
    port = read_port(ingest, r"listening on .*:(\d+)", [])
    run("send-ws", ["send", "--quiet", "--give-up", "60", f"file://{src}",
                    f"ws://127.0.0.1:{port}/vg.bin"])
    stored = os.path.join(store, "vg.bin")
    wait_for(lambda: os.path.exists(stored) and os.path.getsize(stored) == len(data),
             "the stream to be stored")
    if open(stored, "rb").read() != data:
        failures.append("send-ws content")
finally:
    ingest.send_signal(signal.SIGTERM)
    try:
        rc = ingest.wait(timeout=120)
    except subprocess.TimeoutExpired:
        ingest.kill()
        rc = ingest.wait()
        failures.append("ingest did not exit on SIGTERM")
    check_log("ingest", ilog, rc)

# --- serve --demo: take, start, stop, release, SIGTERM --------------------------------
rec = os.path.join(TMP, "rec")
state = os.path.join(TMP, "state")
cmd, slog = vg("serve", ["serve", "--demo", "--listen", "127.0.0.1:0",
                         "--recordings", rec, "--state-dir", state])
serve = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
try:
    port = read_port(serve, r"http://[^:/]+:(\d+)/", [])
    base = f"http://127.0.0.1:{port}"

    def get(path):
        with urllib.request.urlopen(base + path, timeout=60) as r:
            return json.loads(r.read())

    tok = get("/api/recording/tone/take")["token"]
    assert get(f"/api/recording/tone/start/{tok}")["state"] is True
    wait_for(lambda: any(d.get("recording") and d.get("elapsed", 0) >= 1.0
                         for d in get("/api/status")["devices"]), "one second of take")
    stop = get(f"/api/recording/tone/stop/{tok}")
    assert stop["state"] is True, stop
    assert get(f"/api/recording/tone/release/{tok}")["state"] is True
finally:
    serve.send_signal(signal.SIGTERM)
    try:
        rc = serve.wait(timeout=120)
    except subprocess.TimeoutExpired:
        serve.kill()
        rc = serve.wait()
        failures.append("serve did not exit on SIGTERM")
    check_log("serve", slog, rc)
    if rc not in (0, 99):
        failures.append(f"serve exit {rc}")

if failures:
    print("FAIL:", ", ".join(failures))
    sys.exit(1)
print("valgrind: every path clean")
