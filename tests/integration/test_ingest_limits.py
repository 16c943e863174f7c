#!/usr/bin/python3
"""pirec ingest limits: --max-connections and --max-memory refuse new data with close 1013
and a log line (never an OOM), the other connections go on; an empty first fragment is
fine (it used to reach memcpy with a NULL buffer); names are escaped in log lines."""
import os

from test_ingest_cli import TMP, Ingest, RawWS, check, wait_file


def main():
    d = os.path.join(TMP, "store")
    os.makedirs(d)
    # one service thread: which of two connections on different threads passes the memory
    # cap first would be a race; one thread keeps the order this test sends in
    srv = Ingest(d, extra=["--max-connections", "2", "--max-memory", "65536",
                           "--max-message", "1048576", "--threads", "1"])

    # connection cap
    a = RawWS("127.0.0.1", srv.port)
    b = RawWS("127.0.0.1", srv.port)
    c = RawWS("127.0.0.1", srv.port)
    check(c.read_close() == 1013, "the third connection was not refused with 1013")
    srv.wait_log("--max-connections")
    c.close()

    # memory cap: a holds 40 KB of an unfinished message (a 64 KiB buffer); b's 10 KB more
    # would pass the 64 KiB cap
    a.frame(2, b"big\0" + b"A" * 40000, fin=False)
    b.frame(2, b"other\0" + b"B" * 10000, fin=False)
    check(b.read_close() == 1013, "the connection over --max-memory was not refused with 1013")
    srv.wait_log("--max-memory")
    b.close()
    a.frame(0, b"tail")
    wait_file(os.path.join(d, "big"), b"A" * 40000 + b"tail")   # the first one went on

    a.close()
    check(srv.alive(), "pirec ingest died")

    # an empty first fragment, then the message (a server without caps: the closes above
    # may not have been noticed yet)
    d = os.path.join(TMP, "store2")
    os.makedirs(d)
    srv = Ingest(d)
    e = RawWS("127.0.0.1", srv.port)
    e.frame(2, b"", fin=False)
    e.frame(0, b"empty\0", fin=False)
    e.frame(0, b"data")
    wait_file(os.path.join(d, "empty"), b"data")

    # a UTF-8 name reaches the log escaped
    e.frame(2, "über".encode() + b"\0x", fin=False)
    e.frame(0, b"y")
    wait_file(os.path.join(d.encode(), "über".encode()), b"xy")
    srv.wait_log("stream '\\xc3\\xbcber' opened")
    check("über" not in srv.log(), "a raw UTF-8 name reached the log")
    e.close()
    check(srv.alive(), "pirec ingest died")
    print("ingest limits: ok")


main()
