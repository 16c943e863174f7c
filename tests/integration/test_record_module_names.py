#!/usr/bin/python3
"""Contract test of the stream name rule (src/record/wsproto.c), driven through both ends
with one table: the client (`pirec send ... ws://host/NAME`, i.e. record_register) and the
server (`pirec ingest`, a raw WebSocket message NAME NUL DATA). A name is accepted by both
or refused by both, and both refusals name the same rule (the server with close 1008).
Names a URL cannot carry (NUL, '/', control characters) are checked at the server only;
the client refuses them before the name rule (the URL grammar)."""
import os
import subprocess

from test_ingest_cli import BIN, TMP, Ingest, RawWS, check, wait_file

# (name, rule text both ends must give, or None when the name is fine; in a URL?)
TABLE = [
    ("über_♫_take".encode(), None, True),          # UTF-8, which the original accepts
    (b"n" * 255, None, True),
    (b"mic.pcm", None, True),
    (b"", "empty name", False),
    (b".", "starts with '.'", True),
    (b"..", "starts with '.'", True),
    (b".hidden", "starts with '.'", True),
    (b"mic.losses", "'.losses'", True),
    (b"n" * 256, "longer than 255", True),
    (b"a\xffb", "not valid UTF-8", True),
    (b"a\xc0\xafb", "not valid UTF-8", True),      # an overlong '/'
    (b"a\xed\xa0\x80b", "not valid UTF-8", True),  # a UTF-16 surrogate
    (b"a/b", "contains '/'", False),
    (b"esc\x1b[31m", "control character", False),
    (b"del\x7f", "control character", False),
]


def main():
    d = os.path.join(TMP, "store")
    os.makedirs(d)
    srv = Ingest(d)
    src = os.path.join(TMP, "src")
    with open(src, "wb") as f:
        f.write(b"contract payload")
    for name, rule, in_url in TABLE:
        # the server
        ws = RawWS("127.0.0.1", srv.port, "/")
        ws.frame(2, name + b"\0" + b"con", fin=False)
        ws.frame(0, b"tract payload")
        if rule is None:
            wait_file(os.path.join(d.encode(), name), b"contract payload")
            ws.frame(8, b"\x03\xe8")
            ws.close()
        else:
            code = ws.read_close()
            ws.close()
            check(code == 1008, "server, name %r: close %r, expected 1008" % (name, code))
            srv.wait_log(rule)
        # the client
        if not in_url:
            continue
        url = b"ws://127.0.0.1:%d/%s" % (srv.port, name if rule else b"c_" + name[:250])
        r = subprocess.run([BIN.encode(), b"send", b"--give-up", b"10", b"file://" + src.encode(), url],
                           capture_output=True, timeout=60)
        err = r.stderr.decode(errors="replace")
        if rule is None:
            check(r.returncode == 0, "client, name %r: exit %d: %s" % (name, r.returncode, err))
            wait_file(os.path.join(d.encode(), b"c_" + name[:250]), b"contract payload")
        else:
            check(r.returncode == 2, "client, name %r: exit %d, expected 2 (refused): %s"
                  % (name, r.returncode, err))
            check(rule in err, "client, name %r: message lacks the rule %r: %s" % (name, rule, err))
    print("name contract: %d names, both ends agree" % len(TABLE))


main()
