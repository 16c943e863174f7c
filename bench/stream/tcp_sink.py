#!/usr/bin/python3
"""bench/stream/tcp_sink.py BLOCK OUT: a raw TCP receiver that writes the file the way
`pirec ingest` does, in whole blocks of BLOCK bytes at offsets that are multiples of BLOCK
(its last block may be shorter). It is the control in bench/stream/run: socat sends the
same file, so the only difference from the "socat raw TCP" row is the receiver's write
pattern. Prints "listening PORT", accepts one connection on 127.0.0.1, exits 0 at EOF."""
import os
import socket
import sys


def main():
    block, out = int(sys.argv[1]), sys.argv[2]
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    print("listening %d" % srv.getsockname()[1], flush=True)
    conn, _ = srv.accept()
    buf = bytearray(block)
    view = memoryview(buf)
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        while True:
            have = 0
            while have < block:   # a whole block, as the ingest writes a whole message
                n = conn.recv_into(view[have:])
                if n == 0:
                    break
                have += n
            if have:
                written = 0
                while written < have:
                    written += os.write(fd, view[written:have])
            if have < block:
                return 0
    finally:
        os.close(fd)


sys.exit(main())
