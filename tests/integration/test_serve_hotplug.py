#!/usr/bin/python3
"""Hotplug is live in `pirec serve`: a card plugged in (a fake /proc/asound tree whose
card opens as a real-time file source) is announced with `add` once, can be taken and
recorded, and pulling it out during the take finalizes the take and sends `stop`,
`release` and `remove`, in that order; the file is a valid FLAC that holds what was
captured."""
import json
import os
import shutil
import struct
import subprocess
import sys
import wave

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_serve_common import SLOW, TMP, Server, Sse, check, fail, wait_for  # noqa: E402

fake = os.path.join(TMP, "asound")
os.makedirs(fake)

wav_path = os.path.join(TMP, "card.wav")
with wave.open(wav_path, "wb") as w:
    w.setnchannels(2)
    w.setsampwidth(2)
    w.setframerate(48000)
    w.writeframes(b"".join(struct.pack("<hh", (i * 97) % 30000 - 15000, (i * 31) % 8000)
                           for i in range(48000)))

cfg = os.path.join(TMP, "pirec.ini")
with open(cfg, "w") as f:
    f.write("[server]\nproc_asound = %s\npreroll_seconds = 0\n" % fake)

srv = Server("hotplug", demo=False, config=cfg)
sse = Sse(srv.port)
try:
    sse.wait_event("status", timeout=10 * SLOW)
    st, status = srv.json("GET", "/api/status", expect=200)
    check(not any(d["id"] == "usb" for d in status["devices"]), "no card yet: %r" % status)

    # plug in: the card directory first, its capture PCM (with what to open) after
    card = os.path.join(fake, "card1")
    os.makedirs(card)
    with open(os.path.join(card, "id"), "w") as f:
        f.write("USB\n")
    with open(os.path.join(fake, "cards"), "w") as f:
        f.write(" 1 [USB            ]: USB-Audio - Scarlett 2i2 USB\n")
    pcm_dir = os.path.join(card, "pcm0c")
    os.makedirs(pcm_dir + ".tmp")
    with open(os.path.join(pcm_dir + ".tmp", "pirec-caps"), "w") as f:
        f.write("formats: S16_LE\nrates: 48000\nchannels: 2 2\n"
                "pcm: file:%s?realtime=1&loop=1\n" % wav_path)
    os.rename(pcm_dir + ".tmp", pcm_dir)   # the PCM appears whole

    add = sse.wait_event("add", timeout=15 * SLOW)
    check(json.loads(add["data"])["id"] == "usb", "add names the card's id: %r" % add)
    st, status = srv.json("GET", "/api/status", expect=200)
    dev = [d for d in status["devices"] if d["id"] == "usb"]
    check(dev and dev[0]["connected"], "the card is connected in the status: %r" % status)

    tok = srv.take("usb", "pianist")
    srv.json("GET", "/api/recording/usb/start/" + tok, expect=200)

    def elapsed():
        _, s = srv.json("GET", "/api/status", expect=200)
        d = [d for d in s["devices"] if d["id"] == "usb"]
        return d and d[0].get("recording") and d[0].get("elapsed", 0) >= 1.0
    wait_for(elapsed, 15 * SLOW, "one second of the take")

    # unplug during the take
    shutil.rmtree(card)
    sse.wait_event("remove", timeout=15 * SLOW)
    with sse.lock:
        order = [e["event"] for e in sse.events if e.get("event") in ("stop", "release", "remove")]
        stop = [json.loads(e["data"]) for e in sse.events if e.get("event") == "stop"]
    check(order == ["stop", "release", "remove"], "events in order: %r" % order)
    check(stop[0]["id"] == "usb" and stop[0]["reason"] in ("unplugged", "device_gone"),
          "stop says the device went: %r" % stop[0])
    check(stop[0]["seconds"] >= 1.0, "the take holds what was captured: %r" % stop[0])
    check(len(sse.of("add")) == 1, "add was sent once: %r" % sse.of("add"))

    path = os.path.join(srv.rec, stop[0]["file"])
    check(os.path.exists(path), "the take was finalized as %s" % path)
    check(not any(n.endswith(".part") for n in os.listdir(srv.rec)), "no .part left")
    t = subprocess.run(["flac", "-t", "-s", path], capture_output=True, text=True)
    check(t.returncode == 0, "flac -t passes: %s" % t.stderr)

    # the device is gone: control answers 404
    st, obj = srv.json("GET", "/api/recording/usb/take")
    check(st == 404, "take of an unplugged device is 404, got %d %r" % (st, obj))
finally:
    sse.close()
    rc = srv.stop()

check(rc == 0, "serve exits 0 on SIGTERM (got %r)" % rc)
print("ok: hotplug add, take, unplug mid-take -> stop, release, remove; file valid")
