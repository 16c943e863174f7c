/* pirec web page: device cards, lease, record toggle, live meters, takes list.
 * Plain JS for iPad Safari 15+; no build step, no external resources (CSP default-src 'self').
 * The API and events are described in docs/api.md; the page itself in docs/web.md. */
(function () {
  'use strict';

  var RENEW_BEFORE_S = 60;        // renew this long before the lease runs out
  var WATCHDOG_MS = 40000;        // no event nor heartbeat (15 s) for this long: reopen
  var METER_MIN_DB = -60;
  var METER_TICKS = [-48, -24, -12, -6, -3, 0];
  // Display ballistics, applied when a level event arrives (the meter is drawn only then:
  // redrawing at the display rate for 25 Hz data costs an iPad that films a lot of battery).
  var PEAK_FALL_DB_S = 24;
  var RMS_FALL_DB_S = 18;

  // `reason` of a stop event (see src/server/recorder.c); '' = an ordinary stop.
  var STOP_REASONS = {
    stopped: '', user: '', ended: '',
    limit: 'it reached the longest take allowed',
    disk_full: 'the disk is nearly full',
    device_gone: 'the device was unplugged',
    unplugged: 'the device was unplugged',
    shutdown: 'the recorder shut down',
    error: 'because of an error'
  };

  // ---- state ---------------------------------------------------------------------------
  var S = {
    status: null,             // last status object
    devices: new Map(),       // id -> device object (as in status, kept up to date by events)
    cards: new Map(),         // id -> card view
    offsetMs: 0,              // server clock - local clock
    es: null,
    lastEventId: 0,
    connected: false,
    everConnected: false,
    closedByServer: false,
    lastEventAt: 0,
    reconnectTimer: 0,
    backoffMs: 1000,
    takes: [],
    takesTimer: 0
  };

  // Counters the browser test reads (window.pirec.stats).
  var stats = { levels: 0, framesDrawn: 0, connects: 0, opens: 0, events: 0, lastOpenUrl: '' };
  window.pirec = { stats: stats, state: S };   // feedLevel is added below (for tests)

  var $ = function (id) { return document.getElementById(id); };

  // ---- small helpers -------------------------------------------------------------------
  function nowServerMs() { return Date.now() + S.offsetMs; }

  function pad2(n) { return (n < 10 ? '0' : '') + n; }

  function fmtDuration(sec) {
    sec = Math.max(0, Math.floor(sec));
    var h = Math.floor(sec / 3600), m = Math.floor((sec % 3600) / 60), s = sec % 60;
    return h ? h + ':' + pad2(m) + ':' + pad2(s) : m + ':' + pad2(s);
  }

  function fmtLeft(sec) {       // "2 h 13 min", "12 min", "45 s"
    sec = Math.max(0, Math.floor(sec));
    if (sec >= 3600) {
      var h = Math.floor(sec / 3600), m = Math.floor((sec % 3600) / 60);
      return h + ' h' + (m ? ' ' + m + ' min' : '');
    }
    if (sec >= 60) return Math.floor(sec / 60) + ' min';
    return sec + ' s';
  }

  function fmtBytes(b) {
    if (!(b >= 0)) return '';
    var u = ['B', 'kB', 'MB', 'GB', 'TB'], i = 0;
    while (b >= 1000 && i < u.length - 1) { b /= 1000; i++; }
    return (i === 0 ? b : b.toFixed(b < 10 ? 1 : 0)) + ' ' + u[i];
  }

  function fmtRate(r) {
    if (!r) return '';
    var k = r / 1000;
    return (Math.round(k * 10) / 10) + ' kHz';
  }

  function bitsOfSample(sample) {
    var m = /(\d+)/.exec(sample || '');
    if (!m) return 0;
    var b = parseInt(m[1], 10);
    return /^S24/.test(sample) ? 24 : b;
  }

  function fmtFormat(rate, bits, channels) {
    var parts = [];
    if (rate) parts.push(fmtRate(rate));
    if (bits) parts.push(bits + '-bit');
    if (channels) parts.push(channels + ' ch');
    return parts.join(' · ');
  }

  // Server unix seconds -> local HH:MM (corrected for the server's clock offset).
  function fmtClock(unixSec) {
    var d = new Date(unixSec * 1000 - S.offsetMs);
    return pad2(d.getHours()) + ':' + pad2(d.getMinutes());
  }

  function fmtStarted(iso) {
    var d = new Date(iso);
    if (isNaN(d.getTime())) return iso || '';
    try {
      return d.toLocaleString(undefined, { weekday: 'short', day: 'numeric', month: 'short',
        hour: '2-digit', minute: '2-digit', second: '2-digit' });
    } catch (e) { return d.toString(); }
  }

  function devName(id) {
    var d = S.devices.get(id);
    return d && d.name ? d.name : id;
  }

  // ---- messages ------------------------------------------------------------------------
  function say(text) {           // polite announcement for screen readers
    var live = $('live');
    live.textContent = '';
    setTimeout(function () { live.textContent = text; }, 30);
  }

  function showMessage(text, kind) {
    var box = $('messages');
    // the same text already shown: bring it to the top again instead of stacking copies
    var items = box.querySelectorAll('.msg');
    for (var i = 0; i < items.length; i++) {
      if (items[i].dataset.text === text) items[i].remove();
    }
    var el = document.createElement('p');
    el.className = 'msg' + (kind === 'info' ? ' info' : '');
    el.dataset.text = text;
    el.setAttribute('role', kind === 'info' ? 'status' : 'alert');
    var span = document.createElement('span');
    span.textContent = text;
    var close = document.createElement('button');
    close.type = 'button';
    close.setAttribute('aria-label', 'Dismiss');
    close.textContent = '×';
    close.addEventListener('click', function () { el.remove(); });
    el.appendChild(span);
    el.appendChild(close);
    box.insertBefore(el, box.firstChild);
    while (box.children.length > 4) box.lastChild.remove();
    setTimeout(function () { el.remove(); }, kind === 'info' ? 5000 : 15000);
  }

  // ---- client name and leases (sessionStorage per device) ------------------------------
  function defaultClientName() {
    var ua = navigator.userAgent || '';
    if (/iPad/.test(ua) || (/Macintosh/.test(ua) && navigator.maxTouchPoints > 1)) return 'iPad';
    if (/iPhone/.test(ua)) return 'iPhone';
    if (/Android/.test(ua)) return 'Android';
    if (/Macintosh/.test(ua)) return 'Mac';
    if (/Windows/.test(ua)) return 'Windows';
    return 'browser';
  }

  function clientName() {
    var v = '';
    try { v = localStorage.getItem('pirec.client') || ''; } catch (e) { /* private mode */ }
    return v || defaultClientName();
  }

  function leaseKey(id) { return 'pirec.lease.' + id; }

  function getLease(id) {
    try {
      var v = sessionStorage.getItem(leaseKey(id));
      if (!v) return null;
      var l = JSON.parse(v);
      return l && l.token ? l : null;
    } catch (e) { return null; }
  }

  function setLease(id, token, expires) {
    try { sessionStorage.setItem(leaseKey(id), JSON.stringify({ token: token, expires: expires })); }
    catch (e) { /* storage full or disabled: the lease only lives in memory then */ }
    memLeases[id] = { token: token, expires: expires };
  }

  var memLeases = {};
  function lease(id) { return getLease(id) || memLeases[id] || null; }

  function dropLease(id) {
    try { sessionStorage.removeItem(leaseKey(id)); } catch (e) { /* ignore */ }
    delete memLeases[id];
  }

  function anyLeaseToken() {
    var found = null;
    S.devices.forEach(function (d, id) { if (!found && holds(id)) found = lease(id).token; });
    return found;
  }

  // Does this page hold the device's lease? A token, not known to be expired, and the
  // device taken (as far as the events tell).
  function holds(id) {
    var l = lease(id);
    if (!l) return false;
    if (l.expires && l.expires * 1000 <= nowServerMs()) return false;
    var d = S.devices.get(id);
    return !d || d.taken !== false;
  }

  // ---- API -----------------------------------------------------------------------------
  function ApiError(status, body, message) {
    this.status = status; this.body = body || {}; this.message = message;
  }

  function api(method, path, token) {
    var headers = { 'Accept': 'application/json' };
    if (token) headers['Authorization'] = 'Bearer ' + token;
    return fetch(path, { method: method, headers: headers, cache: 'no-store', credentials: 'same-origin' })
      .then(function (r) {
        return r.text().then(function (t) {
          var body = {};
          try { body = t ? JSON.parse(t) : {}; } catch (e) { body = {}; }
          if (!r.ok || body.state === false) throw new ApiError(r.status, body, body.error || ('HTTP ' + r.status));
          return body;
        });
      }, function () {
        throw new ApiError(0, {}, 'Cannot reach the recorder.');
      });
  }

  function ctl(id, action, token, query) {
    var p = '/api/recording/' + encodeURIComponent(id) + '/' + action;
    if (token) p += '/' + encodeURIComponent(token);
    if (query) p += '?' + query;
    return api('POST', p);
  }

  // Readable text for an API error in the context of device id and action.
  function explain(err, id, action) {
    var name = id ? devName(id) : '';
    var b = err.body || {};
    switch (err.status) {
      case 0: return 'Cannot reach the recorder. Check the Wi-Fi and try again.';
      case 401: return 'Your control of ' + name + ' ran out; take it again.';
      case 404:
        if (action === 'delete' || action === 'recordings') return 'That take no longer exists.';
        return name + ' is not plugged in.';
      case 409:
        if (action === 'take') {
          return name + ' is held by ' + (b.holder || 'someone else') +
            (b.expires ? ' until ' + fmtClock(b.expires) : '') + '.';
        }
        if (action === 'start') return name + ' is already recording.';
        if (action === 'stop') return name + ' is not recording.';
        if (action === 'delete') return 'That take is still being written; stop it first.';
        return b.error || 'Conflict.';
      case 507: return 'The disk is nearly full: ' + name + ' cannot start a take.';
      default:
        return (name ? name + ': ' : '') + (b.error || b.message || ('the recorder answered ' + err.status)) + '.';
    }
  }

  function fail(err, id, action) {
    if (err && err.status === 401 && id) { dropLease(id); renderCard(id); }
    if (err && err.status === 409 && action === 'take' && id) {
      var d = S.devices.get(id);
      if (d) { d.taken = true; d.holder = err.body.holder || d.holder; d.expires = err.body.expires || d.expires; renderCard(id); }
    }
    showMessage(explain(err || {}, id, action));
  }

  // A lease of the device that ends later than ours and is not our own renewal in flight:
  // someone took the device after ours ran out (there is one lease per device).
  function supersedes(id, expires) {
    var l = lease(id);
    return !!(l && expires && l.expires && expires > l.expires && !renewing[id]);
  }

  // ---- lease actions -------------------------------------------------------------------
  var renewing = {};

  function take(id) {
    return ctl(id, 'take', null, 'client=' + encodeURIComponent(clientName())).then(function (r) {
      setLease(id, r.token, r.expires);
      var d = S.devices.get(id);
      if (d) { d.taken = true; d.holder = r.holder || clientName(); d.expires = r.expires; }
      renderCard(id);
      say('You control ' + devName(id) + '.');
    }, function (e) { fail(e, id, 'take'); });
  }

  function release(id) {
    var l = lease(id);
    if (!l) return Promise.resolve();
    return ctl(id, 'release', l.token).then(function () {
      dropLease(id);
      var d = S.devices.get(id);
      if (d) { d.taken = false; d.holder = ''; d.expires = 0; }
      renderCard(id);
      say('You released ' + devName(id) + '.');
    }, function (e) {
      if (e.status === 401 || e.status === 404) { dropLease(id); renderCard(id); return; }
      fail(e, id, 'release');
    });
  }

  function renew(id) {
    var l = lease(id);
    if (!l || renewing[id]) return;
    renewing[id] = true;
    ctl(id, 'renew', l.token).then(function (r) {
      setLease(id, r.token, r.expires);
      var d = S.devices.get(id);
      if (d) { d.taken = true; d.expires = r.expires; if (r.holder) d.holder = r.holder; }
      renderCard(id);
    }, function (e) {
      if (e.status === 0) return;          // offline: try again on the next tick
      fail(e, id, 'renew');
    }).then(function () { renewing[id] = false; });
  }

  function maybeRenew() {
    if (document.visibilityState !== 'visible') return;
    S.devices.forEach(function (d, id) {
      var l = lease(id);
      if (!l || !l.expires) return;
      var left = l.expires - nowServerMs() / 1000;
      if (left <= RENEW_BEFORE_S && left > -5) renew(id);
    });
  }

  // ---- recording -----------------------------------------------------------------------
  function toggleRecord(id) {
    var d = S.devices.get(id);
    var l = lease(id);
    if (!d || !l) return;
    var card = S.cards.get(id);
    var btn = card.recBtn;
    btn.setAttribute('aria-busy', 'true');
    var action = d.recording ? 'stop' : 'start';
    ctl(id, action, l.token).then(function (r) {
      if (action === 'start') {
        d.recording = true; d.file = r.file || d.file;
        d.elapsedBase = 0; d.elapsedAt = performance.now();
        say(devName(id) + ' is recording.');
      } else {
        d.recording = false;
        say(devName(id) + ' stopped after ' + fmtDuration(r.seconds || 0) + '.');
        scheduleTakes(100);
      }
      renderCard(id);
    }, function (e) { fail(e, id, action); }).then(function () {
      btn.removeAttribute('aria-busy');
    });
  }

  function elapsedOf(d) {
    if (!d.recording) return d.lastSeconds || 0;
    if (d.elapsedAt == null) return 0;
    return d.elapsedBase + (performance.now() - d.elapsedAt) / 1000;
  }

  // ---- status --------------------------------------------------------------------------
  function applyStatus(st) {
    if (!st || !Array.isArray(st.devices)) return;
    S.status = st;
    if (st.server_time) {
      var t = Date.parse(st.server_time);
      if (!isNaN(t)) S.offsetMs = t - Date.now();
    }
    var seen = {};
    st.devices.forEach(function (nd) {
      seen[nd.id] = true;
      var d = S.devices.get(nd.id) || { meter: null };
      var wasRecording = d.recording;
      Object.keys(nd).forEach(function (k) { d[k] = nd[k]; });
      if (nd.recording) {
        d.elapsedBase = nd.elapsed || 0;
        d.elapsedAt = performance.now();
      } else if (wasRecording) {
        d.lastSeconds = elapsedOf({ recording: true, elapsedBase: d.elapsedBase || 0, elapsedAt: d.elapsedAt });
      }
      S.devices.set(nd.id, d);
      // A lease we hold must match the server's view; if the device is free, ours is gone.
      var l = lease(nd.id);
      if (l && (!nd.taken || supersedes(nd.id, nd.expires))) dropLease(nd.id);
    });
    S.devices.forEach(function (d, id) { if (!seen[id]) removeDevice(id); });
    renderAll();
    renderDisk(st.disk);
    $('clock-warning').hidden = st.clock_synchronised !== false;
  }

  function fetchStatus() {
    return api('GET', '/api/status').then(applyStatus, function () { /* events will tell */ });
  }

  function removeDevice(id) {
    S.devices.delete(id);
    dropLease(id);
    var c = S.cards.get(id);
    if (c) { c.el.remove(); S.cards.delete(id); }
  }

  function renderDisk(disk) {
    var box = $('disk');
    if (!disk) { box.hidden = true; return; }
    box.hidden = false;
    var left = disk.seconds_left;
    $('disk-left').textContent = left != null ? fmtLeft(left) + ' left' : '';
    $('disk-free').textContent = disk.free_bytes != null ? fmtBytes(disk.free_bytes) + ' free on the disk' : '';
    box.classList.toggle('low', left != null && left < 15 * 60);
  }

  // ---- device cards --------------------------------------------------------------------
  function makeCard(id) {
    var frag = $('tpl-device').content.cloneNode(true);
    var el = frag.querySelector('.card');
    el.dataset.device = id;
    var c = {
      el: el,
      name: el.querySelector('.dev-name'),
      id: el.querySelector('.dev-id'),
      conn: el.querySelector('.dev-conn'),
      format: el.querySelector('.dev-format'),
      canvas: el.querySelector('canvas'),
      meterBtn: el.querySelector('.meter-btn'),
      leaseText: el.querySelector('.lease-text'),
      leaseBtn: el.querySelector('.btn-lease'),
      recBtn: el.querySelector('.btn-record'),
      recLabel: el.querySelector('.rec-label'),
      elapsed: el.querySelector('.elapsed'),
      file: el.querySelector('.rec-file'),
      hint: el.querySelector('.rec-hint'),
      meter: newMeter()
    };
    c.leaseBtn.addEventListener('click', function () {
      c.leaseBtn.setAttribute('aria-busy', 'true');
      var p = holds(id) ? release(id) : take(id);
      p.then(function () { c.leaseBtn.removeAttribute('aria-busy'); });
    });
    c.recBtn.addEventListener('click', function () { toggleRecord(id); });
    c.meterBtn.addEventListener('click', function () {
      c.meter.clip = [];
      c.el.dataset.clip = 'false';
      c.meter.dirty = true;
      requestDraw();
    });
    S.cards.set(id, c);
    $('devices').appendChild(el);
    if (window.ResizeObserver) new ResizeObserver(function () { sizeCanvas(c); }).observe(c.canvas);
    sizeCanvas(c);
    return c;
  }

  function renderAll() {
    // keep the cards in the order of the status
    var ids = [];
    S.devices.forEach(function (d, id) { ids.push(id); });
    ids.forEach(function (id) { renderCard(id); });
    $('no-devices').hidden = ids.length > 0 || !S.everConnected;
    $('devices').classList.toggle('two', ids.length > 1);
  }

  function renderCard(id) {
    var d = S.devices.get(id);
    if (!d) return;
    var c = S.cards.get(id) || makeCard(id);
    var mine = holds(id);
    var connected = d.connected !== false;
    c.el.dataset.held = String(mine);
    c.el.dataset.recording = String(!!d.recording);
    c.el.dataset.connected = String(connected);
    c.name.textContent = d.name || id;
    c.id.textContent = id;
    c.conn.textContent = connected ? 'Connected' : 'Unplugged';
    var f = d.format || {};
    c.format.textContent = fmtFormat(f.rate, f.bits || bitsOfSample(f.sample), f.channels);
    if (f.channels && c.meter.channels !== f.channels) { c.meter.channels = f.channels; sizeCanvas(c); }

    c.leaseBtn.textContent = mine ? 'Release' : 'Take control';
    c.leaseBtn.disabled = !mine && (!connected || (d.taken && leftOf(d) > 0));
    c.recBtn.disabled = !mine || !connected;
    c.recBtn.setAttribute('aria-pressed', String(!!d.recording));
    c.recLabel.textContent = d.recording ? 'Stop' : 'Record';
    // a toggle keeps its name; aria-pressed says whether it records
    c.recBtn.setAttribute('aria-label', 'Record ' + (d.name || id));
    c.file.textContent = d.recording && d.file ? d.file : '';
    if (!connected) c.hint.textContent = 'Plug the device in to record.';
    else if (d.recording && !mine) c.hint.textContent = 'Recording. Take control to stop it.';
    else if (!mine) c.hint.textContent = 'Take control to record.';
    else c.hint.textContent = d.lastSeconds ? 'Last take: ' + fmtDuration(d.lastSeconds) + '.' : '';
    c.el.querySelector('.rec-meta').classList.toggle('empty', !c.file.textContent && !c.hint.textContent);
    var rec = false;
    S.devices.forEach(function (x) { if (x.recording) rec = true; });
    document.title = rec ? '● Recording · pirec' : 'pirec';
    tickCard(id);
  }

  function leftOf(d) { return d.expires ? d.expires - nowServerMs() / 1000 : 0; }

  // The parts that change every second: countdown and elapsed time.
  function tickCard(id) {
    var d = S.devices.get(id), c = S.cards.get(id);
    if (!d || !c) return;
    var mine = holds(id);
    var txt;
    c.leaseText.textContent = '';
    if (mine) {
      var l = lease(id);
      var left = l.expires ? l.expires - nowServerMs() / 1000 : 0;
      var b = document.createElement('span');
      b.className = 'mine';
      b.textContent = 'You control it';
      c.leaseText.appendChild(b);
      c.leaseText.appendChild(document.createTextNode(' · '));
      var cd = document.createElement('span');
      cd.className = 'countdown';
      cd.textContent = fmtDuration(left) + ' left';
      c.leaseText.appendChild(cd);
    } else if (d.taken && leftOf(d) > 0) {
      txt = 'Held by ' + (d.holder || 'someone') + ' · ';
      c.leaseText.appendChild(document.createTextNode(txt));
      var cd2 = document.createElement('span');
      cd2.className = 'countdown';
      cd2.textContent = fmtDuration(leftOf(d)) + ' left';
      c.leaseText.appendChild(cd2);
    } else {
      c.leaseText.textContent = d.connected === false ? 'Not available' : 'Free: nobody controls it';
    }
    var el = elapsedOf(d);
    c.elapsed.textContent = fmtDuration(el);
    c.el.dataset.elapsed = el.toFixed(1);
  }

  function tick() {
    // meters whose level events stopped (device stalled, connection lost) fall to nothing
    var now = performance.now();
    S.cards.forEach(function (c) {
      var m = c.meter;
      if (m.last && now - m.last > 1500) {
        for (var i = 0; i < m.channels; i++) { m.peak[i] = -120; m.rms[i] = -120; m.hold[i] = null; }
        m.last = 0;
        m.dirty = true;
        requestDraw();
      }
    });
    S.devices.forEach(function (d, id) {
      // a lease seen to run out (the expire event may be late or missed)
      var c = S.cards.get(id);
      if (c && c.el.dataset.held === 'true' && !holds(id)) renderCard(id);
      else if (c && d.taken && leftOf(d) <= 0 && c.leaseBtn.disabled && d.connected !== false) renderCard(id);
      else tickCard(id);
    });
    maybeRenew();
    // watchdog: a dead connection that the browser did not notice (iPad Safari)
    if (S.es && S.connected && Date.now() - S.lastEventAt > WATCHDOG_MS) reopen('watchdog');
  }

  // ---- meters --------------------------------------------------------------------------
  function newMeter() {
    return { channels: 2, peak: [], rms: [], hold: [], clip: [], clips: [],
      dirty: true, w: 0, h: 0, dpr: 1, last: 0 };
  }

  function sizeCanvas(c) {
    var r = c.canvas.getBoundingClientRect();
    var dpr = window.devicePixelRatio || 1;
    var ch = c.meter.channels || 2;
    var cssH = Math.round(18 + ch * (r.width >= 600 ? 30 : 24) + 6);
    if (c.canvas.style.height !== cssH + 'px') c.canvas.style.height = cssH + 'px';
    var w = Math.max(1, Math.round(r.width * dpr)), h = Math.max(1, Math.round(cssH * dpr));
    if (c.canvas.width !== w || c.canvas.height !== h) {
      c.canvas.width = w; c.canvas.height = h;
    }
    c.meter.w = r.width; c.meter.h = cssH; c.meter.dpr = dpr;
    c.meter.dirty = true;
    requestDraw();
  }

  // IEC 60268-18 style deflection, mapped so that -60 dB is 0 and 0 dB is 1.
  function iec(db) {
    var v;
    if (db < -70) v = 0;
    else if (db < -60) v = (db + 70) * 0.25;
    else if (db < -50) v = (db + 60) * 0.5 + 2.5;
    else if (db < -40) v = (db + 50) * 0.75 + 7.5;
    else if (db < -30) v = (db + 40) * 1.5 + 15;
    else if (db < -20) v = (db + 30) * 2 + 30;
    else if (db < 0) v = (db + 20) * 2.5 + 50;
    else v = 100;
    return Math.max(0, Math.min(1, (v - 2.5) / 97.5));
  }

  function onLevel(data) {
    var c = S.cards.get(data.id);
    if (!c || !Array.isArray(data.ch)) return;
    stats.levels++;
    var m = c.meter;
    if (data.ch.length !== m.channels) { m.channels = data.ch.length; sizeCanvas(c); }
    var now = performance.now();
    // seconds since the previous event: how far the shown peak and RMS may fall meanwhile
    var dt = m.last ? Math.min(0.5, (now - m.last) / 1000) : 0;
    for (var i = 0; i < data.ch.length; i++) {
      var x = data.ch[i] || {};
      var p = typeof x.peak === 'number' ? x.peak : -120;
      var r = typeof x.rms === 'number' ? x.rms : -120;
      m.peak[i] = m.peak[i] == null ? p : Math.max(p, m.peak[i] - PEAK_FALL_DB_S * dt);
      m.rms[i] = m.rms[i] == null ? r : Math.max(r, m.rms[i] - RMS_FALL_DB_S * dt);
      m.hold[i] = typeof x.hold === 'number' ? x.hold : p;
      // clip counts samples at full scale since the capture started: latch on an increase
      var n = x.clip | 0;
      if (m.clips[i] != null && n > m.clips[i]) m.clip[i] = true;
      m.clips[i] = n;
    }
    if (m.clip.some(Boolean)) c.el.dataset.clip = 'true';
    m.last = now;
    m.dirty = true;
    c.el.dataset.levels = String((parseInt(c.el.dataset.levels || '0', 10) + 1));
    requestDraw();
  }

  window.pirec.feedLevel = onLevel;

  // One animation frame draws the meters that changed; nothing is drawn between events.
  var drawPending = false;
  function requestDraw() {
    if (drawPending) return;
    drawPending = true;
    requestAnimationFrame(drawAll);
  }

  function drawAll() {
    drawPending = false;
    S.cards.forEach(function (c) {
      if (c.meter.dirty) { drawMeter(c); c.meter.dirty = false; }
    });
  }

  // Geometry of a meter in CSS pixels.
  function meterLayout(m) {
    var W = m.w, H = m.h, left = 26, right = 60;   // channel label, numeric readout
    var x0 = left, x1 = W - right, n = m.channels || 1, top = 18, gap = 6;
    return { W: W, H: H, x0: x0, x1: x1, bw: x1 - x0, right: right, top: top, gap: gap, n: n,
      bh: (H - top - 4 - gap * (n - 1)) / n };
  }

  var METER_FONT = '-apple-system, BlinkMacSystemFont, "Segoe UI", Roboto, Arial, sans-serif';

  // What does not move (scale, labels, empty tracks, ticks) is drawn once per size into a
  // canvas of its own; each level event then copies it and draws only the bars.
  function drawMeterBackground(c) {
    var m = c.meter, L = meterLayout(m);
    var bg = m.bg || (m.bg = document.createElement('canvas'));
    bg.width = c.canvas.width; bg.height = c.canvas.height;
    var ctx = bg.getContext('2d');
    ctx.setTransform(m.dpr, 0, 0, m.dpr, 0, 0);
    var xs = function (db) { return L.x0 + iec(db) * L.bw; };
    ctx.font = '600 12px ' + METER_FONT;
    ctx.textBaseline = 'top';
    ctx.textAlign = 'center';
    ctx.fillStyle = '#d9dde2';
    // labels from 0 dB down, each only where it does not overlap the one to its right
    var edge = L.x1 + 8;
    METER_TICKS.concat([METER_MIN_DB]).sort(function (a, b) { return b - a; }).forEach(function (t) {
      var label = String(t), tw = ctx.measureText(label).width;
      var x = t === 0 ? L.x1 - tw / 2 + 2 : t === METER_MIN_DB ? L.x0 + tw / 2 : xs(t);
      if (x + tw / 2 > edge - 4) return;
      ctx.fillText(label, x, 2);
      edge = x - tw / 2;
    });
    ctx.textAlign = 'left';
    ctx.fillText('dB', L.x1 + 8, 2);
    ctx.font = '700 14px ' + METER_FONT;
    ctx.textAlign = 'center';
    ctx.textBaseline = 'middle';
    for (var i = 0; i < L.n; i++) {
      var y = L.top + i * (L.bh + L.gap);
      ctx.fillStyle = '#2c3138';
      ctx.fillRect(L.x0, y, L.bw, L.bh);
      ctx.fillStyle = '#d9dde2';
      ctx.fillText(L.n === 2 ? (i ? 'R' : 'L') : String(i + 1), L.x0 / 2, y + L.bh / 2);
    }
    m.bgKey = [bg.width, bg.height, L.n].join('x');
  }

  function drawMeter(c) {
    var m = c.meter, ctx = c.canvas.getContext('2d');
    if (!ctx || !m.w) return;
    var L = meterLayout(m), n = L.n, x0 = L.x0, x1 = L.x1, bh = L.bh;
    if (m.bgKey !== [c.canvas.width, c.canvas.height, n].join('x')) drawMeterBackground(c);
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.clearRect(0, 0, c.canvas.width, c.canvas.height);
    ctx.drawImage(m.bg, 0, 0);
    ctx.setTransform(m.dpr, 0, 0, m.dpr, 0, 0);
    var xs = function (db) { return x0 + iec(db) * L.bw; };
    var yellowAt = xs(-12), redAt = xs(-3);
    ctx.font = '700 14px ' + METER_FONT;
    ctx.textBaseline = 'middle';
    for (var i = 0; i < n; i++) {
      var y = L.top + i * (bh + L.gap);
      // RMS bar in zones
      var r = m.rms[i] != null ? xs(m.rms[i]) : x0;
      if (r > x0) {
        ctx.fillStyle = '#2fc25b'; ctx.fillRect(x0, y, Math.min(r, yellowAt) - x0, bh);
        if (r > yellowAt) { ctx.fillStyle = '#f2c318'; ctx.fillRect(yellowAt, y, Math.min(r, redAt) - yellowAt, bh); }
        if (r > redAt) { ctx.fillStyle = '#ff3b30'; ctx.fillRect(redAt, y, r - redAt, bh); }
        // ticks over the bar
        ctx.fillStyle = 'rgba(0,0,0,0.55)';
        for (var k = 0; k < METER_TICKS.length; k++) {
          var tx = Math.round(xs(METER_TICKS[k]));
          if (METER_TICKS[k] < 0 && tx < r) ctx.fillRect(tx, y, 1, bh);
        }
      }
      // peak line
      if (m.peak[i] != null && m.peak[i] > METER_MIN_DB) {
        var px = xs(m.peak[i]);
        ctx.fillStyle = m.peak[i] > -3 ? '#ff6a60' : '#ffffff';
        ctx.fillRect(Math.min(px, x1 - 2), y, 2, bh);
      }
      // peak hold marker
      if (m.hold[i] != null && m.hold[i] > METER_MIN_DB) {
        var hx = Math.min(xs(m.hold[i]), x1 - 4);
        ctx.fillStyle = m.hold[i] > -3 ? '#ff3b30' : '#ffd84a';
        ctx.fillRect(hx - 2, y, 4, bh);
      }
      // readout: peak hold in dB, or CLIP latched until tapped
      if (m.clip[i]) {
        ctx.fillStyle = '#ff1f1f';
        ctx.fillRect(x1 + 6, y, L.right - 8, bh);
        ctx.fillStyle = '#ffffff';
        ctx.textAlign = 'center';
        ctx.fillText('CLIP', x1 + 6 + (L.right - 8) / 2, y + bh / 2);
      } else {
        ctx.fillStyle = '#f4f6f8';
        ctx.textAlign = 'right';
        var hv = m.hold[i];
        ctx.fillText(hv == null || hv <= -99 ? '–∞' : hv.toFixed(1), L.W - 6, y + bh / 2);
      }
    }
    stats.framesDrawn++;
  }

  // ---- takes ---------------------------------------------------------------------------
  function scheduleTakes(ms) {
    clearTimeout(S.takesTimer);
    S.takesTimer = setTimeout(loadTakes, ms || 300);
  }

  function loadTakes() {
    return api('GET', '/api/recordings').then(function (r) {
      S.takes = Array.isArray(r.recordings) ? r.recordings : [];
      renderTakes();
    }, function (e) {
      if (e.status !== 0) showMessage('Could not list the takes: ' + e.message);
    });
  }

  var canFlac = (function () {
    try { var a = document.createElement('audio'); return !!(a.canPlayType && a.canPlayType('audio/flac')); }
    catch (e) { return false; }
  })();

  function renderTakes() {
    var ul = $('takes');
    var token = anyLeaseToken();
    // keep <audio> elements that are playing: rebuild only the items that changed
    var old = {};
    Array.prototype.forEach.call(ul.children, function (li) { old[li.dataset.name] = li; });
    var frag = document.createDocumentFragment();
    S.takes.forEach(function (t) {
      var key = JSON.stringify([t.seconds, t.bytes, t.complete, !!token]);
      var li = old[t.name];
      if (!li || li.dataset.key !== key) li = makeTake(t, token, key, li);
      frag.appendChild(li);
    });
    ul.textContent = '';
    ul.appendChild(frag);
    $('no-takes').hidden = S.takes.length > 0;
    var note = $('takes-note');
    note.hidden = canFlac && !!token;
    note.textContent = (canFlac ? '' : 'This browser cannot play FLAC: download the takes instead. ') +
      (token ? '' : 'Take control of a device to delete takes.');
  }

  function makeTake(t, token, key, prev) {
    var li = document.createElement('li');
    li.className = 'take';
    li.dataset.name = t.name;
    li.dataset.key = key;
    var url = '/api/recordings/' + encodeURIComponent(t.name);
    var h = document.createElement('p');
    h.className = 'take-name';
    h.textContent = t.name;
    li.appendChild(h);
    var meta = document.createElement('p');
    meta.className = 'take-meta';
    [devName(t.device), fmtStarted(t.started),
      t.complete === false && !t.seconds ? '' : fmtDuration(t.seconds || 0), fmtBytes(t.bytes),
      fmtFormat(t.rate, t.bits, t.channels) || t.format].forEach(function (s, i) {
      if (!s) return;
      var sp = document.createElement('span');
      sp.textContent = s;
      sp.className = ['dev', 'started', 'dur', 'size', 'fmt'][i];
      meta.appendChild(sp);
    });
    if (t.complete === false) {
      var pt = document.createElement('span');
      pt.className = 'partial';
      pt.textContent = 'being written';
      meta.appendChild(pt);
    }
    li.appendChild(meta);

    var act = document.createElement('div');
    act.className = 'take-actions';
    var playing = prev && prev.querySelector('audio');
    if (playing) {
      act.appendChild(playing);
    } else if (canFlac && t.complete !== false) {
      var play = document.createElement('button');
      play.type = 'button';
      play.className = 'btn btn-small play';
      play.textContent = '▶ Play';
      play.setAttribute('aria-label', 'Play ' + t.name);
      play.addEventListener('click', function () {
        var a = document.createElement('audio');
        a.controls = true;
        a.preload = 'none';
        a.src = url;
        play.replaceWith(a);
        var p = a.play();
        if (p && p.catch) p.catch(function () { /* the user can press play on the controls */ });
      });
      act.appendChild(play);
    }
    var dl = document.createElement('a');
    dl.className = 'btn btn-small btn-quiet download';
    dl.href = url;
    dl.setAttribute('download', t.name);
    dl.textContent = 'Download';
    dl.setAttribute('aria-label', 'Download ' + t.name);
    act.appendChild(dl);
    if (token && t.complete !== false) {
      var del = document.createElement('button');
      del.type = 'button';
      del.className = 'btn btn-small btn-danger del';
      del.textContent = 'Delete';
      del.setAttribute('aria-label', 'Delete ' + t.name);
      var armTimer = 0;
      del.addEventListener('click', function () {
        if (!del.classList.contains('armed')) {      // two taps: no accidental delete
          del.classList.add('armed');
          del.textContent = 'Tap again to delete';
          armTimer = setTimeout(function () { del.classList.remove('armed'); del.textContent = 'Delete'; }, 4000);
          return;
        }
        clearTimeout(armTimer);
        var tok = anyLeaseToken();
        if (!tok) { showMessage('Take control of a device to delete takes.'); return; }
        del.setAttribute('aria-busy', 'true');
        api('DELETE', url, tok).then(function () {
          say('Deleted ' + t.name + '.');
          S.takes = S.takes.filter(function (x) { return x.name !== t.name; });
          renderTakes();
        }, function (e) {
          del.removeAttribute('aria-busy');
          if (e.status === 401) { showMessage('Your control ran out; take a device again to delete takes.'); fetchStatus(); return; }
          fail(e, null, 'delete');
        });
      });
      act.appendChild(del);
    }
    li.appendChild(act);
    return li;
  }

  // ---- events (SSE) --------------------------------------------------------------------
  function setConn(state) {
    document.body.dataset.conn = state;
    var el = $('conn');
    el.dataset.state = state;
    el.textContent = state === 'online' ? 'Live' : state === 'connecting' ? 'Connecting…' : 'Offline';
    var banner = $('banner');
    if (state === 'online') {
      banner.hidden = true;
    } else if (state === 'offline' || (state === 'connecting' && S.everConnected)) {
      banner.hidden = false;
      $('banner-title').textContent = S.closedByServer ? 'Recorder stopped' : 'Offline';
      $('banner-text').textContent = S.closedByServer
        ? 'The recorder is shutting down or restarting. Reconnecting…'
        : (navigator.onLine === false ? 'No network. ' : 'Lost the connection to the recorder. ') +
          'Reconnecting… Recordings continue on the recorder.';
    }
  }

  function open() {
    clearTimeout(S.reconnectTimer);
    if (S.es) { S.es.close(); S.es = null; }
    var url = '/api/status/' + Date.now() + (S.lastEventId ? '?lastEventId=' + S.lastEventId : '');
    var es;
    try { es = new EventSource(url); } catch (e) { scheduleReconnect(); return; }
    S.es = es;
    stats.opens++;
    stats.lastOpenUrl = url;
    if (!S.connected) setConn('connecting');
    es.onopen = function () {
      if (S.es !== es) return;
      S.connected = true;
      S.closedByServer = false;
      S.everConnected = true;
      S.backoffMs = 1000;
      S.lastEventAt = Date.now();
      stats.connects++;
      setConn('online');
      scheduleTakes(50);
    };
    // native connection errors and the server's `error` event share the name
    es.addEventListener('error', function (e) {
      if (S.es !== es) return;
      if (e && typeof e.data === 'string' && e.data) {
        track(e);
        var d = parse(e);
        if (d && d.message) showMessage((d.id ? devName(d.id) + ': ' : '') + d.message);
        return;
      }
      S.connected = false;
      if (es.readyState === EventSource.CLOSED) { setConn('offline'); scheduleReconnect(); }
      else setConn('connecting');
    });
    var on = function (type, fn) {
      es.addEventListener(type, function (e) {
        if (S.es !== es) return;
        track(e);
        var d = parse(e);
        if (d !== undefined) fn(d);
      });
    };
    on('status', applyStatus);
    on('level', onLevel);
    on('add', function () { fetchStatus(); });
    on('remove', function (d) {
      if (!d.id) return;
      var had = holds(d.id), name = devName(d.id);
      removeDevice(d.id);
      renderAll();
      showMessage(name + ' was unplugged' + (had ? '; your control of it ended.' : '.'), 'info');
    });
    on('take', function (d) {
      var dev = S.devices.get(d.id); if (!dev) return;
      dev.taken = true; dev.holder = d.holder; dev.expires = d.expires;
      if (supersedes(d.id, d.expires)) dropLease(d.id);
      renderCard(d.id);
      if (!holds(d.id)) say(devName(d.id) + ' is now controlled by ' + (d.holder || 'someone') + '.');
    });
    var freed = function (why) {
      return function (d) {
        var dev = S.devices.get(d.id); if (!dev) return;
        var had = !!lease(d.id);
        dev.taken = false; dev.holder = ''; dev.expires = 0;
        if (why === 'expire' && had) {
          dropLease(d.id);
          showMessage('Your control of ' + devName(d.id) + ' ran out; take it again.');
        } else if (why === 'release' && lease(d.id)) {
          dropLease(d.id);
        }
        renderCard(d.id);
        renderTakes();
      };
    };
    on('release', freed('release'));
    on('expire', freed('expire'));
    on('record', function (d) {
      var dev = S.devices.get(d.id); if (!dev) return;
      if (!dev.recording) {
        dev.recording = true;
        var st = Date.parse(d.started);
        dev.elapsedBase = isNaN(st) ? 0 : Math.max(0, (nowServerMs() - st) / 1000);
        dev.elapsedAt = performance.now();
      }
      dev.file = d.file;
      renderCard(d.id);
      say(devName(d.id) + ' started recording.');
      fetchStatus();           // the exact elapsed time
      scheduleTakes();
    });
    on('stop', function (d) {
      var dev = S.devices.get(d.id); if (!dev) return;
      dev.recording = false;
      dev.lastSeconds = d.seconds || 0;
      renderCard(d.id);
      var why = STOP_REASONS[d.reason];
      var normal = !d.reason || why === '';
      var msg = devName(d.id) + ' stopped: ' + fmtDuration(d.seconds || 0) + ' recorded';
      if (!normal) msg += ', ' + (why || d.reason) + (d.error ? ' (' + d.error + ')' : '');
      if (d.lost_frames) msg += '; ' + d.lost_frames + ' frames were lost';
      if (!normal || d.lost_frames) showMessage(msg + '.');
      else say(msg + '.');
      scheduleTakes(100);
    });
    on('close', function () {
      S.closedByServer = true;
      S.connected = false;
      es.close();
      setConn('offline');
      scheduleReconnect(2000);
    });
  }

  function track(e) {
    stats.events++;
    S.lastEventAt = Date.now();
    var id = parseInt(e.lastEventId, 10);
    if (id > 0) S.lastEventId = id;
  }

  function parse(e) {
    try { return JSON.parse(e.data); } catch (x) { return undefined; }
  }

  function scheduleReconnect(ms) {
    clearTimeout(S.reconnectTimer);
    var delay = ms || S.backoffMs;
    S.backoffMs = Math.min(S.backoffMs * 2, 15000);
    S.reconnectTimer = setTimeout(function () {
      if (navigator.onLine === false) { scheduleReconnect(); return; }
      open();
      fetchStatus();
    }, delay);
  }

  // Close and reopen: iPad Safari drops the connection of a page in the background
  // without telling it; Last-Event-ID (here ?lastEventId=) replays what was missed.
  function reopen(why) {
    S.connected = false;
    S.backoffMs = 1000;
    open();
    fetchStatus();
  }

  // ---- page lifecycle ------------------------------------------------------------------
  document.addEventListener('visibilitychange', function () {
    if (document.visibilityState === 'visible') { reopen('visible'); maybeRenew(); }
  });
  window.addEventListener('pageshow', function (e) { if (e.persisted) reopen('pageshow'); });
  window.addEventListener('online', function () { reopen('online'); });
  window.addEventListener('offline', function () {
    S.connected = false;
    if (S.es) { S.es.close(); S.es = null; }
    setConn('offline');
    scheduleReconnect(2000);
  });
  window.addEventListener('resize', function () { S.cards.forEach(sizeCanvas); });

  function init() {
    var input = $('client-name');
    input.value = clientName();
    input.addEventListener('change', function () {
      var v = input.value.trim().slice(0, 40);
      try { if (v) localStorage.setItem('pirec.client', v); else localStorage.removeItem('pirec.client'); }
      catch (e) { /* ignore */ }
      input.value = clientName();
    });
    $('banner-retry').addEventListener('click', function () { reopen('retry'); });
    $('takes-refresh').addEventListener('click', function () { loadTakes(); });
    fetchStatus();
    open();
    loadTakes();
    setInterval(tick, 500);
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init);
  else init();
})();
