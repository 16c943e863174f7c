#!/usr/bin/python3
"""The page's files from the real `pirec serve` (docs/api.md "The page's files"): the manifest
and icons are served; a strong ETag and 304 on If-None-Match; gzip when Accept-Encoding allows
it (a valid gzip of the very bytes, its own ETag, Vary), identity otherwise; the CSP stays."""
import gzip
import hashlib
import json
import os

from test_serve_common import Server, check

SRC = os.environ.get("PIREC_SRC", ".")
FILES = {"/": ("index.html", "text/html"), "/app.js": ("app.js", "text/javascript"),
         "/style.css": ("style.css", "text/css"), "/favicon.svg": ("favicon.svg", "image/svg+xml"),
         "/manifest.webmanifest": ("manifest.webmanifest", "application/manifest+json"),
         "/icon-192.png": ("icon-192.png", "image/png"), "/icon-512.png": ("icon-512.png", "image/png"),
         "/apple-touch-icon.png": ("apple-touch-icon.png", "image/png")}


def main():
    srv = Server("static")
    try:
        for path, (fn, ctype) in FILES.items():
            want = open(os.path.join(SRC, "web", fn), "rb").read()
            etag = '"%s"' % hashlib.sha256(want).hexdigest()[:16]
            st, h, body = srv.request("GET", path)
            check(st == 200 and body == want, "%s: %d, %d bytes (want %d)" % (path, st, len(body), len(want)))
            check(h.get("content-type", "").startswith(ctype), "%s type %r" % (path, h.get("content-type")))
            check(h.get("etag") == etag, "%s: ETag %r, want %r" % (path, h.get("etag"), etag))
            check("content-encoding" not in h, "%s: identity without Accept-Encoding" % path)
            check("default-src 'self'" in h.get("content-security-policy", ""), "%s: CSP" % path)
            check(h.get("cache-control") == "no-cache", "%s: cache-control %r" % (path, h.get("cache-control")))
            # revalidation: 304, no body; another ETag: the file again
            st, h2, body = srv.request("GET", path, {"If-None-Match": etag})
            check(st == 304 and body == b"" and h2.get("etag") == etag, "%s: 304 %d %r" % (path, st, body[:40]))
            st, _, body = srv.request("GET", path, {"If-None-Match": '"0000000000000000", W/' + etag})
            check(st == 304, "%s: a list with the weak form matches: %d" % (path, st))
            st, _, body = srv.request("GET", path, {"If-None-Match": '"0000000000000000"'})
            check(st == 200 and body == want, "%s: another ETag gets the file: %d" % (path, st))
            # gzip when allowed (text files), never when refused
            st, hz, body = srv.request("GET", path, {"Accept-Encoding": "br, gzip;q=0.8"})
            if fn.endswith(".png"):
                check(st == 200 and "content-encoding" not in hz and body == want, "%s: PNG as is" % path)
                continue
            check(hz.get("content-encoding") == "gzip" and gzip.decompress(body) == want and
                  len(body) < len(want) + 30, "%s: gzip variant (%d bytes)" % (path, len(body)))
            check(hz.get("vary") == "Accept-Encoding" and h.get("vary") == "Accept-Encoding", "%s: Vary" % path)
            gz_etag = hz.get("etag", "")
            check(gz_etag and gz_etag != etag, "%s: the gzip variant has its own ETag %r" % (path, gz_etag))
            st, _, body = srv.request("GET", path, {"Accept-Encoding": "gzip", "If-None-Match": gz_etag})
            check(st == 304 and body == b"", "%s: gzip 304: %d" % (path, st))
            st, hq, body = srv.request("GET", path, {"Accept-Encoding": "gzip;q=0, identity"})
            check(st == 200 and "content-encoding" not in hq and body == want, "%s: gzip;q=0 refused" % path)
            st, hh, body = srv.request("HEAD", path, {"Accept-Encoding": "gzip"})
            check(st == 200 and body == b"" and hh.get("etag") == gz_etag, "%s: HEAD" % path)
        m = json.loads(srv.request("GET", "/manifest.webmanifest")[2])
        check(m.get("display") == "standalone" and m.get("icons"), "manifest: %r" % m)
    finally:
        rc = srv.stop()
    check(rc == 0, "exit %d" % rc)
    print("ok")


if __name__ == "__main__":
    main()
