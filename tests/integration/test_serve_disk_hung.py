#!/usr/bin/python3
"""A hung recordings disk (a stuck NFS mount: PIREC_TEST_DISK_PROBE=block makes every
free-space probe hang) never freezes pirec serve: /api/status is answered and says the disk
figure is stale and unknown (null, which the page leaves out), the event stream sends its
`status` and the meter's `level` events, a take can be started and stopped, and SIGTERM
still ends the server. Before the free space was measured off the event thread, statvfs
ran inside /api/status itself. Behaviour only, never timings: each request has a deadline."""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_serve_common import Server, Sse, check, fail  # noqa: E402


def main():
    os.environ["PIREC_TEST_DISK_PROBE"] = "block"
    try:
        srv = Server("disk-hung")
    finally:
        del os.environ["PIREC_TEST_DISK_PROBE"]
    sse = None
    try:
        for _ in range(3):
            try:
                st, obj = srv.json("GET", "/api/status", expect=200)
            except OSError as e:    # socket.timeout: the event loop waits on the disk
                fail("/api/status not answered while the disk probe hangs: %s" % e)
            disk = obj.get("disk")
            check(isinstance(disk, dict), "status has a disk object: %r" % obj)
            check(disk.get("stale") is True, "a hung disk's figure is stale: %r" % disk)
            check(disk.get("free_bytes") is None and disk.get("seconds_left") is None,
                  "nothing measured yet, so no figure: %r" % disk)

        sse = Sse(srv.port)
        ev = json.loads(sse.wait_event("status")["data"])
        check(ev.get("disk", {}).get("stale") is True, "the event's disk is stale: %r" % ev)
        sse.wait_event("level")
        n = len(sse.of("level"))
        sse.wait_event("level", pred=lambda e, n=n: len(sse.of("level")) > n + 2)

        tok = srv.take("tone", "hung")
        auth = {"Authorization": "Bearer " + tok}
        srv.json("POST", "/api/recording/tone/start", auth, expect=200)
        st, obj = srv.json("POST", "/api/recording/tone/stop", auth, expect=200)
        check(obj.get("file", "").endswith(".flac"), "stop answer %r" % obj)
        check("the disk does not answer" in srv.stderr(), "the start says the disk does not "
              "answer: %s" % srv.stderr()[-500:])
        print("hung disk probe: status answered, stale figure, events and a take went on")
    finally:
        if sse:
            sse.close()
        rc = srv.stop()
    check(rc == 0, "exit status %d after SIGTERM with a hung disk probe; stderr:\n%s"
          % (rc, srv.stderr()))
    print("ok")


if __name__ == "__main__":
    main()
