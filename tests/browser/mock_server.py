#!/usr/bin/python3
"""A stand-in for `pirec serve --demo`, for developing the web page without the C server.

Serves web/ and fakes the API and events of docs/api.md: one demo device "tone"
(48 kHz, S16_LE, 2 ch), levels at 25 Hz, leases with tokens, start/stop of takes that
write a small file, the recordings list, download with Range, delete with a lease token.
Stdlib only.

    /usr/bin/python3 tests/browser/mock_server.py --listen 127.0.0.1:0 [--recordings DIR]
prints "mock listening on http://127.0.0.1:PORT/" and runs until SIGTERM/SIGINT, when it
sends `close` to every subscriber.
"""
import argparse
import datetime as dt
import json
import math
import os
import re
import secrets
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit, parse_qs, unquote

WEB = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'web')
TYPES = {'.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8',
         '.css': 'text/css; charset=utf-8', '.svg': 'image/svg+xml'}
NAME_RE = re.compile(r'^[A-Za-z0-9][A-Za-z0-9._+-]*\.flac$')


def iso_now():
    return dt.datetime.now().astimezone().isoformat(timespec='seconds')


class Hub:
    def __init__(self):
        self.cond = threading.Condition()
        self.events = []          # (id, type, data, volatile)
        self.next_id = 1
        self.closed = False

    def publish(self, typ, data, volatile=False):
        with self.cond:
            self.events.append((self.next_id, typ, json.dumps(data, separators=(',', ':')), volatile))
            self.next_id += 1
            if len(self.events) > 4096:
                del self.events[:1024]
            self.cond.notify_all()


class State:
    def __init__(self, rec_dir, lease_seconds):
        self.lock = threading.Lock()
        self.rec_dir = rec_dir
        self.lease_seconds = lease_seconds
        self.hub = Hub()
        self.dev = {'id': 'tone', 'name': 'Demo tone', 'connected': True,
                    'format': {'sample': 'S16_LE', 'rate': 48000, 'channels': 2}}
        self.lease = None         # {'token','holder','expires'}
        self.take = None          # {'file','started','t0'}
        self.clips = [0, 0]

    def device_status(self, now):
        d = dict(self.dev)
        held = self.lease is not None and self.lease['expires'] > now
        d.update(taken=held, holder=self.lease['holder'] if held else '',
                 expires=self.lease['expires'] if held else 0,
                 recording=self.take is not None,
                 file=self.take['file'] if self.take else '',
                 elapsed=round(time.monotonic() - self.take['t0'], 2) if self.take else 0)
        return d

    def status(self):
        now = int(time.time())
        with self.lock:
            d = self.device_status(now)
        st = os.statvfs(self.rec_dir)
        free = st.f_bavail * st.f_frsize
        return {'devices': [d],
                'disk': {'free_bytes': free, 'seconds_left': free / (48000 * 2 * 2 * 0.6)},
                'clock_synchronised': True, 'server_time': iso_now()}

    def status_event(self):
        s = self.status()
        for d in s['devices']:
            s[d['id']] = {'connected': d['connected'], 'taken': d['taken'], 'name': d['name']}
        return s


class Handler(BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'
    server_version = 'pirec-mock'

    def log_message(self, fmt, *args):
        if os.environ.get('MOCK_VERBOSE'):
            sys.stderr.write('mock: ' + fmt % args + '\n')

    @property
    def st(self):
        return self.server.state

    def send_json(self, code, obj):
        body = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header('Content-Type', 'application/json')
        self.send_header('Content-Length', str(len(body)))
        self.send_header('Cache-Control', 'no-store')
        self.end_headers()
        self.wfile.write(body)

    def token_of(self, path_token, q):
        if path_token:
            return path_token
        auth = self.headers.get('Authorization', '')
        if auth.startswith('Bearer '):
            return auth[7:]
        return q.get('token', [''])[0]

    def do_GET(self):
        self.route('GET')

    def do_POST(self):
        self.route('POST')

    def do_DELETE(self):
        self.route('DELETE')

    def route(self, method):
        u = urlsplit(self.path)
        path, q = unquote(u.path), parse_qs(u.query)
        if path == '/api/status':
            return self.send_json(200, self.st.status())
        m = re.match(r'^/api/status/([^/]+)$', path)
        if m and method == 'GET':
            return self.sse(q)
        m = re.match(r'^/api/recording/([^/]+)/(take|renew|release|start|stop)(?:/([^/]+))?$', path)
        if m:
            return self.control(m.group(1), m.group(2), self.token_of(m.group(3), q), q)
        if path == '/api/recordings' and method == 'GET':
            return self.send_json(200, {'recordings': self.list_recordings()})
        m = re.match(r'^/api/recordings/([^/]+?)(/delete)?$', path)
        if m:
            if method == 'DELETE' or (method == 'POST' and m.group(2)):
                return self.delete(m.group(1), self.token_of('', q))
            if method == 'GET' and not m.group(2):
                return self.download(m.group(1))
        if path.startswith('/api/'):
            return self.send_json(404, {'state': False, 'error': 'no such route'})
        return self.static(path)

    def static(self, path):
        name = 'index.html' if path == '/' else path.lstrip('/')
        if not re.match(r'^[a-z0-9_-]+\.(html|js|css|svg)$', name):
            return self.send_json(404, {'error': 'not found'})
        fn = os.path.join(WEB, name)
        try:
            with open(fn, 'rb') as f:
                body = f.read()
        except OSError:
            return self.send_json(404, {'error': 'not found'})
        self.send_response(200)
        self.send_header('Content-Type', TYPES[os.path.splitext(name)[1]])
        self.send_header('Content-Length', str(len(body)))
        self.send_header('Content-Security-Policy', "default-src 'self'")
        self.send_header('Cache-Control', 'no-cache')
        self.end_headers()
        self.wfile.write(body)

    # ---- control ----
    def control(self, dev, action, token, q):
        st = self.st
        now = int(time.time())
        if dev != st.dev['id']:
            return self.send_json(404, {'state': False, 'token': '', 'error': 'no such device'})
        events = []
        with st.lock:
            lease = st.lease if st.lease and st.lease['expires'] > now else None
            valid = lease is not None and token == lease['token']
            if action == 'take':
                if lease:
                    return self.send_json(409, {'state': False, 'token': '', 'holder': lease['holder'],
                                                'expires': lease['expires']})
                client = (q.get('client', ['web'])[0] or 'web')[:63]
                st.lease = {'token': secrets.token_hex(16), 'holder': client,
                            'expires': now + st.lease_seconds}
                ans = {'state': True, 'token': st.lease['token'], 'id': dev, 'holder': client,
                       'expires': st.lease['expires'], 'lease_seconds': st.lease_seconds}
                events.append(('take', {'id': dev, 'holder': client, 'expires': st.lease['expires']}))
            elif not valid:
                return self.send_json(401, {'state': False, 'token': '', 'error': 'bad or expired token'})
            elif action == 'renew':
                st.lease = dict(lease, token=secrets.token_hex(16), expires=now + st.lease_seconds)
                ans = {'state': True, 'token': st.lease['token'], 'id': dev, 'holder': lease['holder'],
                       'expires': st.lease['expires'], 'lease_seconds': st.lease_seconds}
                events.append(('take', {'id': dev, 'holder': lease['holder'], 'expires': st.lease['expires']}))
            elif action == 'release':
                st.lease = None
                ans = {'state': True}
                events.append(('release', {'id': dev, 'holder': lease['holder']}))
            elif action == 'start':
                if st.take:
                    return self.send_json(409, {'state': False, 'error': 'already recording'})
                stamp = dt.datetime.now().astimezone().strftime('%Y-%m-%dT%H-%M-%S%z')
                f = 'tone_%s.flac' % stamp
                n = 1
                while os.path.exists(os.path.join(st.rec_dir, f)):
                    n += 1
                    f = 'tone_%s-%d.flac' % (stamp, n)
                st.take = {'file': f, 'started': iso_now(), 't0': time.monotonic()}
                open(os.path.join(st.rec_dir, f + '.part'), 'wb').close()
                ans = {'state': True, 'file': f, 'started': st.take['started']}
                events.append(('record', {'id': dev, 'file': f, 'started': st.take['started']}))
            elif action == 'stop':
                if not st.take:
                    return self.send_json(409, {'state': False, 'error': 'not recording'})
                ans = self.finish_take('stopped', events)
        for e in events:
            st.hub.publish(*e)
        return self.send_json(200, ans)

    def finish_take(self, reason, events):
        st = self.st
        t = st.take
        st.take = None
        secs = round(time.monotonic() - t['t0'], 3)
        part = os.path.join(st.rec_dir, t['file'] + '.part')
        write_flac(part, secs)
        os.rename(part, os.path.join(st.rec_dir, t['file']))
        meta = {'name': t['file'], 'device': 'tone', 'started': t['started'], 'seconds': secs,
                'bytes': os.path.getsize(os.path.join(st.rec_dir, t['file'])), 'format': 'flac',
                'rate': 48000, 'channels': 2, 'bits': 16, 'complete': True}
        with open(os.path.join(st.rec_dir, t['file'] + '.json'), 'w') as f:
            json.dump(meta, f)
        events.append(('stop', {'id': 'tone', 'file': t['file'], 'seconds': secs, 'bytes': meta['bytes'],
                                'lost_frames': 0, 'reason': reason}))
        return {'state': True, 'file': t['file'], 'seconds': secs, 'bytes': meta['bytes'], 'lost_frames': 0}

    def list_recordings(self):
        st = self.st
        out = []
        for fn in os.listdir(st.rec_dir):
            p = os.path.join(st.rec_dir, fn)
            if fn.endswith('.flac.json'):
                with open(p) as f:
                    out.append(json.load(f))
            elif fn.endswith('.flac.part'):
                with st.lock:
                    t = st.take
                secs = round(time.monotonic() - t['t0'], 1) if t and t['file'] == fn[:-5] else 0
                out.append({'name': fn[:-5], 'device': 'tone', 'started': t['started'] if t else '',
                            'seconds': secs, 'bytes': int(secs * 48000 * 4 * 0.55), 'format': 'flac',
                            'rate': 48000, 'channels': 2, 'bits': 16, 'complete': False})
        out.sort(key=lambda r: r['started'], reverse=True)
        return out

    def download(self, name):
        if not NAME_RE.match(name):
            return self.send_json(400, {'state': False, 'error': 'bad name'})
        p = os.path.join(self.st.rec_dir, name)
        if not os.path.isfile(p):
            return self.send_json(404, {'state': False, 'error': 'no such take'})
        with open(p, 'rb') as f:
            body = f.read()
        start, end, code = 0, len(body) - 1, 200
        rng = self.headers.get('Range', '')
        m = re.match(r'^bytes=(\d*)-(\d*)$', rng)
        if m and (m.group(1) or m.group(2)):
            if m.group(1):
                start = int(m.group(1))
                end = min(int(m.group(2)), end) if m.group(2) else end
            else:
                start = max(0, len(body) - int(m.group(2)))
            if start > end:
                self.send_response(416)
                self.send_header('Content-Range', 'bytes */%d' % len(body))
                self.send_header('Content-Length', '0')
                self.end_headers()
                return
            code = 206
        self.send_response(code)
        self.send_header('Content-Type', 'audio/flac')
        self.send_header('Accept-Ranges', 'bytes')
        if code == 206:
            self.send_header('Content-Range', 'bytes %d-%d/%d' % (start, end, len(body)))
        self.send_header('Content-Length', str(end - start + 1))
        self.end_headers()
        self.wfile.write(body[start:end + 1])

    def delete(self, name, token):
        st = self.st
        if not NAME_RE.match(name):
            return self.send_json(400, {'state': False, 'error': 'bad name'})
        now = int(time.time())
        with st.lock:
            if not (st.lease and st.lease['expires'] > now and st.lease['token'] == token):
                return self.send_json(401, {'state': False, 'error': 'a lease token is needed'})
            if st.take and st.take['file'] == name:
                return self.send_json(409, {'state': False, 'error': 'take still being written'})
        p = os.path.join(st.rec_dir, name)
        if not os.path.isfile(p):
            return self.send_json(404, {'state': False, 'error': 'no such take'})
        os.unlink(p)
        try:
            os.unlink(p + '.json')
        except OSError:
            pass
        return self.send_json(200, {'state': True})

    # ---- events ----
    def sse(self, q):
        hub = self.st.hub
        last = self.headers.get('Last-Event-ID') or q.get('lastEventId', [''])[0]
        try:
            last = int(last)
        except ValueError:
            last = 0
        self.send_response(200)
        self.send_header('Content-Type', 'text/event-stream')
        self.send_header('Cache-Control', 'no-store')
        self.send_header('Connection', 'close')
        self.end_headers()
        self.close_connection = True
        with hub.cond:
            if last:
                backlog = [e for e in hub.events if e[0] > last and not e[3]]
            else:
                backlog = []
            cursor = hub.next_id - 1
        try:
            out = 'retry: 2000\n\n'
            for (i, typ, data, _) in backlog:
                out += 'id: %d\nevent: %s\ndata: %s\n\n' % (i, typ, data)
            # a status on connect (with the id of the newest event, as the server does)
            out += 'id: %d\nevent: status\ndata: %s\n\n' % (
                cursor, json.dumps(self.st.status_event(), separators=(',', ':')))
            self.wfile.write(out.encode())
            self.wfile.flush()
            beat = time.monotonic()
            while True:
                with hub.cond:
                    hub.cond.wait_for(lambda: hub.next_id - 1 > cursor or hub.closed, timeout=1.0)
                    new = [e for e in hub.events if e[0] > cursor]
                    closed = hub.closed
                    if new:
                        cursor = new[-1][0]
                chunk = ''.join('id: %d\nevent: %s\ndata: %s\n\n' % (i, t, d) for (i, t, d, _) in new)
                if time.monotonic() - beat > 15:
                    chunk += ': heartbeat\n\n'
                    beat = time.monotonic()
                if chunk:
                    self.wfile.write(chunk.encode())
                    self.wfile.flush()
                if closed and not new:
                    return
        except (BrokenPipeError, ConnectionResetError, OSError):
            return


def write_flac(path, secs):
    """A real FLAC of a 440 Hz tone (48 kHz, 16-bit, stereo) through the flac CLI, so that a
    browser can play it; without the CLI, a stub that only starts like FLAC."""
    frames = int(secs * 48000)
    one = b''.join(struct.pack('<hh', v, v) for v in
                   (int(8000 * math.sin(2 * math.pi * 440 * i / 48000)) for i in range(48000)))
    pcm = (one * (frames // 48000 + 1))[:frames * 4]
    if shutil.which('flac'):
        r = subprocess.run(['flac', '-s', '-f', '--force-raw-format', '--endian=little', '--sign=signed',
                            '--channels=2', '--bps=16', '--sample-rate=48000', '-o', path, '-'],
                           input=pcm, capture_output=True)
        if r.returncode == 0:
            return
    with open(path, 'wb') as f:
        f.write(b'fLaC' + bytes(min(len(pcm), 1 << 20)))


def level_loop(state, stop):
    t0 = time.monotonic()
    n = 0
    while not stop.is_set():
        n += 1
        nxt = t0 + n / 25.0
        time.sleep(max(0.0, nxt - time.monotonic()))
        t = time.monotonic() - t0
        ch = []
        for c in range(2):
            env = 0.5 + 0.5 * math.sin(t * 0.9 + c * 1.3)
            rms = -40 + 26 * env + 2 * math.sin(t * 7.0 + c)
            peak = min(0.0, rms + 8 + 2 * math.sin(t * 13.0))
            if n % 500 == 499 and c == 1:      # a clip every 20 s on the right channel
                state.clips[c] += 3
                peak = 0.0
            ch.append({'peak': round(peak, 1), 'rms': round(rms, 1), 'hold': 0.0, 'clip': state.clips[c]})
        # hold: highest peak of the last 2 s (simple)
        hold = getattr(state, 'hold', [(-120.0, 0.0)] * 2)
        newh = []
        for c in range(2):
            hv, ht = hold[c]
            if ch[c]['peak'] >= hv or t - ht > 2.0:
                hv, ht = ch[c]['peak'], t
            ch[c]['hold'] = round(hv, 1)
            newh.append((hv, ht))
        state.hold = newh
        state.hub.publish('level', {'id': 'tone', 't': int(t * 1000), 'ch': ch}, volatile=True)
        # lease expiry driven by a timer, as the server does
        if n % 25 == 0:
            now = int(time.time())
            with state.lock:
                expired = state.lease if state.lease and state.lease['expires'] <= now else None
                if expired:
                    state.lease = None
            if expired:
                state.hub.publish('expire', {'id': 'tone', 'holder': expired['holder']})


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--listen', default='127.0.0.1:0')
    ap.add_argument('--recordings')
    ap.add_argument('--lease-seconds', type=int, default=300)
    ap.add_argument('--demo', action='store_true', help='ignored (always a demo device)')
    ap.add_argument('--state-dir', help='ignored')
    ap.add_argument('--config', help='INI file; [server] lease_seconds is used')
    ap.add_argument('--web', help='serve the page from this folder instead of web/ '
                    '(to measure an older page, e.g. git archive main web | tar -x -C DIR)')
    a = ap.parse_args()
    if a.web:
        global WEB
        WEB = a.web
    if a.config:
        import configparser
        cp = configparser.ConfigParser()
        cp.read(a.config)
        a.lease_seconds = cp.getint('server', 'lease_seconds', fallback=a.lease_seconds)
    host, port = a.listen.rsplit(':', 1)
    rec = a.recordings or tempfile.mkdtemp(prefix='pirec-mock-')
    os.makedirs(rec, exist_ok=True)
    state = State(rec, a.lease_seconds)
    srv = ThreadingHTTPServer((host, int(port)), Handler)
    srv.daemon_threads = True
    srv.state = state
    stop = threading.Event()
    threading.Thread(target=level_loop, args=(state, stop), daemon=True).start()

    def shutdown(*_):
        stop.set()
        with state.hub.cond:
            state.hub.closed = True
        state.hub.publish('close', {})
        threading.Thread(target=srv.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, shutdown)
    signal.signal(signal.SIGINT, shutdown)
    print('mock listening on http://%s:%d/ (recordings in %s)' % (host, srv.server_address[1], rec), flush=True)
    srv.serve_forever(poll_interval=0.2)
    time.sleep(0.3)       # let SSE writers send `close`
    srv.server_close()


if __name__ == '__main__':
    main()
