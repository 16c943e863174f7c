"""A TCP proxy the forwarding tests control (loopback only): it relays every connection
to an upstream port and can cut all of them after a given number of client bytes (so the
cut falls in the middle of a WebSocket frame), hold the client's bytes back for a while
(a stalled network), or refuse new connections. Threads; no sleeps on the data path."""
import socket
import threading
import time


class CutProxy:
    def __init__(self, upstream_port):
        self.upstream = upstream_port
        self.ls = socket.socket()
        self.ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.ls.bind(("127.0.0.1", 0))
        self.ls.listen(16)
        self.port = self.ls.getsockname()[1]
        self.lock = threading.Lock()
        self.conns = []            # (client, upstream) pairs alive
        self.cut_after = None      # client->upstream bytes left before cutting everything
        self.stall_until = 0.0
        self.refusing = False
        self.cuts = 0
        self.accepted = 0
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.closed:
            try:
                c, _ = self.ls.accept()
            except OSError:
                return
            if self.refusing:
                c.close()
                continue
            try:
                u = socket.create_connection(("127.0.0.1", self.upstream), timeout=5)
            except OSError:
                c.close()
                continue
            with self.lock:
                self.conns.append((c, u))
                self.accepted += 1
            threading.Thread(target=self._pump, args=(c, u, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(u, c, False), daemon=True).start()

    def _cut_all(self):
        with self.lock:
            conns, self.conns = self.conns, []
            self.cuts += 1
        for c, u in conns:
            for s in (c, u):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()

    def _pump(self, src, dst, client_side):
        while True:
            try:
                data = src.recv(65536)
            except OSError:
                data = b""
            if not data:
                break
            if client_side:
                while time.monotonic() < self.stall_until:
                    time.sleep(0.01)
                with self.lock:
                    left = self.cut_after
                    if left is not None:
                        if len(data) >= left:
                            data = data[:left]
                            self.cut_after = None
                        else:
                            self.cut_after = left - len(data)
                if left is not None and len(data) == left:
                    try:
                        dst.sendall(data)
                    except OSError:
                        pass
                    self._cut_all()
                    return
            try:
                dst.sendall(data)
            except OSError:
                break
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def cut_in(self, nbytes):
        """Cuts every connection once nbytes more client bytes went through."""
        with self.lock:
            self.cut_after = nbytes

    def stall(self, seconds):
        self.stall_until = time.monotonic() + seconds

    def close(self):
        self.closed = True
        self.ls.close()
        self._cut_all()
