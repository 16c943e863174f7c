#!/usr/bin/python3
"""A WebSocket server that behaves like the original record_server/server.py, written here
from its described behaviour (no code of it or of SimpleWebSocketServer):

  legacy_peer.py --dir DIR [--port N]

- never answers a ping (the original's pong line is commented out);
- offers no subprotocol (a pirec client therefore treats it as legacy);
- saves only messages that arrived in two or more fragments: the data after the first NUL
  is appended to DIR/<name>; an unfragmented message is ignored;
- on each new connection, the file of the first stream name it receives is deleted first
  (so a reconnect wipes what that stream sent before).

Raw sockets and one thread per connection, so nothing answers pings behind our back.
Prints "PORT <n>" once listening. Lines on stdin control it: "drop" resets every open
connection (RST), "quit" exits. Prints "CONN <n>" for each connection, "PING" for each
ping it ignored, "DELETE <name>" when it deletes a file, "CLOSED <n>" when one ends.
"""
import argparse
import base64
import hashlib
import os
import socket
import struct
import sys
import threading

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
out_lock = threading.Lock()


def say(line):
    with out_lock:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def recv_exact(sock, n):
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("eof")
        buf += chunk
    return bytes(buf)


def handshake(sock):
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError("eof in handshake")
        data += chunk
        if len(data) > 65536:
            raise ConnectionError("handshake too long")
    head, rest = data.split(b"\r\n\r\n", 1)
    key = None
    for line in head.split(b"\r\n")[1:]:
        k, _, v = line.partition(b":")
        if k.strip().lower() == b"sec-websocket-key":
            key = v.strip()
    if key is None:
        raise ConnectionError("no key")
    accept = base64.b64encode(hashlib.sha1(key + GUID).digest())
    sock.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                 b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n")
    return rest


class Conn:
    def __init__(self, sock, n, directory):
        self.sock, self.n, self.dir = sock, n, directory
        self.pending = b""
        self.first_name_done = False

    def read(self, k):
        if self.pending:
            take, self.pending = self.pending[:k], self.pending[k:]
            if len(take) == k:
                return take
            return take + recv_exact(self.sock, k - len(take))
        return recv_exact(self.sock, k)

    def frame(self):
        b0, b1 = self.read(2)
        fin, op, masked, ln = b0 >> 7, b0 & 15, b1 >> 7, b1 & 127
        if ln == 126:
            ln = struct.unpack(">H", self.read(2))[0]
        elif ln == 127:
            ln = struct.unpack(">Q", self.read(8))[0]
        mask = self.read(4) if masked else None
        payload = self.read(ln) if ln else b""
        if mask:
            m = (mask * (len(payload) // 4 + 1))[:len(payload)]
            payload = (int.from_bytes(payload, "big") ^ int.from_bytes(m, "big")).to_bytes(
                len(payload), "big")
        return fin, op, payload

    def store(self, msg):
        name, sep, data = msg.partition(b"\0")
        if not sep:
            return
        name = name.decode("utf-8", "replace")
        if not name or "/" in name or name.startswith("."):
            return   # the original does not check; this peer stays inside its directory
        path = os.path.join(self.dir, name)
        if not self.first_name_done:
            self.first_name_done = True
            if os.path.exists(path):
                os.remove(path)
                say("DELETE " + name)
        with open(path, "ab") as f:
            f.write(data)

    def run(self):
        self.pending = handshake(self.sock)
        parts, frames, op0 = [], 0, None
        while True:
            fin, op, payload = self.frame()
            if op == 8:   # close: answer and end
                try:
                    self.sock.sendall(b"\x88\x02" + (payload[:2] if len(payload) >= 2 else b"\x03\xe8"))
                except OSError:
                    pass
                return
            if op == 9:   # ping: never answered
                say("PING")
                continue
            if op == 10:
                continue
            if op != 0:
                parts, frames, op0 = [], 0, op
            parts.append(payload)
            frames += 1
            if fin:
                if op0 == 2 and frames >= 2:
                    self.store(b"".join(parts))
                parts, frames, op0 = [], 0, None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True)
    ap.add_argument("--port", type=int, default=0)
    args = ap.parse_args()
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", args.port))
    ls.listen(64)
    conns = {}
    lock = threading.Lock()

    def serve(sock, n):
        c = Conn(sock, n, args.dir)
        with lock:
            conns[n] = sock
        try:
            c.run()
        except (ConnectionError, OSError):
            pass
        finally:
            with lock:
                conns.pop(n, None)
            try:
                sock.close()
            except OSError:
                pass
            say("CLOSED %d" % n)

    def accept_loop():
        n = 0
        while True:
            try:
                sock, _ = ls.accept()
            except OSError:
                return
            n += 1
            say("CONN %d" % n)
            threading.Thread(target=serve, args=(sock, n), daemon=True).start()

    threading.Thread(target=accept_loop, daemon=True).start()
    say("PORT %d" % ls.getsockname()[1])
    for line in sys.stdin:
        cmd = line.strip()
        if cmd == "drop":
            with lock:
                socks = list(conns.values())
            for s in socks:
                try:   # RST, like a crashed peer or a NAT that forgot the flow
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            say("DROPPED %d" % len(socks))
        elif cmd == "quit":
            break
    ls.close()


if __name__ == "__main__":
    main()
