#!/usr/bin/python3
"""wss:// options of `pirec send` (record_set_tls): --ca-file and --pin, against
tests/support/ws_peer.py serving TLS with a certificate made here by a private CA.

- the right CA: delivered, exit 0;
- a missing CA file, or one that holds no certificate: refused at once with a message;
- another CA: not delivered (exit 1) with "certificate verify failed" and a hint;
- a host name the certificate is not for: "Hostname mismatch" (or the IP variant);
- the right pin (SPKI or whole certificate): delivered; a wrong pin: refused, saying so."""
import hashlib
import os
import subprocess
import sys

from test_ingest_cli import BIN, TMP, _procs, check

SRC = os.environ.get("PIREC_SRC", ".")
sys.path.insert(0, os.path.join(SRC, "tests/support"))
from test_pki import make_ca, make_server_cert, sh  # noqa: E402


def main():
    ca_key, ca = make_ca(TMP, "test-ca")
    _, other_ca = make_ca(TMP, "other-ca")
    key, crt, spki_pin = make_server_cert(TMP, "srv", ca_key, ca)
    not_pem = os.path.join(TMP, "not-a-certificate.txt")   # a file that holds no certificate
    with open(not_pem, "w") as f:
        f.write("subjectAltName=DNS:localhost\n")
    der_path = os.path.join(TMP, "srv.der")
    sh("openssl x509 -in %s -outform DER -out %s" % (crt, der_path))
    with open(der_path, "rb") as f:
        cert_pin = hashlib.sha256(f.read()).hexdigest()
    d = os.path.join(TMP, "peer")
    os.makedirs(d)
    peer = subprocess.Popen([sys.executable, os.path.join(SRC, "tests/support/ws_peer.py"),
                             "--mode", "resume", "--dir", d, "--ssl-cert", crt, "--ssl-key", key],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    _procs.append(peer)
    line = peer.stdout.readline().decode()
    check(line.startswith("PORT "), "ws_peer did not start: %r" % line)
    port = int(line.split()[1])
    data = os.urandom(100000)
    src = os.path.join(TMP, "src")
    with open(src, "wb") as f:
        f.write(data)

    def send(name, host="localhost", extra=()):
        r = subprocess.run([BIN, "send", "--give-up", "3", "--reconnect-max", "200", *extra,
                            "file://" + src, "wss://%s:%d/%s" % (host, port, name)],
                           capture_output=True, text=True, timeout=60)
        return r.returncode, r.stdout + r.stderr

    rc, out = send("good", extra=["--ca-file", ca])
    check(rc == 0, "right CA: exit %d: %s" % (rc, out))
    with open(os.path.join(d, "good"), "rb") as f:
        check(f.read() == data, "right CA: the file differs")

    rc, out = send("x", extra=["--ca-file", os.path.join(TMP, "missing.pem")])
    check(rc == 1 and "cannot be read" in out, "missing CA file: exit %d: %s" % (rc, out))
    rc, out = send("x", extra=["--ca-file", not_pem])
    check(rc == 1 and "holds no PEM certificate" in out, "bad CA file: exit %d: %s" % (rc, out))

    rc, out = send("x", extra=["--ca-file", other_ca])
    check(rc == 1 and "certificate verify failed" in out and "does not vouch" in out,
          "other CA: exit %d: %s" % (rc, out))
    check("lib(0)" not in out, "the unhelpful OpenSSL line is still the message: " + out)
    print("other CA:", [ln for ln in out.splitlines() if "verify failed" in ln][0])

    rc, out = send("x", host="127.0.0.1", extra=["--ca-file", ca])
    check(rc == 1 and "mismatch" in out and "not for this host name" in out,
          "name mismatch: exit %d: %s" % (rc, out))
    print("name mismatch:", [ln for ln in out.splitlines() if "mismatch" in ln][0])

    for i, pin in enumerate((spki_pin, "sha256:" + cert_pin)):
        rc, out = send("pinned%d" % i, extra=["--ca-file", ca, "--pin", pin])
        check(rc == 0, "right pin %s: exit %d: %s" % (pin, rc, out))
    rc, out = send("x", extra=["--ca-file", ca, "--pin", "00" * 32])
    check(rc == 1 and "does not match the pinned" in out, "wrong pin: exit %d: %s" % (rc, out))
    rc, out = send("x", extra=["--pin", "xyz"])
    check(rc == 2 and "64 hex digits" in out, "malformed pin: exit %d: %s" % (rc, out))
    print("tls options: ok")


main()
