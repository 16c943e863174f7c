#!/usr/bin/python3
"""Every refusal backs off: `pirec ingest` with a full disk (PIREC_INGEST_FAULT_ENOSPC_AFTER=0)
accepts each connection and closes it with 1011 at the first write. `pirec send` must wait
ever longer between attempts (it used to come back every ~150 ms for ever). The waits are
read from its debug log ("next attempt in N ms"), i.e. the values it chose, not timings."""
import os
import re
import signal
import subprocess
import time

from test_ingest_cli import BIN, TMP, Ingest, _procs, check, fail


def main():
    d = os.path.join(TMP, "store")
    os.makedirs(d)
    ing = Ingest(d, env={"PIREC_INGEST_FAULT_ENOSPC_AFTER": "0"})
    src = os.path.join(TMP, "src")
    with open(src, "wb") as f:
        f.write(os.urandom(50000))
    log = os.path.join(TMP, "send.log")
    env = dict(os.environ, PIREC_DEBUG="1")
    p = subprocess.Popen([BIN, "send", "file://" + src, ing.url("/full")], env=env,
                         stdout=subprocess.DEVNULL, stderr=open(log, "wb"))
    _procs.append(p)
    waits = []
    end = time.monotonic() + 60
    while len(waits) < 6 and time.monotonic() < end and p.poll() is None:
        time.sleep(0.1)
        with open(log, "rb") as f:
            text = f.read().decode(errors="replace")
        waits = [int(m) for m in re.findall(r"next attempt in (\d+) ms", text)]
    p.send_signal(signal.SIGINT)
    try:
        rc = p.wait(30)
    except subprocess.TimeoutExpired:
        fail("pirec send did not stop on SIGINT")
    check(len(waits) >= 6, "only %d retries seen: %r" % (len(waits), waits))
    check("1011" in text, "the refusals (close 1011) were not logged:\n" + text[-2000:])
    check(rc == 1, "interrupted pirec send exit %d" % rc)
    # backoff d = 200 ms * 2^k (cap 5 s), each wait jittered in [d/2, d]
    for k, w in enumerate(waits[:6]):
        lo = min(200 << k, 5000) // 2
        check(w >= lo, "attempt %d waited %d ms, less than %d: no growing backoff (%r)"
              % (k + 1, w, lo, waits))
    print("backoff waits (ms):", waits[:6])


main()
