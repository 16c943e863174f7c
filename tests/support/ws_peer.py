#!/usr/bin/python3
"""An independent WebSocket peer for the ws_link tests (Debian's websockets 10.4).

  ws_peer.py --mode legacy|resume --dir DIR [--port N] [--events FILE] [--ssl-cert C --ssl-key K]

legacy: behaves like the original record_server/server.py: stores only messages that
        arrived in two or more fragments, appends the data after the first NUL to DIR/<name>.
resume: also answers the subprotocol pirec.resume.1 (docs/protocol.md): stat, ack, loss.

Prints "PORT <n>" on stdout once listening. Appends one JSON line per event to --events:
  {"ev":"conn","path":..,"host":..,"proto":..}   {"ev":"msg","name":..,"frames":n,"len":n}
  {"ev":"unfragmented"}  {"ev":"stat","name":..,"size":n}  {"ev":"loss","name":..,"at":n,"bytes":n}
"""
import argparse
import asyncio
import json
import os
import ssl
import sys

import websockets
import websockets.server

SUBPROTOCOL = "pirec.resume.1"


class CountingProtocol(websockets.server.WebSocketServerProtocol):
    """Counts the data frames of each message; recv() returns messages in the same order."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.frame_counts = []
        self._frames = 0

    async def read_data_frame(self, max_size):
        frame = await super().read_data_frame(max_size)
        if frame is not None:
            self._frames += 1
        return frame

    async def read_message(self):
        self._frames = 0
        msg = await super().read_message()
        self.frame_counts.append(self._frames)
        return msg


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mode", choices=["legacy", "resume"], required=True)
    ap.add_argument("--dir", required=True)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--events")
    ap.add_argument("--ssl-cert")
    ap.add_argument("--ssl-key")
    args = ap.parse_args()
    events = open(args.events, "a", buffering=1) if args.events else None

    def event(**kw):
        if events:
            events.write(json.dumps(kw) + "\n")

    def path_of(name):
        if not name or name.startswith(".") or "/" in name or any(ord(c) < 32 for c in name):
            raise ValueError("bad name %r" % name)
        return os.path.join(args.dir, name)

    async def handler(ws, path):
        event(ev="conn", path=path, host=ws.request_headers.get("Host"),
              proto=ws.subprotocol)
        resume = ws.subprotocol == SUBPROTOCOL
        try:
            async for msg in ws:
                frames = ws.frame_counts.pop(0)
                if isinstance(msg, str):
                    if not resume:
                        continue
                    j = json.loads(msg)
                    name = j["name"]
                    if j["op"] == "stat":
                        p = path_of(name)
                        size = os.path.getsize(p) if os.path.exists(p) else 0
                        event(ev="stat", name=name, size=size)
                        await ws.send(json.dumps({"op": "stat", "name": name, "size": size}))
                    elif j["op"] == "loss":
                        event(ev="loss", name=name, at=j["at"], bytes=j["bytes"])
                        with open(path_of(name) + ".losses", "a") as f:
                            f.write("at %d bytes %d\n" % (j["at"], j["bytes"]))
                    continue
                if frames < 2:
                    event(ev="unfragmented")  # the original ignores these
                    continue
                nul = msg.index(b"\0")
                name = msg[:nul].decode()
                data = msg[nul + 1:]
                p = path_of(name)
                with open(p, "ab") as f:
                    f.write(data)
                    size = f.tell()
                event(ev="msg", name=name, frames=frames, len=len(data))
                if resume:
                    await ws.send(json.dumps({"op": "ack", "name": name, "size": size}))
        except websockets.ConnectionClosed:
            pass
        event(ev="close")

    async def run():
        ctx = None
        if args.ssl_cert:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(args.ssl_cert, args.ssl_key)
        protos = [SUBPROTOCOL] if args.mode == "resume" else None
        async with websockets.serve(handler, args.host, args.port, subprotocols=protos,
                                    create_protocol=CountingProtocol, ssl=ctx,
                                    max_size=None, ping_interval=None) as srv:
            port = srv.sockets[0].getsockname()[1]
            print("PORT %d" % port, flush=True)
            await asyncio.Future()

    try:
        asyncio.run(run())
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
