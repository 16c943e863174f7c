#!/usr/bin/python3
"""wss:// forwarding with [forward] ca_file and pin (the semantics of record_set_tls and
pirec send --ca-file/--pin), to a `pirec ingest` behind a TLS-terminating proxy with a
certificate for "localhost" made here by a private CA:
- the right CA: the copy completes, byte-identical to the local take;
- the right CA and the right pin: the same;
- another CA, or a wrong pin: the copy is not sent; the status says not connected and why
  ("certificate verify failed", "does not match the pinned"), the local take is whole and
  the ingest got nothing;
- a bad ca_file or pin in the config: serve refuses to start and says which line and why."""
import os
import socket
import ssl
import subprocess
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from forward_support import (TMP, Ingest, Server, check, check_copy, forward_entry,  # noqa
                             record, remote_path, wait_complete, wait_for, RECORDER)
from test_serve_common import BIN  # noqa: E402

sys.path.insert(0, os.path.join(os.environ.get("PIREC_SRC", "."), "tests/support"))
from test_pki import make_ca, make_server_cert  # noqa: E402

DEVICE = "[device hi]\npcm = tone\nformat = S16_LE\nrate = 48000\nchannels = 2\n"


class TlsProxy:
    """Accepts TLS on a loopback port and relays the plain bytes to upstream_port."""

    def __init__(self, upstream_port, cert, key):
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(cert, key)
        self.upstream = upstream_port
        self.ls = socket.socket()
        self.ls.bind(("127.0.0.1", 0))
        self.ls.listen(16)
        self.port = self.ls.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.ls.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c):
        try:
            t = self.ctx.wrap_socket(c, server_side=True)
        except (OSError, ssl.SSLError):
            c.close()   # the client refused our certificate
            return
        try:
            u = socket.create_connection(("127.0.0.1", self.upstream), timeout=5)
        except OSError:
            t.close()
            return
        threading.Thread(target=self._pump, args=(t, u), daemon=True).start()
        self._pump(u, t)

    @staticmethod
    def _pump(src, dst):
        try:
            while True:
                b = src.recv(65536)
                if not b:
                    break
                dst.sendall(b)
        except (OSError, ssl.SSLError):
            pass
        for s in (src, dst):
            try:
                s.close()
            except OSError:
                pass


def cfg(name, url, extra):
    path = os.path.join(TMP, name + ".ini")
    with open(path, "w") as f:
        f.write("[forward]\nurl = %s\nrecorder = %s\n%s\n%s" % (url, RECORDER, extra, DEVICE))
    return path


def main():
    ca_key, ca = make_ca(TMP, "fwd-ca")
    _, other_ca = make_ca(TMP, "fwd-other-ca")
    key, crt, pin = make_server_cert(TMP, "fsrv", ca_key, ca)
    not_pem = os.path.join(TMP, "not-a-certificate.txt")   # a file that holds no certificate
    with open(not_pem, "w") as f:
        f.write("subjectAltName=DNS:localhost\n")

    idir = os.path.join(TMP, "ingest-tls")
    ing = Ingest(idir)
    proxy = TlsProxy(ing.port, crt, key)
    url = "wss://localhost:%d/" % proxy.port

    def good(name, extra):
        srv = Server(name, demo=False, config=cfg(name, url, extra))
        try:
            file = record(srv, lambda e: e and e["remote_bytes"] > 100000, dev="hi")
            wait_complete(srv, file)
            check_copy(os.path.join(srv.rec, file), remote_path(idir, file, "hi"))
        finally:
            rc = srv.stop()
        check(rc == 0, "pirec serve exit %d" % rc)

    good("tls-ca", "ca_file = %s" % ca)
    good("tls-pin", "ca_file = %s\npin = sha256:%s" % (ca, pin))

    def refused(name, extra, why):
        srv = Server(name, demo=False, config=cfg(name, url, extra))
        try:
            e = {}

            def seen(x):
                e["x"] = x
                return x and x["local_bytes"] > 100000 and why in x.get("error", "")
            file = record(srv, seen, dev="hi")
            x = forward_entry(srv, file)
            print("%s: %r" % (name, x))
            check(x["state"] == "sending" and not x["connected"] and x["remote_bytes"] == 0,
                  "nothing forwarded: %r" % x)
            check(why in x.get("error", ""), "the status says why: %r" % x)
            local = os.path.join(srv.rec, file)
            check(subprocess.run(["flac", "-t", "-s", local]).returncode == 0,
                  "the local take is whole: flac -t " + local)
            check(not os.path.exists(remote_path(idir, file, "hi")), "nothing at the ingest")
        finally:
            rc = srv.stop()
        check(rc == 0, "pirec serve exit %d" % rc)
        log = srv.stderr()
        check(why in log, "the log says why (%r):\n%s" % (why, log[-1500:]))

    refused("tls-other-ca", "ca_file = %s" % other_ca, "certificate verify failed")
    refused("tls-bad-pin", "ca_file = %s\npin = %s" % (ca, "00" * 32),
            "does not match the pinned")

    # mistakes in the config: serve refuses to start, naming the line
    for extra, want in (("ca_file = %s" % os.path.join(TMP, "missing.pem"), "does not exist"),
                        ("ca_file = %s" % not_pem, "holds no PEM certificate"),
                        ("pin = xyz", "is not 64 hex digits")):
        path = cfg("tls-bad", url, extra)
        r = subprocess.run([BIN, "serve", "--listen", "127.0.0.1:0", "--config", path,
                            "--recordings", os.path.join(TMP, "badrec"), "--state-dir",
                            os.path.join(TMP, "badstate")],
                           capture_output=True, text=True, timeout=30)
        out = r.stdout + r.stderr
        check(r.returncode != 0 and want in out and ":4:" in out,
              "config %r: exit %d, %s" % (extra, r.returncode, out))
        print("refused:", out.strip().splitlines()[-1])
    print("ok")


main()
