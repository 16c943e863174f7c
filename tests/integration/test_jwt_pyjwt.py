#!/usr/bin/python3
"""Lease tokens of `pirec serve` checked by an independent JWT implementation (PyJWT):
our tokens verify under PyJWT with the server's key and carry the documented claims;
tokens PyJWT signs with that key are accepted only when they name the current lease;
alg none, HS512, other-device, superseded and expired tokens are refused with 401."""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_serve_common import Server, check, fail  # noqa: E402

try:
    import jwt
except ImportError:
    fail("PyJWT (python3-jwt) is not installed: run scripts/install-deps.sh --test")


def main():
    srv = Server("jwt")
    try:
        key_path = os.path.join(srv.state, "jwt.key")
        st = os.stat(key_path)
        check(st.st_mode & 0o077 == 0, "jwt.key mode %o is readable by others" % st.st_mode)
        key = open(key_path, "rb").read()
        check(len(key) == 32, "jwt.key has %d bytes" % len(key))

        token = srv.take("tone", "pyjwt")
        hdr = jwt.get_unverified_header(token)
        check(hdr.get("alg") == "HS256", "header %r" % hdr)
        claims = jwt.decode(token, key, algorithms=["HS256"])
        for k in ("dev", "cid", "jti", "iat", "exp"):
            check(k in claims, "claim %s missing: %r" % (k, claims))
        check(claims["dev"] == "tone" and claims["cid"] == "pyjwt", "claims %r" % claims)
        check(isinstance(claims["exp"], int) and claims["exp"] - claims["iat"] == 300,
              "exp must be seconds, lease 300 s: %r" % claims)
        check(abs(claims["exp"] - 300 - time.time()) < 120, "exp not in seconds: %r" % claims)
        check(len(claims["jti"]) == 32 and all(c in "0123456789abcdef" for c in claims["jti"]),
              "jti %r" % claims["jti"])

        def control(action, tok, dev="tone"):
            st_, obj = srv.json("GET", "/api/recording/%s/%s/%s" % (dev, action, tok))
            return st_, obj

        now = int(time.time())
        forged = {
            "alg none": jwt.encode(dict(claims), None, algorithm="none"),
            "HS512 with the right key": jwt.encode(dict(claims), key, algorithm="HS512"),
            "HS256 with another key": jwt.encode(dict(claims), b"x" * 32, algorithm="HS256"),
            "other device": jwt.encode(dict(claims, dev="yeti"), key, algorithm="HS256"),
            "not the current jti": jwt.encode(dict(claims, jti="0" * 32), key, algorithm="HS256"),
            "expired": jwt.encode(dict(claims, exp=now - 5), key, algorithm="HS256"),
            "exp as a float": jwt.encode(dict(claims, exp=float(claims["exp"])), key,
                                         algorithm="HS256"),
        }
        for what, tok in forged.items():
            st_, obj = control("start", tok)
            check(st_ == 401, "%s: start answered %d %r, want 401" % (what, st_, obj))
            check(obj.get("state") is False and obj.get("token") == "", "%s: %r" % (what, obj))

        # PyJWT, signing with the server's key, for the current lease: accepted. This shows
        # both sides agree on the encoding, not just on our own round trip.
        mine = jwt.encode(dict(claims, exp=claims["exp"] - 1), key, algorithm="HS256")
        st_, obj = control("renew", mine)
        check(st_ == 200 and obj.get("state") is True, "PyJWT-signed current token: %d %r" % (st_, obj))
        new = obj["token"]
        check(jwt.decode(new, key, algorithms=["HS256"])["jti"] != claims["jti"],
              "renew must change the jti")
        # The renewed-away token is dead.
        st_, obj = control("start", token)
        check(st_ == 401, "superseded token: %d %r" % (st_, obj))
        st_, obj = control("release", new)
        check(st_ == 200 and obj.get("state") is True, "release: %d %r" % (st_, obj))
    finally:
        rc = srv.stop()
    if rc != 0:
        fail("pirec serve exited with %d:\n%s" % (rc, srv.stderr()))
    print("ok")


if __name__ == "__main__":
    main()
