#!/usr/bin/python3
"""A stand-in for `pirec serve --demo`, for developing and testing the web page without the
C server.

Serves web/ and fakes the API and events of docs/api.md, including what
/work/wt/briefs/i10-server.md asks of the server next (the page is tested against it here
first): one demo device "tone" (48 kHz, S16_LE, 2 ch), levels at 25 Hz carrying the take's
position, leases with tokens that a running take keeps alive, presence of the holder and an
announced take-over, takes with a pre-roll, the recordings list with `take_added` and
`delete` events, waveform peaks, download with Range, delete with a lease token, the
manifest and icons, an unsynchronised clock and the tablet's time (--unsynced).
Stdlib only.

    /usr/bin/python3 tests/browser/mock_server.py --listen 127.0.0.1:0 [--recordings DIR]
        [--lease-seconds 300] [--takeover-after 120] [--preroll 5] [--unsynced] [--web DIR]
prints "mock listening on http://127.0.0.1:PORT/" and runs until SIGTERM/SIGINT, when it
sends `close` to every subscriber. `POST /mock/restart` acts as a restart of the server
(the take ends, leases are forgotten, every event stream gets `close`).
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
         '.css': 'text/css; charset=utf-8', '.svg': 'image/svg+xml', '.png': 'image/png',
         '.webmanifest': 'application/manifest+json'}
NAME_RE = re.compile(r'^[A-Za-z0-9][A-Za-z0-9._+-]*\.flac$')
PEAKS_PER_SECOND = 10


def iso(t):
    return dt.datetime.fromtimestamp(t).astimezone().isoformat(timespec='milliseconds')


class Hub:
    def __init__(self):
        self.cond = threading.Condition()
        self.events = []          # (id, type, data, volatile)
        self.next_id = 1
        self.closed = False
        self.generation = 0       # bumped by a simulated restart: every stream ends

    def publish(self, typ, data, volatile=False):
        with self.cond:
            self.events.append((self.next_id, typ, json.dumps(data, separators=(',', ':')), volatile))
            self.next_id += 1
            if len(self.events) > 4096:
                del self.events[:1024]
            self.cond.notify_all()


def envelope(t, c):
    """The demo signal's level (dB RMS) at t seconds, channel c: levels and peaks agree."""
    env = 0.5 + 0.5 * math.sin(t * 0.9 + c * 1.3)
    return -40 + 26 * env + 2 * math.sin(t * 7.0 + c)


class State:
    def __init__(self, a, rec_dir):
        self.lock = threading.Lock()
        self.rec_dir = rec_dir
        self.lease_seconds = a.lease_seconds
        self.takeover_after = a.takeover_after
        self.preroll = a.preroll
        self.synchronised = not a.unsynced
        self.clock_offset = 0.0   # seconds the tablet's time is ahead of ours (for names)
        self.clock_source = 'system'
        self.hub = Hub()
        self.t_start = time.monotonic()
        self.instance = secrets.token_hex(4)
        self.dev = {'id': 'tone', 'name': 'Demo tone', 'connected': True,
                    'format': {'sample': 'S16_LE', 'rate': 48000, 'channels': 2, 'bits': 16}}
        self.lease = None         # {'token','old','holder','expires','seen','streams'}
        self.take = None          # {'file','started','t0','preroll'}
        # a second device, plugged in by POST /mock/plug (for record all): nobody holds it,
        # it only records in a record-all session
        self.dev2 = None
        self.take2 = None         # {'file','started','t0'}
        self.session = None       # the record-all session recording now
        self.forward = {}         # file -> where its copy on an ingest stands (POST /mock/forward)
        self.clips = [0, 0]

    # --- time: "now" as the server names things (its clock plus the tablet's offset) ---
    def now(self):
        return time.time() + self.clock_offset

    def pos(self):
        """The take's length as the file holds it (pre-roll included), in seconds."""
        return round(time.monotonic() - self.take['t0'], 3) if self.take else 0.0

    def lease_alive(self, now):
        """The lease, unless it ran out; a running take keeps it alive."""
        ls = self.lease
        if ls is None:
            return None
        if ls['expires'] > now or self.take is not None:
            return ls
        return None

    def present(self, ls, now):
        return ls['streams'] > 0 or now - ls['seen'] < self.takeover_after

    def takeover_at(self, ls, now):
        if ls is None:
            return 0
        if ls['streams'] > 0:
            return 0              # connected: no take-over (until it goes away)
        return int(math.ceil(ls['seen'] + self.takeover_after))

    def device_status(self, now):
        d = dict(self.dev)
        ls = self.lease_alive(now)
        d.update(taken=ls is not None, holder=ls['holder'] if ls else '', lease=ls['id'] if ls else '',
                 expires=int(ls['expires']) if ls else 0,
                 kept_by_take=bool(ls and self.take),
                 holder_seen=int(now if ls and ls['streams'] else ls['seen']) if ls else 0,
                 takeover_at=self.takeover_at(ls, now),
                 recording=self.take is not None,
                 file=self.take['file'] if self.take else '',
                 started=self.take['started'] if self.take else '',
                 preroll=self.take['preroll'] if self.take else 0,
                 elapsed=self.pos())
        return d

    def dev2_status(self):
        d = dict(self.dev2)
        t = self.take2
        d.update(taken=False, holder='', lease='', expires=0, kept_by_take=False, holder_seen=0,
                 takeover_at=0, recording=t is not None, file=t['file'] if t else '',
                 started=t['started'] if t else '', preroll=float(self.preroll) if t else 0.0,
                 elapsed=round(time.monotonic() - t['t0'], 3) if t else 0.0)
        return d

    def status(self):
        now = time.time()
        with self.lock:
            devs = [self.device_status(now)] + ([self.dev2_status()] if self.dev2 else [])
        st = os.statvfs(self.rec_dir)
        free = st.f_bavail * st.f_frsize
        fwd = {'forward': list(self.forward.values())} if self.forward else {}
        return {**fwd, 'devices': devs,
                'disk': {'free_bytes': free, 'seconds_left': free / (48000 * 2 * 2 * 0.6)},
                'clock_synchronised': self.synchronised, 'clock_offset': round(self.clock_offset, 3),
                'clock_source': self.clock_source,
                'server_time': iso(self.now()), 'instance': self.instance,
                'lease_seconds': self.lease_seconds, 'takeover_after_seconds': self.takeover_after}

    def status_event(self):
        s = self.status()
        for d in s['devices']:
            s[d['id']] = {'connected': d['connected'], 'taken': d['taken'], 'name': d['name']}
        return s

    def find_lease(self, token, now):
        """The live lease this token belongs to: 'ok', 'old' (taken over), or None."""
        ls = self.lease_alive(now)
        if ls and token and secrets.compare_digest(token, ls['token']):
            return ls, 'ok'
        if ls and token and token in ls.get('old', ()):
            return ls, 'old'
        return None, None


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

    def do_HEAD(self):
        self.route('HEAD')

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
        m = re.match(r'^/api/recording/([^/]+)/(take|takeover|renew|release|start|stop)(?:/([^/]+))?$', path)
        if m:
            return self.control(m.group(1), m.group(2), self.token_of(m.group(3), q), q)
        if path == '/api/clock' and method == 'POST':
            return self.clock(self.token_of('', q), q)
        if path == '/api/recordings' and method == 'GET':
            return self.send_json(200, {'recordings': self.list_recordings()})
        m = re.match(r'^/api/recordings/([^/]+?)(/delete|/peaks)?$', path)
        if m:
            if method == 'DELETE' or (method == 'POST' and m.group(2) == '/delete'):
                return self.delete(m.group(1), self.token_of('', q))
            if method == 'GET' and m.group(2) == '/peaks':
                return self.peaks(m.group(1))
            if method == 'GET' and not m.group(2):
                return self.download(m.group(1))
        if path == '/mock/restart' and method == 'POST':
            return self.restart()
        if path == '/mock/stall' and method == 'POST':
            return self.stall(q.get('on', ['1'])[0] == '1')
        if path == '/mock/forward' and method == 'POST':
            return self.forward(q)
        if path == '/mock/plug' and method == 'POST':
            return self.plug(q.get('on', ['1'])[0] == '1')
        m = re.match(r'^/api/record_all/(start|stop)(?:/([^/]+))?$', path)
        if m and method in ('GET', 'POST'):
            return self.record_all(m.group(1), self.token_of(m.group(2), q))
        if path.startswith('/api/'):
            return self.send_json(404, {'state': False, 'error': 'no such route'})
        return self.static(path, method)

    def static(self, path, method):
        name = 'index.html' if path == '/' else path.lstrip('/')
        if not re.match(r'^[a-z0-9_-]+\.(html|js|css|svg|png|webmanifest)$', name):
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
        if method != 'HEAD':
            self.wfile.write(body)

    # ---- control ----
    def new_lease(self, client, now, old=()):
        st = self.st
        st.lease_serial = getattr(st, 'lease_serial', 0) + 1
        st.lease = {'id': 'L%d' % st.lease_serial,      # names the lease in events; not secret
                    'token': secrets.token_hex(16), 'old': list(old), 'holder': client,
                    'expires': now + st.lease_seconds, 'seen': now, 'streams': 0}
        return st.lease

    def lease_answer(self, dev, ls, **extra):
        st = self.st
        ans = {'state': True, 'token': ls['token'], 'id': dev, 'lease': ls['id'], 'holder': ls['holder'],
               'expires': int(ls['expires']), 'lease_seconds': st.lease_seconds,
               'kept_by_take': st.take is not None}
        ans.update(extra)
        return ans

    def control(self, dev, action, token, q):
        st = self.st
        now = time.time()
        if dev != st.dev['id']:
            return self.send_json(404, {'state': False, 'token': '', 'error': 'no such device'})
        events = []
        with st.lock:
            live = st.lease_alive(now)
            if live is None:
                st.lease = None
            ls, how = st.find_lease(token, now)
            client = (q.get('client', ['web'])[0] or 'web')[:63]
            if action in ('take', 'takeover'):
                if live and action == 'take':
                    return self.send_json(409, {'state': False, 'token': '', 'holder': live['holder'],
                                                'expires': int(live['expires']),
                                                'present': st.present(live, now),
                                                'takeover_at': st.takeover_at(live, now)})
                if live and st.present(live, now):
                    return self.send_json(409, {'state': False, 'token': '', 'holder': live['holder'],
                                                'expires': int(live['expires']), 'present': True,
                                                'takeover_at': st.takeover_at(live, now),
                                                'error': '%s is still connected' % live['holder']})
                previous = live['holder'] if live else ''
                old = (live.get('old', []) + [live['token']]) if live else []
                nl = self.new_lease(client, now, old=old)
                ans = self.lease_answer(dev, nl)
                if previous:
                    ans['previous'] = previous
                    events.append(('takeover', {'id': dev, 'lease': nl['id'], 'holder': client, 'previous': previous,
                                                'expires': int(nl['expires'])}))
                else:
                    events.append(('take', {'id': dev, 'lease': nl['id'], 'holder': client, 'expires': int(nl['expires']),
                                            'kept_by_take': st.take is not None}))
            elif how == 'old':
                return self.send_json(401, {'state': False, 'token': '', 'taken_over_by': ls['holder'],
                                            'error': 'control was taken over by %s' % ls['holder']})
            elif not ls:
                return self.send_json(401, {'state': False, 'token': '', 'error': 'bad or expired token'})
            elif action == 'renew':
                ls['token'] = secrets.token_hex(16)
                ls['expires'] = now + st.lease_seconds
                ls['seen'] = now
                ans = self.lease_answer(dev, ls)
                events.append(('take', {'id': dev, 'lease': ls['id'], 'holder': ls['holder'], 'expires': int(ls['expires']),
                                        'kept_by_take': st.take is not None}))
            elif action == 'release':
                st.lease = None
                ans = {'state': True}
                events.append(('release', {'id': dev, 'lease': ls['id'], 'holder': ls['holder']}))
            elif action == 'start':
                ls['seen'] = now
                if st.take:
                    return self.send_json(409, {'state': False, 'error': 'already recording'})
                ans = self.start_take(events)
            elif action == 'stop':
                ls['seen'] = now
                if not st.take:
                    return self.send_json(409, {'state': False, 'error': 'not recording'})
                ans = self.finish_take('stopped', events)
                # the lease's timer starts again when the take ends
                ls['expires'] = max(ls['expires'], now + st.lease_seconds)
                events.append(('take', {'id': dev, 'lease': ls['id'], 'holder': ls['holder'], 'expires': int(ls['expires']),
                                        'kept_by_take': False}))
        for e in events:
            st.hub.publish(*e)
        return self.send_json(200, ans)

    def start_take(self, events):
        st = self.st
        stamp = dt.datetime.fromtimestamp(st.now() - st.preroll).astimezone().strftime('%Y-%m-%dT%H-%M-%S%z')
        f = 'tone_%s.flac' % stamp
        n = 1
        while os.path.exists(os.path.join(st.rec_dir, f)) or os.path.exists(os.path.join(st.rec_dir, f + '.part')):
            n += 1
            f = 'tone_%s-%d.flac' % (stamp, n)
        # the take begins `preroll` seconds before the request (what the ring held)
        started = iso(st.now() - st.preroll)
        st.take = {'file': f, 'started': started, 't0': time.monotonic() - st.preroll,
                   'preroll': float(st.preroll)}
        open(os.path.join(st.rec_dir, f + '.part'), 'wb').close()
        events.append(('record', {'id': st.dev['id'], 'file': f, 'started': started,
                                  'preroll': float(st.preroll), 'pos': st.pos()}))
        return {'state': True, 'file': f, 'started': started, 'preroll': float(st.preroll),
                'pos': st.pos()}

    def record_all(self, action, token):
        """/api/record_all/start|stop/TOKEN as pirec serve answers it (docs/api.md): any
        device's lease token; every free connected device records, with one session id."""
        st = self.st
        now = time.time()
        events = []
        with st.lock:
            ls, how = st.find_lease(token, now)
            if how != 'ok':
                return self.send_json(401, {'state': False, 'error': 'record all needs the current '
                                            'lease token of a device'})
            ls['seen'] = now
            if action == 'start':
                if st.session:
                    return self.send_json(409, {'state': False, 'error': 'session %s is recording: '
                                                'stop it first' % st.session})
                if st.take and (not st.dev2 or st.take2):
                    return self.send_json(409, {'state': False, 'error': 'no connected device is free '
                                                'to record (all busy, recording or held by another client)'})
                st.session = secrets.token_hex(8)
                started = iso(st.now() - st.preroll)
                devs = []
                if not st.take:
                    devs.append({'id': st.dev['id'], 'file': self.start_take(events)['file'], 'offset_us': 0})
                if st.dev2 and not st.take2:
                    f = '%s_%s.flac' % (st.dev2['id'], dt.datetime.fromtimestamp(st.now()).strftime('%Y-%m-%dT%H-%M-%S'))
                    st.take2 = {'file': f, 'started': started, 't0': time.monotonic() - st.preroll}
                    devs.append({'id': st.dev2['id'], 'file': f, 'offset_us': 3})
                    events.append(('record', {'id': st.dev2['id'], 'file': f, 'started': started,
                                              'preroll': float(st.preroll), 'pos': float(st.preroll)}))
                ans = {'state': True, 'session': st.session, 'started': started,
                       'recording': 'recording', 'devices': devs}
            else:
                if not st.session:
                    return self.send_json(409, {'state': False, 'error': 'no record-all session is recording'})
                devs = []
                if st.take:
                    r = self.finish_take('stopped', events)
                    devs.append({'id': st.dev['id'], 'file': r['file'], 'seconds': r['seconds']})
                if st.take2:
                    secs = round(time.monotonic() - st.take2['t0'], 3)
                    devs.append({'id': st.dev2['id'], 'file': st.take2['file'], 'seconds': secs})
                    events.append(('stop', {'id': st.dev2['id'], 'file': st.take2['file'], 'seconds': secs,
                                            'bytes': 0, 'lost_frames': 0, 'reason': 'stopped'}))
                    st.take2 = None
                ans = {'state': True, 'session': st.session, 'recording': 'stopped', 'devices': devs}
                st.session = None
        for e in events:
            st.hub.publish(*e)
        st.hub.publish('session', ans)
        return self.send_json(200, ans)

    def forward(self, q):
        """Where a take's copy on an ingest stands, as pirec serve's forwarder says it (the
        status's `forward` and the `forward` event, docs/api.md)."""
        st = self.st
        g = lambda k, d='': q.get(k, [d])[0]  # noqa: E731
        e = {'id': g('id', 'tone'), 'file': g('file'), 'state': g('state', 'sending'),
             'connected': g('connected', '1') == '1', 'seconds_behind': float(g('seconds_behind', '0')),
             'local_bytes': int(g('local_bytes', '0')), 'remote_bytes': int(g('remote_bytes', '0')),
             'md5': g('md5')}
        if g('error'):
            e['error'] = g('error')
        with st.lock:
            st.forward[e['file']] = e
        st.hub.publish('forward', e)
        return self.send_json(200, {'state': True})

    def plug(self, on):
        """A second device is plugged in (or out): the page shows Record all with two."""
        st = self.st
        with st.lock:
            st.dev2 = {'id': 'mic2', 'name': 'Second mic', 'connected': True,
                       'format': {'sample': 'S32_LE', 'rate': 48000, 'channels': 2, 'bits': 24}} if on else None
            st.take2 = None
        st.hub.publish('add' if on else 'remove', {'id': 'mic2'})
        return self.send_json(200, {'state': True})

    def clock(self, token, q):
        """The tablet's time for naming takes, when our clock is not synchronised."""
        st = self.st
        now = time.time()
        with st.lock:
            ls, how = st.find_lease(token, now)
            if how != 'ok':
                return self.send_json(401, {'state': False, 'error': 'take control of a device first'})
            if st.synchronised:
                return self.send_json(409, {'state': False, 'error': 'the clock is synchronised already'})
            try:
                client_ms = float(q.get('now', [''])[0])
            except ValueError:
                return self.send_json(400, {'state': False, 'error': 'now=UNIX_MS is missing or not a number'})
            st.clock_offset = client_ms / 1000.0 - now
            st.clock_source = ls['holder']
            ans = {'state': True, 'clock_offset': round(st.clock_offset, 3), 'clock_source': st.clock_source,
                   'server_time': iso(st.now())}
        st.hub.publish('clock', {'clock_offset': ans['clock_offset'], 'clock_source': st.clock_source})
        return self.send_json(200, ans)

    def finish_take(self, reason, events):
        st = self.st
        t = st.take
        secs = st.pos()
        st.take = None
        part = os.path.join(st.rec_dir, t['file'] + '.part')
        write_flac(part, secs)
        os.rename(part, os.path.join(st.rec_dir, t['file']))
        with open(os.path.join(st.rec_dir, t['file'] + '.peaks.json'), 'w') as f:
            json.dump(peaks_of(t, secs), f)
        meta = {'name': t['file'], 'device': 'tone', 'started': t['started'], 'seconds': secs,
                'bytes': os.path.getsize(os.path.join(st.rec_dir, t['file'])), 'format': 'flac',
                'rate': 48000, 'channels': 2, 'bits': 16, 'complete': True, 'peaks': True}
        with open(os.path.join(st.rec_dir, t['file'] + '.json'), 'w') as f:
            json.dump(meta, f)
        events.append(('stop', {'id': 'tone', 'file': t['file'], 'seconds': secs, 'bytes': meta['bytes'],
                                'lost_frames': 0, 'reason': reason}))
        events.append(('take_added', meta))
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
                    secs = st.pos() if t and t['file'] == fn[:-5] else 0
                out.append({'name': fn[:-5], 'device': 'tone', 'started': t['started'] if t else '',
                            'seconds': secs, 'bytes': int(secs * 48000 * 4 * 0.55), 'format': 'flac',
                            'rate': 48000, 'channels': 2, 'bits': 16, 'complete': False, 'peaks': True})
        out.sort(key=lambda r: r['started'], reverse=True)
        return out

    def peaks(self, name):
        st = self.st
        if not NAME_RE.match(name):
            return self.send_json(400, {'state': False, 'error': 'bad name'})
        p = os.path.join(st.rec_dir, name + '.peaks.json')
        if os.path.isfile(p):
            with open(p) as f:
                return self.send_json(200, json.load(f))
        with st.lock:
            t = st.take
            if t and t['file'] == name:
                return self.send_json(200, peaks_of(t, st.pos(), complete=False))
        return self.send_json(404, {'state': False, 'error': 'no peaks for this take'})

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
        now = time.time()
        with st.lock:
            ls, how = st.find_lease(token, now)
            if how != 'ok':
                return self.send_json(401, {'state': False, 'error': 'a lease token is needed'})
            if st.take and st.take['file'] == name:
                return self.send_json(409, {'state': False, 'error': 'take still being written'})
        p = os.path.join(st.rec_dir, name)
        if not os.path.isfile(p):
            return self.send_json(404, {'state': False, 'error': 'no such take'})
        os.unlink(p)
        for extra in ('.json', '.peaks.json'):
            try:
                os.unlink(p + extra)
            except OSError:
                pass
        st.hub.publish('delete', {'name': name, 'by': ls['holder']})
        return self.send_json(200, {'state': True})

    def stall(self, on):
        """Acts as the capture watchdog of pirec serve: the device stops delivering audio
        (a running take ends with reason device_stalled, the lease stays), or comes back."""
        st = self.st
        events = []
        with st.lock:
            st.dev['stalled'] = on
            st.dev['stalled_since'] = int(time.time()) if on else 0
            if on and st.take:
                self.finish_take('device_stalled', events)
        for e in events:
            st.hub.publish(*e)
        if on:
            st.hub.publish('error', {'id': st.dev['id'], 'message': 'the device stopped delivering '
                                     'audio (nothing for 2.0 s); reopening the device'})
        else:
            st.hub.publish('back', {'id': st.dev['id'], 'silent_seconds': 3.0})
        st.hub.publish('status', st.status_event())
        return self.send_json(200, {'state': True})

    def restart(self):
        """Acts as a restart of the server: the take ends, leases are forgotten."""
        st = self.st
        events = []
        with st.lock:
            if st.take:
                self.finish_take('shutdown', events)
            st.lease = None
            st.instance = secrets.token_hex(4)
        for e in events:
            st.hub.publish(*e)
        st.hub.publish('close', {})
        with st.hub.cond:
            st.hub.generation += 1
            st.hub.cond.notify_all()
        return self.send_json(200, {'state': True})

    # ---- events ----
    def sse(self, q):
        st = self.st
        hub = st.hub
        last = self.headers.get('Last-Event-ID') or q.get('lastEventId', [''])[0]
        try:
            last = int(last)
        except ValueError:
            last = 0
        # a stream opened with the holder's token makes the holder present while it lasts
        bound = None
        with st.lock:
            ls, how = st.find_lease(q.get('token', [''])[0], time.time())
            if how == 'ok':
                bound = ls
                ls['streams'] += 1
                ls['seen'] = time.time()
                if ls['streams'] == 1:
                    st.hub.publish('presence', {'id': st.dev['id'], 'lease': ls['id'], 'holder': ls['holder'],
                                                'present': True, 'takeover_at': st.takeover_at(ls, time.time())})
        self.send_response(200)
        self.send_header('Content-Type', 'text/event-stream')
        self.send_header('Cache-Control', 'no-store')
        self.send_header('Connection', 'close')
        self.end_headers()
        self.close_connection = True
        with hub.cond:
            backlog = [e for e in hub.events if e[0] > last and not e[3]] if last else []
            cursor = hub.next_id - 1
            gen = hub.generation
        try:
            out = 'retry: 2000\n\n'
            for (i, typ, data, _) in backlog:
                out += 'id: %d\nevent: %s\ndata: %s\n\n' % (i, typ, data)
            # a status on connect (with the id of the newest event, as the server does)
            out += 'id: %d\nevent: status\ndata: %s\n\n' % (
                cursor, json.dumps(st.status_event(), separators=(',', ':')))
            self.wfile.write(out.encode())
            self.wfile.flush()
            beat = time.monotonic()
            while True:
                with hub.cond:
                    hub.cond.wait_for(lambda: hub.next_id - 1 > cursor or hub.closed or hub.generation != gen,
                                      timeout=1.0)
                    new = [e for e in hub.events if e[0] > cursor]
                    ended = hub.closed or hub.generation != gen
                    if new:
                        cursor = new[-1][0]
                chunk = ''.join('id: %d\nevent: %s\ndata: %s\n\n' % (i, t, d) for (i, t, d, _) in new)
                if time.monotonic() - beat > 15:
                    chunk += ': heartbeat\n\n'
                    beat = time.monotonic()
                if chunk:
                    self.wfile.write(chunk.encode())
                    self.wfile.flush()
                if ended and not new:
                    return
        except (BrokenPipeError, ConnectionResetError, OSError):
            return
        finally:
            if bound is not None:
                with st.lock:
                    bound['streams'] -= 1
                    bound['seen'] = time.time()
                    gone = bound['streams'] == 0 and st.lease is bound
                    ev = {'id': st.dev['id'], 'lease': bound['id'], 'holder': bound['holder'], 'present': False,
                          'holder_seen': int(bound['seen']), 'takeover_at': st.takeover_at(bound, time.time())}
                if gone:
                    st.hub.publish('presence', ev)


def peaks_of(take, secs, complete=True):
    """Waveform overview: PEAKS_PER_SECOND buckets, per channel the largest |sample| of the
    bucket on a 0..255 scale (linear), computed from the demo signal's envelope."""
    n = int(secs * PEAKS_PER_SECOND)
    base = take['t0']
    chans = []
    for c in range(2):
        vals = []
        for i in range(n):
            t = (base + i / PEAKS_PER_SECOND) % 10000
            db = min(0.0, envelope(t, c) + 8)
            vals.append(max(0, min(255, int(round(255 * 10 ** (db / 20))))))
        chans.append(vals)
    return {'per_second': PEAKS_PER_SECOND, 'seconds': secs, 'channels': 2, 'complete': complete,
            'peaks': chans}


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
        t = time.monotonic()
        ch = []
        for c in range(2):
            rms = envelope(t % 10000, c)
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
        ev = {'id': 'tone', 't': int((t - t0) * 1000), 'ch': ch}
        with state.lock:
            if state.take:
                ev['pos'] = state.pos()      # the take's length in the file, for the counter
        state.hub.publish('level', ev, volatile=True)
        # lease expiry driven by a timer, as the server does (never while a take runs)
        if n % 25 == 0:
            now = time.time()
            with state.lock:
                expired = state.lease if state.lease and state.lease_alive(now) is None else None
                if expired:
                    state.lease = None
            if expired:
                state.hub.publish('expire', {'id': 'tone', 'lease': expired['id'], 'holder': expired['holder']})


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--listen', default='127.0.0.1:0')
    ap.add_argument('--recordings')
    ap.add_argument('--lease-seconds', type=int, default=300)
    ap.add_argument('--takeover-after', type=int, default=120,
                    help='seconds the holder must be away before another client may take over')
    ap.add_argument('--preroll', type=float, default=5.0)
    ap.add_argument('--unsynced', action='store_true', help='report the clock as not synchronised')
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
    state = State(a, rec)
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
