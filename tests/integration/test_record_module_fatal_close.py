#!/usr/bin/python3
"""A policy close (1008) is fatal for the stream it names, not a reason to reconnect: `pirec
ingest` refuses to write a stream whose name is a directory in its store (close 1008 naming
it). `pirec send` (no --give-up: it would otherwise retry for ever) must end by itself with
exit 1 and a message naming the rule, after one connection, not a reconnect loop; a later
stream to the same server is served normally."""
import os
import subprocess

from test_ingest_cli import BIN, TMP, Ingest, check


def main():
    d = os.path.join(TMP, "store")
    os.makedirs(os.path.join(d, "adir"))
    srv = Ingest(d, env={"PIREC_DEBUG": "1"})
    src = os.path.join(TMP, "src")
    with open(src, "wb") as f:
        f.write(os.urandom(100000))
    try:
        r = subprocess.run([BIN, "send", "file://" + src, srv.url("/adir")],
                           capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        check(False, "pirec send kept retrying after a 1008 close (no --give-up given)")
    check(r.returncode == 1, "exit %d after a fatal close:\n%s" % (r.returncode, r.stderr))
    check("refused it with close 1008" in r.stderr and "not retrying" in r.stderr,
          "the message does not say the server refused the stream:\n" + r.stderr)
    check("directory" in r.stderr, "the message does not name the rule:\n" + r.stderr)
    opened = srv.log().count("(legacy)") + srv.log().count("(pirec.resume.1)")
    check(opened <= 2, "%d connections for one refused stream: a reconnect loop\n%s"
          % (opened, srv.log()[-3000:]))
    r = subprocess.run([BIN, "send", "file://" + src, srv.url("/fine")],
                       capture_output=True, text=True, timeout=60)
    check(r.returncode == 0, "a good stream failed afterwards: %s" % r.stderr)
    print("fatal close: ok (%d connection(s))" % opened)


main()
