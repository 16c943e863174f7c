#!/usr/bin/python3
"""Reconnect never stalls and never loses silently: `pirec send` through a proxy that breaks
its connections (tests/support/fault_proxy.py) into `pirec ingest`.

The plan: a reset at every byte position of the client's handshake request, the first
control message and the first data frame (c2s 0..C_SWEEP), at every byte of the server's
answer (s2c 0..S_SWEEP), then RANDOM randomized faults (seeded; the seed is printed):
resets deep inside the data, in both directions, and stalls that then continue or reset.
Rounds of `pirec send` (256 KiB each, new name each) run until every planned connection was
used. Each round must end by itself (a stalled link would not) with exit 0 and a byte-exact
file (the resume protocol), and the reconnect watchdog must never have fired.

Then LEGACY_ROUNDS rounds against the legacy peer (tests/support/legacy_peer.py, which
cannot resume and deletes a file on reconnect), one random fault each: a round may fail,
but never silently: exit 0 only with a byte-exact file, exit 1 with the loss in its message.
"""
import os
import random
import subprocess
import sys
import time

from test_ingest_cli import BIN, TMP, Ingest, _procs, check, fail

sys.path.insert(0, os.path.join(os.environ.get("PIREC_SRC", "."), "tests/support"))
from sdk_harness import LegacyPeer, Proxy, cleanup  # noqa: E402
import atexit  # noqa: E402
atexit.register(cleanup)

C_SWEEP = int(os.environ.get("FAULT_C_SWEEP", "360"))
S_SWEEP = int(os.environ.get("FAULT_S_SWEEP", "200"))
RANDOM = int(os.environ.get("FAULT_RANDOM", "220"))
LEGACY_ROUNDS = int(os.environ.get("FAULT_LEGACY_ROUNDS", "40"))
ROUND_BYTES = 256 * 1024


def make_plan(seed):
    rnd = random.Random(seed)
    plan = [["reset", "c2s", n] for n in range(C_SWEEP)]
    plan += [["reset", "s2c", n] for n in range(S_SWEEP)]
    for _ in range(RANDOM):
        d = rnd.choice(["c2s", "c2s", "c2s", "s2c"])
        n = rnd.randrange(0, ROUND_BYTES // 2) if d == "c2s" else rnd.randrange(0, 600)
        k = rnd.random()
        if k < 0.7:
            plan.append(["reset", d, n])
        else:
            plan.append(["stall", d, n, round(rnd.uniform(0.05, 0.4), 2),
                         "continue" if k < 0.85 else "reset"])
    return plan


def main():
    seed = int(os.environ.get("FAULT_SEED", str(int(time.time()))))
    print("fault campaign seed %d (FAULT_SEED=%d reproduces it)" % (seed, seed), flush=True)
    plan = make_plan(seed)
    d = os.path.join(TMP, "ingest")
    os.makedirs(d)
    ing = Ingest(d)
    proxy = Proxy(ing.port, plan)
    rounds = 0
    t0 = time.monotonic()
    while "PLAN DONE" not in proxy.lines():
        rounds += 1
        check(rounds <= 400, "the plan was not used up after 400 rounds")
        data = os.urandom(ROUND_BYTES)
        src = os.path.join(TMP, "src.bin")
        with open(src, "wb") as f:
            f.write(data)
        name = "r%d" % rounds
        cmd = [BIN, "send", "--quiet", "--reconnect-max", "20", "--give-up", "60",
               "file://" + src, "ws://127.0.0.1:%d/%s" % (proxy.port, name)]
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        _procs.append(p)
        try:
            out = p.communicate(timeout=90)[0].decode(errors="replace")
        except subprocess.TimeoutExpired:
            p.kill()
            fail("round %d: pirec send did not finish in 90 s: a stalled link" % rounds)
        check("watchdog" not in out, "round %d: the reconnect watchdog fired:\n%s" % (rounds, out))
        check(p.returncode == 0, "round %d: exit %d:\n%s" % (rounds, p.returncode, out[-3000:]))
        with open(os.path.join(d, name), "rb") as f:
            got = f.read()
        check(got == data, "round %d: the stored file differs (%d of %d bytes): a silent loss"
              % (rounds, len(got), len(data)))
    lines = proxy.lines()
    fired = sum(1 for ln in lines if ln.startswith("FIRED "))
    conns = sum(1 for ln in lines if ln.startswith("CONN "))
    print("fault campaign: %d planned faults, %d fired, %d connections, %d rounds, %.1f s, "
          "no stall, no silent loss" % (len(plan), fired, conns, rounds, time.monotonic() - t0))
    check(fired >= 200, "only %d faults fired" % fired)
    legacy_rounds(random.Random(seed + 1))


def legacy_rounds(rnd):
    d = os.path.join(TMP, "legacy")
    peer = LegacyPeer(d)
    failed = fired = 0
    for i in range(LEGACY_ROUNDS):
        k = rnd.random()
        if k < 0.6:
            fault = ["reset", "c2s", rnd.randrange(0, ROUND_BYTES + 4096)]
        elif k < 0.8:
            fault = ["reset", "s2c", rnd.randrange(0, 200)]
        else:
            fault = ["stall", "c2s", rnd.randrange(0, ROUND_BYTES), 0.3,
                     rnd.choice(["continue", "reset"])]
        proxy = Proxy(peer.port, [fault], tag="legacy%d" % i)
        data = os.urandom(ROUND_BYTES)
        src = os.path.join(TMP, "lsrc.bin")
        with open(src, "wb") as f:
            f.write(data)
        name = "l%d" % i
        p = subprocess.Popen([BIN, "send", "--quiet", "--reconnect-max", "20", "--give-up", "30",
                              "file://" + src, "ws://127.0.0.1:%d/%s" % (proxy.port, name)],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        _procs.append(p)
        try:
            out = p.communicate(timeout=90)[0].decode(errors="replace")
        except subprocess.TimeoutExpired:
            p.kill()
            fail("legacy round %d (%r): pirec send did not finish: a stalled link" % (i, fault))
        proxy.proc.kill()
        fired += any(ln.startswith("FIRED") for ln in proxy.lines())
        # the peer may still be writing what it received: wait for its connections to end
        end = time.monotonic() + 20
        while peer.count("CLOSED") < peer.count("CONN") and time.monotonic() < end:
            time.sleep(0.02)
        path = os.path.join(d, name)
        got = open(path, "rb").read() if os.path.exists(path) else b""
        check("watchdog" not in out, "legacy round %d: the watchdog fired:\n%s" % (i, out))
        if p.returncode == 0:
            check(got == data, "legacy round %d (%r): exit 0 but the file has %d of %d bytes "
                  "or differs: a SILENT loss" % (i, fault, len(got), len(data)))
        else:
            failed += 1
            check(p.returncode == 1 and "not delivered" in out,
                  "legacy round %d (%r): exit %d without saying what was lost:\n%s"
                  % (i, fault, p.returncode, out[-2000:]))
    peer.stop()
    print("legacy rounds: %d, %d faults fired, %d reported a loss (exit 1), none silent"
          % (LEGACY_ROUNDS, fired, failed))


main()
