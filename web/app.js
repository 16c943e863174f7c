/* pirec web page: device cards, lease, record toggle, live meters, takes list.
 * Plain JS for iPad Safari 15+; no build step, no external resources (CSP default-src 'self').
 * The API and events are described in docs/api.md; the page itself in docs/web.md. */
(function () {
  'use strict';

  var RENEW_BEFORE_S = 60;        // renew this long before the lease runs out
  var WATCHDOG_MS = 40000;        // no event nor heartbeat (15 s) for this long: reopen
  var IDLE_MS = 15 * 60 * 1000;   // a page nobody touched for this long stops renewing (unless
                                  // it records), so a forgotten screen does not hold a device
  var SLEW_MAX_S = 10;            // the take's counter glides to corrections smaller than this
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
    device_stalled: 'the device stopped delivering audio (it is being reopened)',
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
    takesTimer: 0,
    lastSeenAt: 0,            // Date.now() of the last event from the recorder
    instance: '',             // the server's instance id: another one means it restarted
    lastInteraction: Date.now(),
    wake: null,               // the screen wake lock, while held
    session: '',              // the record-all session recording now ('' none known)
    forward: new Map(),       // take file -> where its copy on the ingest stands ([forward])
    allBusy: false            // a record-all request is on its way
  };

  // Counters the browser test reads (window.pirec.stats).
  var stats = { levels: 0, framesDrawn: 0, connects: 0, opens: 0, events: 0, lastOpenUrl: '',
    wakeLock: 'none', renews: 0 };
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

  // A take's length to the tenth of a second, "1:02.3": the counter, the stop message and
  // the take list all use it on the server's figure, so they agree.
  function fmtTenths(sec) {
    var t = Math.max(0, Math.floor((sec || 0) * 10 + 1e-6));
    return fmtDuration(Math.floor(t / 10)) + '.' + (t % 10);
  }

  function fmtAgo(ms) {         // "0:42", "3:05", "1:02:03"
    return fmtDuration(Math.max(0, ms) / 1000);
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

  // Messages about a device that a new state makes untrue (control regained, say) go.
  function clearMessages(id) {
    var name = devName(id);
    Array.prototype.forEach.call($('messages').querySelectorAll('.msg'), function (el) {
      if ((el.dataset.text || '').indexOf(name) >= 0) el.remove();
    });
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

  // r: a take/renew/takeover answer. `lease` names the lease in events (not secret).
  function setLease(id, r) {
    var prev = memLeases[id] || {};
    var v = { token: r.token, expires: r.expires, lease: r.lease || '', instance: S.instance,
      lease_seconds: r.lease_seconds || prev.lease_seconds || 0 };
    try { sessionStorage.setItem(leaseKey(id), JSON.stringify(v)); }
    catch (e) { /* storage full or disabled: the lease only lives in memory then */ }
    memLeases[id] = v;
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

  // Does this page hold the device's lease? A token, the device taken by that lease (as far
  // as the events tell), and not run out, unless a running take keeps it (the server keeps
  // the lease of whoever controls the device until the take ends).
  function holds(id) {
    var l = lease(id);
    if (!l) return false;
    var d = S.devices.get(id);
    if (d && d.taken === false) return false;
    if (d && d.lease && l.lease && d.lease !== l.lease) return false;
    if (d && d.recording && d.kept_by_take) return true;
    return !(l.expires && l.expires * 1000 <= nowServerMs());
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
      case 401:
        if (b.taken_over_by) return b.taken_over_by + ' took over control of ' + name + '.';
        return 'Your control of ' + name + ' ran out; take it again.';
      case 404:
        if (action === 'delete' || action === 'recordings') return 'That take no longer exists.';
        return name + ' is not plugged in.';
      case 409:
        if (action === 'take' || action === 'takeover') {
          var who = b.holder || 'someone else';
          if (b.present === true) {
            return name + ' is held by ' + who + ', which is connected' +
              (b.expires ? ' (until ' + fmtClock(b.expires) + ' unless it renews)' : '') +
              '. You can take over once ' + who + ' has been away for a while' +
              (b.takeover_at ? ' (from ' + fmtClock(b.takeover_at) + ' at the earliest)' : '') + '.';
          }
          return name + ' is held by ' + who + (b.expires ? ' until ' + fmtClock(b.expires) : '') + '.';
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
    if (err && err.status === 409 && (action === 'take' || action === 'takeover') && id) {
      var d = S.devices.get(id);
      if (d) {
        d.taken = true; d.holder = err.body.holder || d.holder; d.expires = err.body.expires || d.expires;
        if (err.body.takeover_at) d.takeover_at = err.body.takeover_at;
        renderCard(id);
      }
    }
    showMessage(explain(err || {}, id, action));
  }

  // Is this lease (named by the server, or else seen ending later than ours while we are not
  // renewing) another client's? Then ours is gone (there is one lease per device).
  function supersedes(id, leaseId, expires) {
    var l = lease(id);
    if (!l) return false;
    if (leaseId && l.lease) return leaseId !== l.lease;
    return !!(expires && l.expires && expires > l.expires && !renewing[id]);
  }

  // ---- lease actions -------------------------------------------------------------------
  var renewing = {};

  function take(id, how) {
    how = how || 'take';
    return ctl(id, how, null, 'client=' + encodeURIComponent(clientName())).then(function (r) {
      setLease(id, r);
      var d = S.devices.get(id);
      if (d) {
        d.taken = true; d.holder = r.holder || clientName(); d.expires = r.expires; d.lease = r.lease || '';
        if (r.kept_by_take != null) d.kept_by_take = r.kept_by_take;
      }
      closeConfirm(id);
      clearMessages(id);
      renderCard(id);
      say('You control ' + devName(id) + (r.previous ? ', taken over from ' + r.previous : '') + '.');
      reopen('lease');           // the event stream now tells the server this page is here
    }, function (e) {
      fail(e, id, how);
      if (how === 'takeover') { closeConfirm(id); fetchStatus(); }
    });
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

  // A renewal replaces the token: what needs the token waits for a renewal in flight.
  function afterRenew(id) {
    var all = [];
    Object.keys(renewing).forEach(function (k) { if (renewing[k] && (id == null || k === id)) all.push(renewing[k]); });
    return Promise.all(all);
  }

  function renew(id) {
    var l = lease(id);
    if (!l || renewing[id]) return;
    stats.renews++;
    renewing[id] = ctl(id, 'renew', l.token).then(function (r) {
      setLease(id, r);
      var d = S.devices.get(id);
      if (d) {
        d.taken = true; d.expires = r.expires; if (r.holder) d.holder = r.holder;
        if (r.lease) d.lease = r.lease;
        if (r.kept_by_take != null) d.kept_by_take = r.kept_by_take;
      }
      renderCard(id);
    }, function (e) {
      if (e.status === 0) return;          // offline: try again on the next tick
      fail(e, id, 'renew');
    }).then(function () { renewing[id] = null; });
  }

  // Renew leases about to run out, while the page is visible and someone uses it (or it
  // records). now=true: renew every lease at once (the page just came back to the screen).
  function maybeRenew(now) {
    if (document.visibilityState !== 'visible' || !S.connected) return;
    var idle = Date.now() - S.lastInteraction > IDLE_MS;
    S.devices.forEach(function (d, id) {
      var l = lease(id);
      if (!l || !l.expires || !holds(id)) return;
      if (idle && !d.recording) return;       // forgotten: let the lease run out
      var left = l.expires - nowServerMs() / 1000;
      var before = Math.min(RENEW_BEFORE_S, (l.lease_seconds || 600) / 2);
      if (now || left <= before) renew(id);
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
    afterRenew(id).then(function () {
      var cur = lease(id);
      if (!cur) throw new ApiError(401, {}, 'no lease');
      return ctl(id, action, cur.token);
    }).then(function (r) {
      if (action === 'start') {
        startTake(d, r);
        say(devName(id) + ' is recording' + (d.preroll ? ', with ' + d.preroll.toFixed(1) + ' s of pre-roll' : '') + '.');
        fetchStatus();           // the exact position, from the server
      } else {
        endTake(d, r.seconds);
        say(devName(id) + ' stopped after ' + fmtTenths(d.lastSeconds) + '.');
        scheduleTakes(100);
      }
      renderCard(id);
    }, function (e) { fail(e, id, action); }).then(function () {
      btn.removeAttribute('aria-busy');
    });
  }

  // ---- the take's counter ----------------------------------------------------------------
  // It shows the take's length as the file holds it (the pre-roll included), from the server's
  // positions: `pos` in level events, `elapsed` in the status, `pos`/`preroll` in the start
  // answer; between them it runs on this device's clock. It never steps back for a small
  // correction (it waits for the position to catch up) and it never restarts at 0:00.
  function setPos(d, sec) {
    if (typeof sec !== 'number' || !(sec >= 0)) return;
    d.posS = sec;
    d.posAt = performance.now();
  }

  function startTake(d, r) {
    var was = d.recording && d.file === r.file;
    d.recording = true;
    d.file = r.file || d.file;
    if (typeof r.preroll === 'number') d.preroll = r.preroll;
    if (was) return;
    d.shown = 0; d.shownAt = 0;
    if (typeof r.pos === 'number') setPos(d, r.pos);
    else if (typeof r.preroll === 'number') setPos(d, r.preroll);
    else {
      // an older server: the take began at `started`, the pre-roll before the request
      var st = Date.parse(r.started);
      var est = isNaN(st) ? 0 : Math.max(0, Math.min(60, (nowServerMs() - st) / 1000));
      setPos(d, est);
      if (d.preroll == null && est >= 0.5) d.prerollApprox = Math.round(est);
    }
  }

  function endTake(d, seconds) {
    if (typeof seconds === 'number') d.lastSeconds = seconds;
    else if (d.recording) d.lastSeconds = elapsedOf(d);
    d.recording = false;
    d.kept_by_take = false;
    d.posS = null;
  }

  // What the counter shows: the server's position run on by this device's clock, reached
  // smoothly. When a new position disagrees with what is shown by less than SLEW_MAX_S, the
  // counter runs a little faster or slower until they agree (within a second or two) instead
  // of jumping; it never runs backwards. Only a gross difference (a take found running after
  // a long absence) is shown at once.
  function elapsedOf(d) {
    if (!d.recording) return d.lastSeconds || 0;
    if (d.posS == null) return d.shown || 0;
    if (offline()) return d.shown || d.posS;       // what was last known, not a guess
    var now = performance.now();
    var target = d.posS + (now - d.posAt) / 1000;
    var dt = d.shownAt ? (now - d.shownAt) / 1000 : 0;
    d.shownAt = now;
    if (!d.shown || Math.abs(target - d.shown) > SLEW_MAX_S) { d.shown = target; return target; }
    if (dt > 2) { d.shown = Math.max(d.shown, target); return d.shown; }   // was not drawn meanwhile
    var rate = 1 + Math.max(-0.9, Math.min(1, target - d.shown));
    d.shown += dt * rate;
    return d.shown;
  }

  // ---- status --------------------------------------------------------------------------
  function applyStatus(st) {
    if (!st || !Array.isArray(st.devices)) return;
    S.status = st;
    if (st.server_time) {
      var t = Date.parse(st.server_time);
      if (!isNaN(t)) S.offsetMs = t - Date.now();
    }
    if (st.instance) S.instance = st.instance;
    if (Array.isArray(st.forward)) st.forward.forEach(function (f) { onForward(f, true); });
    var seen = {};
    st.devices.forEach(function (nd) {
      seen[nd.id] = true;
      var d = S.devices.get(nd.id) || { meter: null };
      var wasRecording = d.recording, wasFile = d.file;
      Object.keys(nd).forEach(function (k) { if (k !== 'elapsed') d[k] = nd[k]; });
      if (nd.recording) {
        if (!wasRecording || wasFile !== nd.file) { d.shown = 0; d.shownAt = 0; d.recording = true; }
        setPos(d, nd.elapsed || 0);
      } else if (wasRecording) {
        endTake(d);             // the stop event, or the take list, has the exact length
      }
      S.devices.set(nd.id, d);
      // A lease we hold must match the server's view; if the device is free, ours is gone.
      var l = lease(nd.id);
      if (l && (!nd.taken || supersedes(nd.id, nd.lease, nd.expires))) {
        dropLease(nd.id);
        var restarted = (st.instance && l.instance && st.instance !== l.instance) || S.sawClose;
        showMessage(restarted
          ? 'The recorder restarted: your control of ' + devName(nd.id) + ' ended. Take it again to record.'
          : 'Your control of ' + devName(nd.id) + ' ended while this page was away' +
            (nd.taken && nd.holder ? '; ' + nd.holder + ' controls it now.' : '.'));
      }
    });
    S.devices.forEach(function (d, id) { if (!seen[id]) removeDevice(id); });
    renderAll();
    renderDisk(st.disk);
    renderClock(st);
    S.sawClose = false;
  }

  // Answers can arrive out of order (one slow, the next fast), and after an event that is
  // newer than they are: an older answer must not undo what is newer (a take stopped since,
  // a device plugged in since, a copy completed since). Events mark every answer asked for
  // before them as old.
  var statusAsked = 0, statusApplied = 0;
  function fetchStatus() {
    var n = ++statusAsked;
    return api('GET', '/api/status').then(function (st) {
      if (n < statusApplied) return;
      statusApplied = n;
      applyStatus(st);
    }, function () { /* events will tell */ });
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
      preroll: el.querySelector('.preroll'),
      confirm: el.querySelector('.confirm'),
      confirmText: el.querySelector('.confirm-text'),
      confirmYes: el.querySelector('.confirm-yes'),
      meter: newMeter()
    };
    c.leaseBtn.addEventListener('click', function () {
      var d = S.devices.get(id);
      if (!holds(id) && d && canTakeOver(d)) { openConfirm(id); return; }
      c.leaseBtn.setAttribute('aria-busy', 'true');
      var p = holds(id) ? release(id) : take(id);
      p.then(function () { c.leaseBtn.removeAttribute('aria-busy'); });
    });
    c.confirmYes.addEventListener('click', function () { take(id, 'takeover'); });
    el.querySelector('.confirm-no').addEventListener('click', function () { closeConfirm(id); c.leaseBtn.focus(); });
    c.recBtn.addEventListener('click', function () { toggleRecord(id); });
    c.meterBtn.addEventListener('click', function () {
      c.meter.clip = [];
      c.el.dataset.clip = 'false';
      c.meter.dirty = true;
      requestDraw();
    });
    S.cards.set(id, c);
    $('devices').appendChild(el);
    // (in the next frame: sizing the canvas inside the callback would resize it again, a loop)
    if (window.ResizeObserver) new ResizeObserver(function () { requestAnimationFrame(function () { sizeCanvas(c); }); }).observe(c.canvas);
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
    renderAllRow();
  }

  function offline() { return S.everConnected && !S.connected; }

  // Take-over is offered once the server says the holder has been away long enough.
  function canTakeOver(d) {
    // (a second of margin: this page knows the server's clock to about a second)
    return !!(d.taken && d.takeover_at && nowServerMs() / 1000 >= d.takeover_at + 1);
  }

  function renderCard(id) {
    var d = S.devices.get(id);
    if (!d) return;
    var c = S.cards.get(id) || makeCard(id);
    var mine = holds(id);
    var connected = d.connected !== false;
    var off = offline();
    c.el.dataset.held = String(mine);
    c.el.dataset.recording = String(!!d.recording);
    c.el.dataset.connected = String(connected);
    c.el.dataset.offline = String(off);
    // connected but silent (the server's capture watchdog): being reopened, nothing to record
    var stalled = connected && !!d.stalled;
    c.el.dataset.stalled = String(stalled);
    c.name.textContent = d.name || id;
    c.id.textContent = id;
    c.conn.textContent = off ? 'Not in touch' : !connected ? 'Unplugged'
      : stalled ? 'No audio: reopening' : 'Connected';
    var f = d.format || {};
    c.format.textContent = fmtFormat(f.rate, f.bits || bitsOfSample(f.sample), f.channels);
    if (f.channels && c.meter.channels !== f.channels) { c.meter.channels = f.channels; sizeCanvas(c); }

    var other = !mine && d.taken && (leftOf(d) > 0 || d.kept_by_take);
    c.leaseBtn.textContent = mine ? 'Release' : other && canTakeOver(d) ? 'Take over…' : 'Take control';
    // offline nothing can be done; otherwise anyone may try (the server says why not)
    c.leaseBtn.disabled = off || (!mine && !connected);
    c.recBtn.disabled = off || !mine || !connected || (stalled && !d.recording);
    c.recLabel.textContent = d.recording ? 'Stop' : 'Record';
    // the accessible name says what a tap does, as the label shows it
    c.recBtn.setAttribute('aria-label', (d.recording ? 'Stop recording ' : 'Record ') + (d.name || id));
    c.file.textContent = d.recording && d.file ? d.file : '';
    if (off) c.hint.textContent = '';
    else if (!connected) c.hint.textContent = 'Plug the device in to record.';
    else if (stalled) c.hint.textContent = 'The device delivers no audio; pirec is reopening it. Record again when it is back.';
    else if (d.recording && other) c.hint.textContent = 'Recording, controlled by ' + (d.holder || 'another screen') + '.';
    else if (d.recording && !mine) c.hint.textContent = 'Recording. Take control to stop it.';
    else if (!mine && !other) c.hint.textContent = 'Take control to record.';
    else if (!mine) c.hint.textContent = '';
    else c.hint.textContent = d.lastSeconds ? 'Last take: ' + fmtTenths(d.lastSeconds) + '.' : '';
    c.el.querySelector('.rec-meta').classList.toggle('empty', !c.file.textContent && !c.hint.textContent);
    var rec = false;
    S.devices.forEach(function (x) { if (x.recording) rec = true; });
    document.title = rec ? '● Recording · pirec' : 'pirec';
    tickCard(id);
    updateWakeLock();
    renderAllRow();
  }

  // ---- record all: a take on every free device from one instant, one session id ---------
  // Shown with two connected devices or more; like every control it needs this page to
  // control a device (its lease token is what the server checks) and the recorder in touch.
  function renderAllRow() {
    var n = 0, anyRec = false;
    S.devices.forEach(function (d) {
      if (d.connected !== false) n++;
      if (d.recording) anyRec = true;
    });
    if (!anyRec && !S.allBusy) S.session = '';    // its takes ended (stopped one by one)
    var row = $('all-row');
    row.hidden = n < 2;
    var on = !!S.session, off = offline(), token = anyLeaseToken();
    var btn = $('record-all');
    btn.disabled = off || !token || S.allBusy;
    $('record-all-label').textContent = on ? 'Stop all' : 'Record all';
    btn.setAttribute('aria-label', on ? 'Stop all takes of the session' : 'Record all devices');
    row.dataset.session = S.session;
    $('all-hint').textContent = off ? ''
      : on ? 'Recording on every free device since one instant (session ' + S.session + ').'
      : !token ? 'Take control of a device to record on all of them at once.'
      : 'Starts a take on every free device at the same instant.';
  }

  // The answer of /api/record_all/start|stop, or the `session` event (the same object).
  function applySession(r) {
    if (!r || !r.session) return;
    if (r.recording === 'recording') {
      S.session = r.session;
      (r.devices || []).forEach(function (x) {
        var d = S.devices.get(x.id);
        if (d && x.file && !x.error) { startTake(d, { file: x.file, started: r.started }); renderCard(x.id); }
      });
      fetchStatus();            // the takes' exact positions
    } else {
      if (S.session === r.session) S.session = '';
      (r.devices || []).forEach(function (x) {
        var d = S.devices.get(x.id);
        if (d && !x.error && d.recording) { endTake(d, x.seconds); renderCard(x.id); }
      });
      scheduleTakes(100);
    }
    renderAllRow();
  }

  function toggleAll() {
    var action = S.session ? 'stop' : 'start';
    var btn = $('record-all');
    S.allBusy = true;
    btn.setAttribute('aria-busy', 'true');
    renderAllRow();
    afterRenew().then(function () {
      var token = anyLeaseToken();
      if (!token) throw new ApiError(401, {}, 'no lease');
      return api('POST', '/api/record_all/' + action + '/' + encodeURIComponent(token));
    }).then(function (r) {
      var ok = (r.devices || []).filter(function (x) { return !x.error; });
      var bad = (r.devices || []).filter(function (x) { return x.error; });
      applySession(r);
      say(action === 'start' ? 'Recording on ' + ok.length + ' devices.'
        : 'Stopped ' + ok.length + ' takes together.');
      if (bad.length) showMessage(bad.map(function (x) { return devName(x.id) + ': ' + x.error; }).join('; ') + '.');
    }, function (e) {
      var b = e.body || {};
      var m = /^session (\w+) is recording/.exec(b.error || '');
      if (action === 'start' && m) S.session = m[1];       // started elsewhere: offer Stop all
      if (action === 'stop' && e.status === 409) S.session = '';
      showMessage(e.status === 0 ? 'Cannot reach the recorder. Check the Wi-Fi and try again.'
        : e.status === 401 ? 'Your control ran out; take control of a device again to record on all.'
        : m ? 'All devices are recording already (session ' + m[1] + '); Stop all ends them.'
        : (b.error ? b.error.charAt(0).toUpperCase() + b.error.slice(1) : 'The recorder answered ' + e.status) + '.');
    }).then(function () {
      S.allBusy = false;
      btn.removeAttribute('aria-busy');
      renderAllRow();
    });
  }

  function leftOf(d) { return d.expires ? d.expires - nowServerMs() / 1000 : 0; }

  function countdownSpan(text) {
    var cd = document.createElement('span');
    cd.className = 'countdown';
    cd.textContent = text;
    return cd;
  }

  // The parts that change with time: lease text and the take's counter.
  function tickCard(id) {
    var d = S.devices.get(id), c = S.cards.get(id);
    if (!d || !c) return;
    var mine = holds(id);
    var lt = c.leaseText;
    lt.textContent = '';
    if (offline()) {
      // say what is known, and that the recorder does not need this page
      var ago = fmtAgo(Date.now() - S.lastSeenAt);
      lt.textContent = d.recording
        ? 'Last seen recording ' + ago + ' ago; the recorder keeps recording without this page.'
        : 'Last seen ' + ago + ' ago' + (mine ? ', under your control' : d.taken ? ', held by ' + (d.holder || 'someone') : ', free') + '.';
    } else if (mine) {
      var l = lease(id);
      var b = document.createElement('span');
      b.className = 'mine';
      b.textContent = 'You control it';
      lt.appendChild(b);
      lt.appendChild(document.createTextNode(' · '));
      lt.appendChild(countdownSpan(d.recording && d.kept_by_take ? 'until the take ends'
        : fmtDuration(l.expires ? l.expires - nowServerMs() / 1000 : 0) + ' left'));
    } else if (d.taken && (leftOf(d) > 0 || d.kept_by_take)) {
      lt.appendChild(document.createTextNode('Held by ' + (d.holder || 'someone') + ' · '));
      lt.appendChild(countdownSpan(d.recording && d.kept_by_take ? 'until the take ends' : fmtDuration(leftOf(d)) + ' left'));
    } else {
      lt.textContent = d.connected === false ? 'Not available' : 'Free: nobody controls it';
    }
    tickElapsed(d, c);
  }

  function tickElapsed(d, c) {
    var el = elapsedOf(d);
    var txt = fmtTenths(el);
    if (c.elapsed.textContent !== txt) c.elapsed.textContent = txt;
    c.elapsed.classList.toggle('stale', !!d.recording && offline());
    c.el.dataset.elapsed = el.toFixed(2);
    var pre = d.recording ? (d.preroll != null ? d.preroll.toFixed(1) + ' s' : d.prerollApprox ? '~' + d.prerollApprox + ' s' : '') : '';
    var ptxt = pre ? 'incl. ' + pre + ' pre-roll' : '';
    if (c.preroll.textContent !== ptxt) c.preroll.textContent = ptxt;
  }

  // ---- take-over with confirmation ------------------------------------------------------
  function openConfirm(id) {
    var d = S.devices.get(id), c = S.cards.get(id);
    if (!d || !c) return;
    var away = d.holder_seen ? fmtAgo(nowServerMs() - d.holder_seen * 1000) : '';
    c.confirmText.textContent = (d.holder || 'The holder') + ' controls ' + (d.name || id) +
      (away ? ' but has not been seen for ' + away : ' but has gone away') +
      '. Take over? ' + (d.holder || 'It') + ' loses control' + (d.recording ? '; the take goes on' : '') +
      ', and every screen is told.';
    c.confirm.hidden = false;
    c.confirmYes.focus();
  }

  function closeConfirm(id) {
    var c = S.cards.get(id);
    if (c) c.confirm.hidden = true;
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
      // render again what time changed (a lease ran out, a take-over became possible);
      // otherwise only the texts that count
      var c = S.cards.get(id);
      var key = [holds(id), offline(), canTakeOver(d), leftOf(d) > 0].join();
      if (c && c.timeKey !== key) { c.timeKey = key; renderCard(id); }
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
    var dev = S.devices.get(data.id);
    if (dev && dev.recording && typeof data.pos === 'number') setPos(dev, data.pos);
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
    var off = offline();
    // keep <audio> elements that are playing: rebuild only the items that changed
    var old = {};
    Array.prototype.forEach.call(ul.children, function (li) { old[li.dataset.name] = li; });
    var frag = document.createDocumentFragment();
    S.takes.forEach(function (t) {
      var key = JSON.stringify([t.seconds, t.bytes, t.complete, !!token, off, t.peaks]);
      var li = old[t.name];
      if (!li || li.dataset.key !== key) li = makeTake(t, token, key, li, off);
      renderCopy(li, t.name);
      frag.appendChild(li);
    });
    ul.textContent = '';
    ul.appendChild(frag);
    $('no-takes').hidden = S.takes.length > 0;
    $('takes-refresh').disabled = off;
    var note = $('takes-note');
    note.hidden = canFlac && !!token && !off;
    note.textContent = off ? 'Not in touch with the recorder: the takes cannot be played, downloaded or deleted until it is back.'
      : (canFlac ? '' : 'This browser cannot play FLAC: download the takes instead. ') +
        (token ? '' : 'Take control of a device to delete takes.');
  }

  // Where the take's copy on the ingest stands (status `forward`, `forward` events): one
  // line under its name, kept up to date in place.
  function copyText(f) {
    var behind = f.seconds_behind >= 0.5 ? fmtTenths(f.seconds_behind) + ' behind' : 'up to date';
    switch (f.state) {
      case 'sending':
        return f.connected ? 'Copy on the ingest: sending, ' + behind + '.'
          : 'Copy on the ingest: not reachable' + (f.error ? ' (' + f.error + ')' : '') +
            '; ' + behind + ', kept in the local file until it is back.';
      case 'verifying': return 'Copy on the ingest: all sent; the ingest checks it.';
      case 'complete': return 'Copy on the ingest: complete, ' + (f.md5 ? 'MD5 verified.' : 'checked by decoding it (no MD5 after a repair).');
      case 'lost': return 'Copy on the ingest: incomplete (' + fmtBytes(f.remote_bytes || 0) + ' there); the recorder\'s log says why. The local take is whole.';
    }
    return '';
  }

  function renderCopy(li, name) {
    var f = S.forward.get(name);
    var p = li.querySelector('.take-copy');
    if (!f) { if (p) p.remove(); return; }
    if (!p) {
      p = document.createElement('p');
      p.className = 'take-copy';
      li.insertBefore(p, li.querySelector('.take-meta').nextSibling);
    }
    var txt = copyText(f);
    if (p.textContent !== txt) p.textContent = txt;
    p.dataset.state = f.state + (f.state === 'sending' && !f.connected ? '-offline' : '');
  }

  var COPY_RANK = { sending: 0, verifying: 1, complete: 2, lost: 2 };
  // fromStatus: a status answer may have left the server before an event this page already
  // has: a copy never goes back from complete (or checking) to sending
  function onForward(f, fromStatus) {
    if (!f || !f.file) return;
    var had = S.forward.get(f.file);
    if (fromStatus === true && had && (COPY_RANK[f.state] || 0) < (COPY_RANK[had.state] || 0)) return;
    S.forward.set(f.file, f);
    var li = null;
    Array.prototype.forEach.call($('takes').children, function (x) { if (x.dataset.name === f.file) li = x; });
    if (li) renderCopy(li, f.file);
  }

  function makeTake(t, token, key, prev, off) {
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
      t.complete === false && !t.seconds ? '' : fmtTenths(t.seconds || 0), fmtBytes(t.bytes),
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
    var wave = prev && prev.querySelector('.wave');
    if (!wave && t.peaks !== false) wave = makeWave(t, url);
    if (wave) li.appendChild(wave);

    var act = document.createElement('div');
    act.className = 'take-actions';
    var playing = prev && prev.querySelector('audio');
    var complete = t.complete !== false;
    if (playing) {
      act.appendChild(playing);
    } else if (canFlac && complete) {
      var play = document.createElement('button');
      play.type = 'button';
      play.className = 'btn btn-small play';
      play.textContent = '▶ Play';
      play.setAttribute('aria-label', 'Play ' + t.name);
      play.disabled = off;
      play.addEventListener('click', function () {
        var a = document.createElement('audio');
        a.controls = true;
        a.preload = 'none';
        a.src = url;
        play.replaceWith(a);
        if (wave) followPlayback(wave, a);
        var p = a.play();
        if (p && p.catch) p.catch(function () { /* the user can press play on the controls */ });
      });
      act.appendChild(play);
    }
    // a take being written is offered for download only if the server sends it as it grows
    if (complete || t.growing_download === true) {
      var dl = document.createElement('a');
      dl.className = 'btn btn-small btn-quiet download';
      dl.href = url;
      dl.setAttribute('download', t.name);
      dl.textContent = complete ? 'Download' : 'Download so far';
      dl.setAttribute('aria-label', (complete ? 'Download ' : 'Download what is recorded so far of ') + t.name);
      if (off) {
        dl.removeAttribute('href');
        dl.setAttribute('aria-disabled', 'true');
        dl.setAttribute('role', 'link');
        dl.classList.add('disabled');
      }
      act.appendChild(dl);
    }
    if (token && complete) {
      var del = document.createElement('button');
      del.type = 'button';
      del.className = 'btn btn-small btn-danger del';
      del.textContent = 'Delete';
      del.setAttribute('aria-label', 'Delete ' + t.name);
      del.disabled = off;
      var armTimer = 0;
      del.addEventListener('click', function () {
        if (!del.classList.contains('armed')) {      // two taps: no accidental delete
          del.classList.add('armed');
          del.textContent = 'Tap again to delete';
          armTimer = setTimeout(function () { del.classList.remove('armed'); del.textContent = 'Delete'; }, 4000);
          return;
        }
        clearTimeout(armTimer);
        del.setAttribute('aria-busy', 'true');
        afterRenew().then(function () {
          var tok = anyLeaseToken();
          if (!tok) throw new ApiError(401, {}, 'no lease');
          return api('DELETE', url, tok);
        }).then(function () {
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

  // ---- waveform overview of a take ---------------------------------------------------------
  // GET /api/recordings/NAME/peaks: {per_second, seconds, channels, peaks:[[0..255...],...]}
  // (largest |sample| of each slice, linear). Drawn once; playback position on top of it.
  function makeWave(t, url) {
    var box = document.createElement('div');
    box.className = 'wave';
    box.hidden = true;                           // until the peaks arrive (none: stays hidden)
    var cv = document.createElement('canvas');
    cv.setAttribute('role', 'img');
    cv.setAttribute('aria-label', 'Waveform of ' + t.name);
    box.appendChild(cv);
    var pos = document.createElement('div');
    pos.className = 'wave-pos';
    pos.hidden = true;
    box.appendChild(pos);
    box.dataset.seconds = String(t.seconds || 0);
    fetch(url + '/peaks', { cache: 'no-store', credentials: 'same-origin' }).then(function (r) {
      return r.ok ? r.json() : null;
    }).then(function (pk) {
      if (!pk || !Array.isArray(pk.peaks) || !pk.peaks.length) return;
      box.peaks = pk;
      box.hidden = false;
      box.dataset.points = String(pk.peaks[0].length);
      drawWave(box);
    }, function () { /* no overview: the take is still listed */ });
    return box;
  }

  function drawWave(box) {
    var pk = box.peaks, cv = box.firstChild;
    if (!pk || !box.isConnected) return;
    var r = cv.getBoundingClientRect(), dpr = window.devicePixelRatio || 1;
    var W = Math.max(1, Math.round(r.width * dpr)), H = Math.max(1, Math.round(r.height * dpr));
    if (cv.width !== W || cv.height !== H) { cv.width = W; cv.height = H; }
    var ctx = cv.getContext('2d');
    if (!ctx) return;
    ctx.clearRect(0, 0, W, H);
    var style = getComputedStyle(box);
    ctx.fillStyle = style.getPropertyValue('--wave').trim() || '#2c6fbb';
    var n = pk.peaks[0].length, ch = pk.peaks.length, mid = H / 2;
    var total = pk.seconds && pk.per_second ? pk.seconds * pk.per_second : n;
    // one column per device pixel: the largest peak of the slices it covers, mirrored
    for (var x = 0; x < W; x++) {
      var a = Math.floor(x * total / W), b = Math.max(a + 1, Math.floor((x + 1) * total / W));
      if (a >= n) break;
      var v = 0;
      for (var i = a; i < b && i < n; i++) for (var c = 0; c < ch; c++) if (pk.peaks[c][i] > v) v = pk.peaks[c][i];
      var hgt = Math.max(1, (v / 255) * (H / 2 - 1));
      ctx.fillRect(x, mid - hgt, 1, hgt * 2);
    }
    box.dataset.drawn = 'true';
  }

  function followPlayback(box, audio) {
    var pos = box.querySelector('.wave-pos');
    var secs = Number(box.dataset.seconds) || 0;
    var place = function () {
      var d = isFinite(audio.duration) && audio.duration > 0 ? audio.duration : secs;
      if (!d) return;
      pos.hidden = false;
      var f = Math.max(0, Math.min(1, audio.currentTime / d));
      pos.style.left = (f * 100).toFixed(2) + '%';
      box.dataset.position = audio.currentTime.toFixed(2);
    };
    ['timeupdate', 'seeked', 'loadedmetadata'].forEach(function (e) { audio.addEventListener(e, place); });
    // tap the overview to play from there
    box.addEventListener('click', function (e) {
      var r = box.getBoundingClientRect();
      var d = isFinite(audio.duration) && audio.duration > 0 ? audio.duration : secs;
      if (!d || !r.width) return;
      audio.currentTime = Math.max(0, Math.min(d, (e.clientX - r.left) / r.width * d));
      place();
    });
  }

  // ---- events (SSE) --------------------------------------------------------------------
  function setConn(state) {
    var was = document.body.dataset.conn;
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
    $('clock-use').disabled = state !== 'online';
    if (was !== state) { renderAll(); renderTakes(); }
  }

  function open() {
    clearTimeout(S.reconnectTimer);
    if (S.es) { S.es.close(); S.es = null; }
    // ?token= of each lease this page holds: while this stream is open the server knows
    // the holder is here (nobody may take over)
    var q = [];
    if (S.lastEventId) q.push('lastEventId=' + S.lastEventId);
    S.devices.forEach(function (d, id) { var l = lease(id); if (l && holds(id)) q.push('token=' + encodeURIComponent(l.token)); });
    var url = '/api/status/' + Date.now() + (q.length ? '?' + q.join('&') : '');
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
        // a state change: a status answer asked for before it is older than what it says
        if (type !== 'level') statusApplied = statusAsked;
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
      var other = supersedes(d.id, d.lease, d.expires);
      var before = dev.lease;
      dev.taken = true; dev.holder = d.holder; dev.expires = d.expires;
      if (d.lease) dev.lease = d.lease;
      if (d.kept_by_take != null) dev.kept_by_take = d.kept_by_take;
      if (other) dropLease(d.id);
      if (lease(d.id) && d.lease === lease(d.id).lease) {      // our lease, timer restarted
        var l = lease(d.id);
        l.expires = d.expires;
        setLease(d.id, l);
      }
      renderCard(d.id);
      if (!holds(d.id) && before !== d.lease) say(devName(d.id) + ' is now controlled by ' + (d.holder || 'someone') + '.');
    });
    on('takeover', function (d) {
      var dev = S.devices.get(d.id); if (!dev) return;
      var mine = !!lease(d.id) && !(d.lease && lease(d.id).lease === d.lease);
      dev.taken = true; dev.holder = d.holder; dev.expires = d.expires; dev.lease = d.lease || '';
      if (mine) {
        dropLease(d.id);
        showMessage(d.holder + ' took over control of ' + devName(d.id) + '.');
      } else if (!holds(d.id)) {
        showMessage(d.holder + ' took over ' + devName(d.id) + ' from ' + (d.previous || 'its holder') + '.', 'info');
      }
      closeConfirm(d.id);
      renderCard(d.id);
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
      startTake(dev, d);
      if (holds(d.id)) dev.kept_by_take = dev.kept_by_take || d.kept_by_take === true;
      renderCard(d.id);
      say(devName(d.id) + ' started recording.');
      fetchStatus();           // the exact elapsed time
      scheduleTakes();
    });
    on('stop', function (d) {
      var dev = S.devices.get(d.id); if (!dev) return;
      endTake(dev, d.seconds || 0);
      renderCard(d.id);
      var why = STOP_REASONS[d.reason];
      var normal = !d.reason || why === '';
      var msg = devName(d.id) + ' stopped: ' + fmtTenths(d.seconds || 0) + ' recorded';
      if (!normal) msg += ', ' + (why || d.reason) + (d.error ? ' (' + d.error + ')' : '');
      if (d.lost_frames) msg += '; ' + d.lost_frames + ' frames were lost';
      if (!normal || d.lost_frames) showMessage(msg + '.');
      else say(msg + '.');
      scheduleTakes(100);
    });
    // takes deleted by anyone, and new complete takes, reach every page
    on('delete', function (d) {
      if (!d.name) return;
      var had = S.takes.some(function (t) { return t.name === d.name; });
      S.takes = S.takes.filter(function (t) { return t.name !== d.name; });
      renderTakes();
      if (had) say('Take ' + d.name + ' was deleted' + (d.by ? ' by ' + d.by : '') + '.');
    });
    on('take_added', function (t) {
      if (!t.name) return;
      S.takes = S.takes.filter(function (x) { return x.name !== t.name; });
      S.takes.push(t);
      S.takes.sort(function (a, b) { return a.started < b.started ? 1 : a.started > b.started ? -1 : 0; });
      renderTakes();
    });
    on('clock', function () { fetchStatus(); });
    on('session', applySession);
    on('forward', onForward);
    // the holder's screen came or went: when a take-over becomes possible
    on('presence', function (d) {
      var dev = S.devices.get(d.id); if (!dev) return;
      if (d.lease && dev.lease && d.lease !== dev.lease) return;
      dev.takeover_at = d.takeover_at || 0;
      if (d.holder_seen) dev.holder_seen = d.holder_seen;
      renderCard(d.id);
    });
    on('close', function () {
      S.closedByServer = true;
      S.sawClose = true;
      S.connected = false;
      es.close();
      setConn('offline');
      scheduleReconnect(2000);
    });
  }

  function track(e) {
    stats.events++;
    S.lastEventAt = Date.now();
    S.lastSeenAt = S.lastEventAt;
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
  // The page stays usable meanwhile (a tap on Stop right after coming back must work); it
  // shows itself offline only if the new connection fails.
  function reopen(why) {
    S.backoffMs = 1000;
    open();
    fetchStatus();
  }

  // ---- page lifecycle ------------------------------------------------------------------
  // Back on the screen (from the camera app, say): renew at once, so that one tap stops the
  // take, and reconnect.
  document.addEventListener('visibilitychange', function () {
    if (document.visibilityState === 'visible') {
      S.lastInteraction = Date.now();
      S.devices.forEach(function (d, id) { if (lease(id) && (holds(id) || d.recording)) renew(id); });
      reopen('visible');
    }
    updateWakeLock();
  });
  ['pointerdown', 'keydown'].forEach(function (t) {
    document.addEventListener(t, function () { S.lastInteraction = Date.now(); }, true);
  });

  // ---- screen wake lock: while recording or holding control, the screen stays on ---------
  function updateWakeLock() {
    var want = document.visibilityState === 'visible';
    if (want) {
      want = false;
      S.devices.forEach(function (d, id) { if (holds(id) || (d.recording && !offline() && lease(id))) want = true; });
    }
    var wl = navigator.wakeLock;
    if (!wl || typeof wl.request !== 'function') { stats.wakeLock = 'unsupported'; return; }
    if (want && !S.wake && !S.wakePending) {
      S.wakePending = true;
      wl.request('screen').then(function (lock) {
        S.wakePending = false;
        S.wake = lock;
        stats.wakeLock = 'held';
        lock.addEventListener('release', function () {
          if (S.wake === lock) { S.wake = null; stats.wakeLock = 'none'; }
        });
        updateWakeLock();        // things may have changed meanwhile
      }, function () { S.wakePending = false; stats.wakeLock = 'refused'; });
    } else if (!want && S.wake) {
      var l = S.wake;
      S.wake = null;
      stats.wakeLock = 'none';
      l.release().catch(function () { /* already released */ });
    }
  }

  // ---- keyboard: foot pedals send PageDown or Space; R for a keyboard ---------------------
  function onKey(e) {
    if (e.defaultPrevented || e.altKey || e.ctrlKey || e.metaKey || e.repeat) return;
    var t = e.target, tag = t && t.tagName;
    if (tag === 'INPUT' || tag === 'TEXTAREA' || tag === 'SELECT' || (t && t.isContentEditable)) return;
    var key = e.key;
    var isSpace = key === ' ' || key === 'Spacebar';
    if (!(isSpace || key === 'r' || key === 'R' || key === 'PageDown')) return;
    // Space on a focused control keeps its usual meaning (press that control)
    if (isSpace && t && t !== document.body && /^(BUTTON|A|SUMMARY|AUDIO|VIDEO)$/.test(tag)) return;
    var target = null;
    S.devices.forEach(function (d, id) { if (!target && holds(id) && d.connected !== false) target = id; });
    e.preventDefault();
    if (offline()) { showMessage('Not in touch with the recorder: the key does nothing until it is back.', 'info'); return; }
    if (!target) { showMessage('Take control of a device to record with the keys.', 'info'); return; }
    toggleRecord(target);
  }
  document.addEventListener('keydown', onKey);

  // ---- the recorder's clock ---------------------------------------------------------------
  function renderClock(st) {
    var box = $('clock-warning');
    var unsynced = st.clock_synchronised === false;
    var offset = !!st.clock_source && st.clock_source !== 'system';
    var dismissed = false;
    try { dismissed = sessionStorage.getItem('pirec.clockDismissed') === (offset ? 'offset' : 'unsynced'); } catch (e) { /* ignore */ }
    box.hidden = !unsynced || dismissed;
    if (box.hidden) return;
    var useBtn = $('clock-use');
    if (offset) {
      $('clock-text').textContent = 'Recorder clock not set: take names use the time of ' + st.clock_source + '.';
      useBtn.hidden = true;
    } else {
      $('clock-text').textContent = 'Recorder clock not set: take names may have a wrong date.';
      useBtn.hidden = false;
      useBtn.textContent = 'Use my time';
      useBtn.setAttribute('aria-label', 'Use my time (this ' + defaultClientName().replace('browser', 'device') + '’s) for take names');
    }
  }

  function useMyTime() {
    if (!anyLeaseToken()) { showMessage('Take control of a device first, then give the recorder this screen’s time.'); return; }
    afterRenew().then(function () {
      return api('POST', '/api/clock?now=' + Date.now(), anyLeaseToken());
    }).then(function () {
      say('The recorder now names takes with this screen’s time.');
      fetchStatus();
    }, function (e) {
      if (e.status === 404) showMessage('This recorder cannot take the time from a screen (its software is older).');
      else fail(e, null, 'clock');
    });
  }
  window.addEventListener('pageshow', function (e) { if (e.persisted) reopen('pageshow'); });
  window.addEventListener('online', function () { reopen('online'); });
  window.addEventListener('offline', function () {
    S.connected = false;
    if (S.es) { S.es.close(); S.es = null; }
    setConn('offline');
    scheduleReconnect(2000);
  });
  function redrawWaves() { Array.prototype.forEach.call(document.querySelectorAll('.wave'), drawWave); }
  window.addEventListener('resize', function () {
    S.cards.forEach(sizeCanvas);
    redrawWaves();
  });
  // the overview's colour follows light and dark
  if (window.matchMedia) {
    var dark = window.matchMedia('(prefers-color-scheme: dark)');
    if (dark.addEventListener) dark.addEventListener('change', redrawWaves);
    else if (dark.addListener) dark.addListener(redrawWaves);      // Safari before 14
  }

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
    $('clock-use').addEventListener('click', useMyTime);
    $('clock-dismiss').addEventListener('click', function () {
      var st = S.status || {};
      var offset = !!st.clock_source && st.clock_source !== 'system';
      try { sessionStorage.setItem('pirec.clockDismissed', offset ? 'offset' : 'unsynced'); } catch (e) { /* ignore */ }
      $('clock-warning').hidden = true;
    });
    $('takes-refresh').addEventListener('click', function () { loadTakes(); });
    $('record-all').addEventListener('click', toggleAll);
    fetchStatus();
    open();
    loadTakes();
    setInterval(tick, 500);
    // the take's counter shows tenths: 10 updates a second, only while a take runs
    setInterval(function () {
      if (document.visibilityState !== 'visible') return;
      S.devices.forEach(function (d, id) { var c = S.cards.get(id); if (d.recording && c) tickElapsed(d, c); });
    }, 100);
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init);
  else init();
})();
