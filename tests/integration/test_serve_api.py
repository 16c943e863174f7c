#!/usr/bin/python3
"""pirec serve over real HTTP: every control route and its errors (GET with the token in the
path as the original, POST + Bearer), recordings list / download (full, Range 206, 416) /
delete, tokens checked with PyJWT and forgeries refused, two racing takes, and path
traversal on the page, downloads and deletes."""
import base64
import hashlib
import hmac
import json
import os
import shutil
import stat
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_serve_common import Server, check, fail, wait_for  # noqa: E402

try:
    import jwt  # PyJWT
except ImportError:
    jwt = None


def b64(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def forge(header, claims, key, alg="sha256"):
    h = b64(json.dumps(header).encode())
    c = b64(json.dumps(claims).encode())
    if key is None:
        return h + "." + c + "."
    sig = hmac.new(key, (h + "." + c).encode(), getattr(hashlib, alg)).digest()
    return h + "." + c + "." + b64(sig)


def control_routes(srv):
    # unknown device
    st, obj = srv.json("GET", "/api/recording/nosuch/take", expect=404)
    check(obj.get("state") is False and obj.get("token") == "", "404 body %r" % obj)
    tok = srv.take("tone", "alice")
    # held by another: 409 says by whom
    st, obj = srv.json("GET", "/api/recording/tone/take?client=bob", expect=409)
    check(obj.get("state") is False and obj.get("token") == "", "409 body %r" % obj)
    check(obj.get("holder") == "alice", "409 names the holder: %r" % obj)
    # stop before start: 409 not recording
    srv.json("GET", "/api/recording/tone/stop/" + tok, expect=409)
    # start with the token in the path (the original's way)
    st, obj = srv.json("GET", "/api/recording/tone/start/" + tok, expect=200)
    check(obj.get("state") is True and obj.get("file", "").endswith(".flac"), "start %r" % obj)
    name = obj["file"]
    # already recording
    srv.json("GET", "/api/recording/tone/start/" + tok, expect=409)
    # bad tokens: 401 with state false
    for bad in ["x", "a.b.c", tok[:-2] + ("AA" if not tok.endswith("AA") else "BB"), "%00"]:
        st, obj = srv.json("GET", "/api/recording/tone/stop/" + bad)
        # "%00" is refused by the path check (400) before it could be a token
        check(st == (400 if bad == "%00" else 401), "bad token %r: status %d" % (bad, st))
        check(obj.get("state") is False, "bad token body %r" % obj)
    # renew: old token stops working
    st, obj = srv.json("GET", "/api/recording/tone/renew/" + tok, expect=200)
    new = obj.get("token")
    check(obj.get("state") is True and new and new != tok, "renew %r" % obj)
    srv.json("GET", "/api/recording/tone/stop/" + tok, expect=401)
    # POST + Bearer
    st, obj = srv.json("POST", "/api/recording/tone/stop",
                       headers={"Authorization": "Bearer " + new}, expect=200)
    check(obj.get("state") is True and obj.get("lost_frames") == 0, "stop %r" % obj)
    # a device that is not recording
    srv.json("POST", "/api/recording/tone/stop", headers={"Authorization": "Bearer " + new},
             expect=409)
    # missing token
    srv.json("POST", "/api/recording/tone/start", expect=401)
    # release, then the token is dead and anyone may take
    srv.json("GET", "/api/recording/tone/release/" + new, expect=200)
    srv.json("GET", "/api/recording/tone/release/" + new, expect=401)
    tok2 = srv.take("tone", "bob")
    srv.json("GET", "/api/recording/tone/release/" + tok2, expect=200)
    # wrong methods
    st, h, _ = srv.request("PUT", "/api/recording/tone/take")
    check(st == 405 and "allow" in h, "PUT take: %d %r" % (st, h))
    return name, new


def tokens(srv):
    if jwt is None:
        print("PyJWT missing: token cross-checks skipped")
        return
    key_path = os.path.join(srv.state, "jwt.key")
    mode = stat.S_IMODE(os.stat(key_path).st_mode)
    check(mode == 0o600, "jwt.key mode %o" % mode)
    key = open(key_path, "rb").read()
    tok = srv.take("tone", "carol")
    claims = jwt.decode(tok, key, algorithms=["HS256"])
    check(claims.get("exp", 0) > time.time(), "exp in seconds, in the future: %r" % claims)
    check(claims.get("exp") < time.time() + 3600, "exp is not in milliseconds: %r" % claims)
    hdr = jwt.get_unverified_header(tok)
    check(hdr.get("alg") == "HS256", "alg %r" % hdr)
    now = int(time.time())
    forged = {
        "wrong secret": jwt.encode(dict(claims), b"x" * 32, algorithm="HS256"),
        "HS512": jwt.encode(dict(claims), key, algorithm="HS512"),
        "alg none": forge({"alg": "none", "typ": "JWT"}, claims, None),
        "expired": jwt.encode(dict(claims, exp=now - 10), key, algorithm="HS256"),
        "other device": jwt.encode(dict(claims, dev="other", hw="other"), key, algorithm="HS256"),
        "no exp": jwt.encode({k: v for k, v in claims.items() if k != "exp"}, key,
                             algorithm="HS256"),
    }
    for what, t in forged.items():
        st, obj = srv.json("GET", "/api/recording/tone/start/" + t)
        check(st == 401, "%s token: status %d %r" % (what, st, obj))
        st, obj = srv.json("POST", "/api/recording/tone/renew",
                           headers={"Authorization": "Bearer " + t})
        check(st == 401, "%s token (Bearer): status %d" % (what, st))
    # the genuine one still works
    srv.json("GET", "/api/recording/tone/release/" + tok, expect=200)


def race(srv):
    res = []
    barrier = threading.Barrier(2)

    def one(cl):
        barrier.wait()
        st, obj = srv.json("GET", "/api/recording/tone/take?client=" + cl)
        res.append((st, obj))

    ts = [threading.Thread(target=one, args=("r%d" % i,)) for i in range(2)]
    [t.start() for t in ts]
    [t.join() for t in ts]
    codes = sorted(st for st, _ in res)
    check(codes == [200, 409], "racing takes gave %r" % codes)
    tok = [o["token"] for st, o in res if st == 200][0]
    srv.json("GET", "/api/recording/tone/release/" + tok, expect=200)


def recordings(srv, name, any_token):
    st, obj = srv.json("GET", "/api/recordings", expect=200)
    names = [r.get("name") for r in obj.get("recordings", [])]
    check(name in names, "%s listed in %r" % (name, names))
    path = os.path.join(srv.rec, name)
    whole = open(path, "rb").read()
    st, h, body = srv.request("GET", "/api/recordings/" + name)
    check(st == 200 and body == whole, "full download: %d, %d of %d bytes" % (st, len(body), len(whole)))
    check(h.get("content-type") == "audio/flac", "content-type %r" % h.get("content-type"))
    check("attachment" in h.get("content-disposition", ""), "disposition %r" % h)
    check(h.get("accept-ranges") == "bytes", "accept-ranges %r" % h)
    dl = os.path.join(srv.dir, "dl.flac")
    open(dl, "wb").write(body)
    if shutil.which("flac"):
        r = subprocess.run(["flac", "-t", "-s", dl], capture_output=True)
        check(r.returncode == 0, "flac -t on the download: %s" % r.stderr.decode(errors="replace"))
    n = len(whole)
    for rng, lo, hi in [("bytes=0-3", 0, 3), ("bytes=4-", 4, n - 1), ("bytes=-10", n - 10, n - 1),
                        ("bytes=%d-%d" % (n - 5, n + 100), n - 5, n - 1)]:
        st, h, body = srv.request("GET", "/api/recordings/" + name, headers={"Range": rng})
        check(st == 206, "%s: status %d" % (rng, st))
        check(body == whole[lo:hi + 1], "%s: bytes differ" % rng)
        check(h.get("content-range") == "bytes %d-%d/%d" % (lo, hi, n), "%s: %r" % (rng, h))
    st, h, body = srv.request("GET", "/api/recordings/" + name, headers={"Range": "bytes=%d-" % n})
    check(st == 416 and h.get("content-range") == "bytes */%d" % n, "416: %d %r" % (st, h))
    # errors
    srv.json("GET", "/api/recordings/nope.flac", expect=404)
    srv.json("GET", "/api/recordings/notflac.txt", expect=400)
    # delete needs a valid token of some device
    srv.json("DELETE", "/api/recordings/" + name, expect=401)
    srv.json("DELETE", "/api/recordings/" + name + "?token=" + any_token, expect=401)  # released
    tok = srv.take("tone", "deleter")
    srv.json("DELETE", "/api/recordings/nope.flac", headers={"Authorization": "Bearer " + tok},
             expect=404)
    srv.json("DELETE", "/api/recordings/" + name, headers={"Authorization": "Bearer " + tok},
             expect=200)
    check(not os.path.exists(path), "deleted file is gone")
    srv.json("GET", "/api/recordings/" + name, expect=404)
    return tok


def traversal(srv, tok):
    secret = os.path.join(srv.state, "jwt.key")
    key = open(secret, "rb").read()
    outside = os.path.join(srv.dir, "outside.flac")
    open(outside, "wb").write(b"fLaC-not-for-you")
    victims = [
        "/../state/jwt.key", "/api/recordings/../state/jwt.key",
        "/api/recordings/../outside.flac", "/api/recordings/..%2foutside.flac",
        "/api/recordings/%2e%2e%2foutside.flac", "/api/recordings/%2e%2e/outside.flac",
        "/%2e%2e/%2e%2e/etc/passwd", "/....//....//etc/passwd", "/api/recordings/....//outside.flac",
        "/api/recordings/..\\outside.flac", "/api/recordings/%5c..%5coutside.flac",
        "/api/recordings/" + outside, "/api/recordings/%2f" + outside.lstrip("/"),
        "/" + secret, "//" + secret.lstrip("/"), "/api/recordings/x.flac%00.txt",
        "/index.html/../../state/jwt.key", "/app.js%00", "/api/status/..",
    ]
    for v in victims:
        for method in ("GET", "DELETE"):
            req = "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nAuthorization: Bearer %s\r\n\r\n" % (
                method, v, tok)
            st, out = srv.raw(req.encode())
            check(st in (400, 404, 405), "%s %s: status %d" % (method, v, st))
            check(key not in out and b"root:" not in out and b"not-for-you" not in out,
                  "%s %s leaked bytes" % (method, v))
    check(os.path.exists(outside) and os.path.exists(secret), "nothing outside was deleted")
    # over-long things
    st, obj = srv.json("GET", "/api/recording/" + "a" * 300 + "/take")
    check(st in (400, 404, 414), "long id: %d" % st)
    st, obj = srv.json("GET", "/api/recording/tone/stop/" + "a" * 5000)
    check(st in (400, 401, 414, 431), "long token: %d" % st)
    st, h, _ = srv.request("POST", "/api/recording/tone/take", body=b"x" * 100000)
    check(st == 413, "big body: %d" % st)


def page(srv):
    st, h, body = srv.request("GET", "/")
    check(st == 200 and b"<" in body, "page: %d" % st)
    check(h.get("content-type", "").startswith("text/html"), "page type %r" % h)
    check("default-src 'self'" in h.get("content-security-policy", ""), "CSP %r" % h)
    check(h.get("x-content-type-options") == "nosniff", "nosniff %r" % h)
    st, h, body = srv.request("GET", "/api/status")
    check(h.get("cache-control") == "no-store", "api cache-control %r" % h)
    st, obj = srv.json("GET", "/no-such-file.js", expect=404)
    st, obj = srv.json("GET", "/api/nope", expect=404)


def long_client_name(srv, held):
    """40 x "é" from the page's own name field (80 bytes) once made take answer 500: the
    label was cut at 63 bytes in the middle of a character."""
    srv.json("GET", "/api/recording/tone/release/" + held, expect=200)
    name = "%C3%A9" * 40
    st, obj = srv.json("GET", "/api/recording/tone/take?client=" + name, expect=200)
    check(obj["holder"] == "\u00e9" * 31, "holder cut on a character: %r" % obj["holder"])
    srv.json("GET", "/api/recording/tone/release/" + obj["token"], expect=200)


def main():
    srv = Server("api")
    try:
        page(srv)
        name, old = control_routes(srv)
        tokens(srv)
        race(srv)
        tok = recordings(srv, name, old)
        traversal(srv, tok)
        long_client_name(srv, tok)
        check(srv.p.poll() is None, "server still running")
    finally:
        rc = srv.stop()
    check(rc == 0, "exit %d; stderr:\n%s" % (rc, srv.stderr()))
    print("ok")


if __name__ == "__main__":
    main()
