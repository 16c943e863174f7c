"""A private CA and a "localhost" server certificate made with the openssl command, for the
wss:// tests (pirec send --ca-file/--pin, [forward] ca_file/pin)."""
import os
import subprocess


def sh(cmd):
    """Runs a shell command; raises RuntimeError with its stderr when it fails."""
    r = subprocess.run(cmd, shell=True, capture_output=True, text=True)
    if r.returncode:
        raise RuntimeError("%s: %s" % (cmd, r.stderr))
    return r.stdout


def make_ca(d, name):
    """A self-signed EC CA in d: returns (key path, certificate path)."""
    key, crt = os.path.join(d, name + ".key"), os.path.join(d, name + ".pem")
    sh("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 "
       "-subj /CN=%s -keyout %s -out %s" % (name, key, crt))
    return key, crt


def make_server_cert(d, name, ca_key, ca):
    """A certificate for DNS:localhost signed by the CA: returns (key path, certificate
    path, SPKI SHA-256 pin in hex)."""
    key, csr, crt = (os.path.join(d, name + s) for s in (".key", ".csr", ".pem"))
    ext = os.path.join(d, name + ".ext")
    with open(ext, "w") as f:
        f.write("subjectAltName=DNS:localhost\n")
    sh("openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj /CN=localhost "
       "-keyout %s -out %s" % (key, csr))
    sh("openssl x509 -req -in %s -CA %s -CAkey %s -CAcreateserial -days 2 -extfile %s -out %s"
       % (csr, ca, ca_key, ext, crt))
    pin = sh("openssl x509 -in %s -pubkey -noout | openssl pkey -pubin -outform DER | "
             "openssl dgst -sha256 -r" % crt).split()[0]
    return key, crt, pin
