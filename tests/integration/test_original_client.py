#!/usr/bin/python3
"""What the original Pi_Record page (client/index.html) does, against pirec serve: an
EventSource on /api/status/<Date.now()> listening for status/add/remove/take/release/close,
and fetch() of the GET paths reading only json.state and json.token:
take -> start -> stop -> release, then a second take after release, renew, and a take
while held answered with state false."""
import json
import os
import sys
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_serve_common import Server, Sse, check  # noqa: E402


def fetch_json(port, path):
    # fetch() resolves on any status; the page then calls response.json()
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=30) as r:
            return json.loads(r.read())
    except urllib.error.HTTPError as e:
        return json.loads(e.read())


def main():
    srv = Server("orig")
    es = Sse(srv.port, "/api/status/%d" % int(time.time() * 1000))
    try:
        status = json.loads(es.wait_event("status")["data"])
        # the original page reads status[id].connected / .taken / .name
        dev = status.get("tone")
        check(isinstance(dev, dict) and dev.get("connected") is True and dev.get("taken") is False
              and isinstance(dev.get("name"), str), "status for the original: %r" % status)

        j = fetch_json(srv.port, "/api/recording/tone/take")
        check(j["state"] is True and isinstance(j["token"], str) and j["token"], "take %r" % j)
        token = j["token"]
        es.wait_event("take")
        j2 = fetch_json(srv.port, "/api/recording/tone/take")
        check(j2["state"] is False and j2["token"] == "", "second take %r" % j2)

        j = fetch_json(srv.port, "/api/recording/tone/start/" + token)
        check(j["state"] is True, "start %r" % j)
        j = fetch_json(srv.port, "/api/recording/tone/renew/" + token)
        check(j["state"] is True and j["token"] and j["token"] != token, "renew %r" % j)
        old, token = token, j["token"]
        check(fetch_json(srv.port, "/api/recording/tone/stop/" + old)["state"] is False,
              "old token refused after renew")
        j = fetch_json(srv.port, "/api/recording/tone/stop/" + token)
        check(j["state"] is True, "stop %r" % j)
        j = fetch_json(srv.port, "/api/recording/tone/stop/" + token)
        check(j["state"] is False, "stop when not recording %r" % j)
        j = fetch_json(srv.port, "/api/recording/tone/release/" + token)
        check(j["state"] is True, "release %r" % j)
        es.wait_event("release")
        j = fetch_json(srv.port, "/api/recording/tone/release/" + token)
        check(j["state"] is False, "release twice %r" % j)
        j = fetch_json(srv.port, "/api/recording/yeti/take")
        check(j["state"] is False and j["token"] == "", "unknown device %r" % j)
        for e in es.events:
            if "data" in e:
                json.loads(e["data"])   # the page JSON.parses every event's data
        j = fetch_json(srv.port, "/api/recording/tone/take")
        check(j["state"] is True, "take after release %r" % j)
    finally:
        rc = srv.stop()
    check(rc == 0, "exit %d" % rc)
    es.wait_event("close")
    es.close()
    print("ok")


if __name__ == "__main__":
    main()
