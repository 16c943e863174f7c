#!/usr/bin/python3
"""pirec devices --watch on a fake /proc/asound tree: a card is announced once, only when
its capture PCM exists, and its removal once. The rescan period is set to a minute, so
inotify on the tree is what must notice the changes."""
import json, os, select, signal, subprocess, sys, time

bin_ = os.environ["PIREC_BIN"]
tmp = os.environ["TEST_TMP"]
fake = os.path.join(tmp, "asound")
os.makedirs(os.path.join(fake, "card0", "pcm0c"))
with open(os.path.join(fake, "card0", "id"), "w") as f:
    f.write("PCH\n")

proc = subprocess.Popen([bin_, "devices", "--watch", "--json", "--proc", fake,
                         "--interval", "60000"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
buf = b""


def events_until(pred, timeout=15.0):
    """Reads event lines until pred(all events so far) is true or the deadline passes."""
    global buf
    got = []
    deadline = time.monotonic() + timeout
    while not pred(got):
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError("timed out; events so far: %r" % got)
        r, _, _ = select.select([proc.stdout], [], [], left)
        if not r:
            continue
        chunk = os.read(proc.stdout.fileno(), 65536)
        if not chunk:
            raise AssertionError("pirec exited: %s" % proc.stderr.read().decode())
        buf += chunk
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            got.append(json.loads(line))
    return got


try:
    ev = events_until(lambda g: len(g) >= 1)
    assert ev[0]["event"] == "add" and ev[0]["id"] == "pch", ev

    # a USB card appears, its PCM only later
    card = os.path.join(fake, "card1")
    os.makedirs(card)
    with open(os.path.join(card, "id"), "w") as f:
        f.write("USB\n")
    with open(os.path.join(fake, "cards"), "w") as f:
        f.write(" 1 [USB            ]: USB-Audio - Scarlett 2i2 USB\n")
    os.makedirs(os.path.join(card, "pcm0c"))
    ev = events_until(lambda g: len(g) >= 1)
    assert ev == [dict(ev[0])] and ev[0]["event"] == "add", ev
    assert ev[0]["id"] == "usb" and ev[0]["name"] == "Scarlett 2i2 USB", ev
    assert ev[0]["pcm"] == "hw:CARD=USB,DEV=0", ev

    # unplugged
    subprocess.run(["rm", "-rf", card], check=True)
    ev = events_until(lambda g: len(g) >= 1)
    assert len(ev) == 1 and ev[0]["event"] == "remove" and ev[0]["id"] == "usb", ev

    # it comes back: announced again, once
    os.makedirs(os.path.join(card, "pcm0c"))
    with open(os.path.join(card, "id"), "w") as f:
        f.write("USB\n")
    ev = events_until(lambda g: len(g) >= 1)
    assert len(ev) == 1 and ev[0]["event"] == "add" and ev[0]["id"] == "usb", ev

    proc.send_signal(signal.SIGTERM)
    rest, err = proc.communicate(timeout=15)
    assert proc.returncode == 0, (proc.returncode, err)
    # nothing was reported twice
    extra = [json.loads(l) for l in (buf + rest).splitlines() if l.strip()]
    assert extra == [], extra
    print("ok")
finally:
    if proc.poll() is None:
        proc.kill()
        proc.wait()
