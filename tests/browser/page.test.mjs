// Browser test of the pirec web page against the real server (or the mock), in Debian's
// Chromium (playwright-core) or in WebKitGTK (WebKitWebDriver + MiniBrowser under Xvfb).
//
//   node tests/browser/page.test.mjs --base-url http://127.0.0.1:PORT [--engine chromium|webkit]
//        [--server-pid PID] [--artifacts DIR] [--restart-bin BIN --restart-tmp DIR]
//
// Against `pirec serve --demo` (tests/integration/test_browser.sh) or, while developing,
// against tests/browser/mock_server.py. With --server-pid the last steps stop that server
// (SIGTERM), check that the page says so, and (with --restart-bin) start it again.
// Every wait is for a condition with a deadline; no fixed sleeps.
import fs from 'node:fs';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { launch } from './engine.mjs';
import { T, parseArgs, log, counts, step, assert, until, secondsOf, dom, CARD, cardAttr,
  artifactsDir, axeCheck, setPrefix } from './lib.mjs';

const args = parseArgs(process.argv.slice(2));
const base = (args['base-url'] || '').replace(/\/$/, '');
if (!base) { console.error('usage: page.test.mjs --base-url URL [--engine chromium|webkit] [--server-pid PID] [--artifacts DIR]'); process.exit(2); }
const engine = args.engine || 'chromium';
const artifacts = artifactsDir(args);
const serverPid = args['server-pid'] ? parseInt(args['server-pid'], 10) : 0;
const shot = (name) => path.join(artifacts, `${engine === 'chromium' ? '' : engine + '-'}${name}.png`);
setPrefix(`[${engine}] `);

const C = (sel) => `${CARD} ${sel}`;
const leaseOf = (p, id) => p.eval((d) => JSON.parse(sessionStorage.getItem('pirec.lease.' + d) || 'null'), id);
const accessibility = [];             // axe-core violations, reported by the last step

const browser = await launch(engine, { chromium: args.chromium });
let restarted = null;                 // a server this script started again (stopped at the end)
let exitCode = 1;
const pages = [];
try {
  const ipad = await browser.newPage({ width: 820, height: 1180 });
  pages.push(ipad);
  let dev = '';

  await step('iPad: the page loads and shows the demo device card, connected, with its format', async () => {
    const st = await ipad.goto(base + '/');
    assert(st === 200, 'GET / answers 200');
    await dom.waitFor(ipad, CARD);
    dev = await cardAttr(ipad, 'data-device');
    assert(dev, 'the card names its device');
    await until('connected card', async () => (await cardAttr(ipad, 'data-connected')) === 'true');
    const fmt = await dom.text(ipad, C('.dev-format'));
    assert(/\d+(\.\d+)? kHz · \d+-bit · \d+ ch/.test(fmt), `format reads like "48 kHz · 16-bit · 2 ch": "${fmt}"`);
    assert((await dom.text(ipad, C('.dev-name'))).length > 0, 'device name shown');
    await until('connection shown as live', async () => (await dom.text(ipad, '#conn')) === 'Live');
    assert(!(await dom.visible(ipad, '#banner')), 'no offline banner when connected');
    await until('disk time left shown', async () => / left$/.test(await dom.text(ipad, '#disk-left')));
  });

  await step('without the lease the record button is disabled and "Take control" is offered', async () => {
    assert(await dom.disabled(ipad, C('.btn-record')), 'record disabled');
    assert((await dom.text(ipad, C('.btn-lease'))) === 'Take control', 'take control offered');
  });

  const canvasLit = (p) => p.eval((sel) => {
    const c = document.querySelector(sel);
    const d = c.getContext('2d').getImageData(0, Math.round(c.height * 0.45), c.width, 1).data;
    let n = 0;
    for (let i = 0; i < d.length; i += 4) if (d[i + 1] > 150 && d[i + 2] < 120) n++;
    return n;
  }, C('canvas.meter'));

  await step('the meter canvas is drawn from level events and changes over time', async () => {
    await until('level events counted', async () => Number(await cardAttr(ipad, 'data-levels')) >= 5);
    const size = await ipad.eval((sel) => {
      const c = document.querySelector(sel);
      return { w: c.width, cw: c.getBoundingClientRect().width, dpr: devicePixelRatio };
    }, C('canvas.meter'));
    assert(size.w === Math.round(size.cw * size.dpr), `canvas backing store follows devicePixelRatio ${size.dpr} (${size.w} vs ${size.cw})`);
    const snap = () => ipad.eval((sel) => document.querySelector(sel).toDataURL(), C('canvas.meter'));
    const a = await snap();
    const n0 = Number(await cardAttr(ipad, 'data-levels'));
    await until('different pixels', async () => (await snap()) !== a, 5000);
    await until('more level events', async () => Number(await cardAttr(ipad, 'data-levels')) > n0 + 10, 5000);
    // the bars are not empty: some lit green/yellow/red pixels in the first channel's row
    const lit = await canvasLit(ipad);
    assert(lit > 10, `meter bars lit (${lit} pixels)`);
  });

  await step('the meters are drawn only when new levels arrive (not at the display rate)', async () => {
    const s0 = await ipad.eval(() => Object.assign({}, window.pirec.stats));
    const s1 = await until('40 more level events', async () => {
      const s = await ipad.eval(() => Object.assign({}, window.pirec.stats));
      return s.levels >= s0.levels + 40 ? s : null;
    }, 10000);
    const frames = s1.framesDrawn - s0.framesDrawn, levels = s1.levels - s0.levels;
    assert(frames <= levels + 2, `${frames} meter frames drawn for ${levels} level events`);
  });

  await step('a clip latches the red CLIP flag until the meter is tapped', async () => {
    await ipad.eval((id) => window.pirec.feedLevel({ id, t: 0, ch: [
      { peak: 0, rms: -6, hold: 0, clip: 1e9 }, { peak: -20, rms: -30, hold: -20, clip: 0 }] }), dev);
    await until('clip flag', async () => (await cardAttr(ipad, 'data-clip')) === 'true', 2000);
    const redInReadout = () => ipad.eval((sel) => {
      const c = document.querySelector(sel);
      const dpr = window.devicePixelRatio, W = c.width / dpr, H = c.height / dpr;
      const bh = (H - 18 - 4 - 6) / 2;
      const y = Math.round((18 + bh / 2) * dpr);
      const d = c.getContext('2d').getImageData(Math.round((W - 50) * dpr), y, Math.round(44 * dpr), 1).data;
      let n = 0;
      for (let i = 0; i < d.length; i += 4) if (d[i] > 200 && d[i + 1] < 80 && d[i + 2] < 80) n++;
      return n;
    }, C('canvas.meter'));
    await until('CLIP drawn in red', async () => (await redInReadout()) > 20, 2000);
    const n = Number(await cardAttr(ipad, 'data-levels'));
    await until('more levels', async () => Number(await cardAttr(ipad, 'data-levels')) > n + 10);
    assert((await cardAttr(ipad, 'data-clip')) === 'true', 'still latched after more level events');
    await ipad.click(C('.meter-btn'));
    await until('clip reset', async () => (await cardAttr(ipad, 'data-clip')) === 'false', 2000);
    await until('CLIP no longer drawn', async () => (await redInReadout()) === 0, 2000);
  });

  const countdown = async (p) => secondsOf((await dom.text(p, C('.countdown'))).replace(' left', ''));

  await step('take control: the lease shows with a countdown, the token is kept per device', async () => {
    await ipad.click(C('.btn-lease'));
    await until('held', async () => (await cardAttr(ipad, 'data-held')) === 'true');
    const lt = await dom.text(ipad, C('.lease-text'));
    assert(/You control it · \d+:\d\d left/.test(lt), `lease text: "${lt}"`);
    assert((await dom.text(ipad, C('.btn-lease'))) === 'Release', 'release offered');
    assert(!(await dom.disabled(ipad, C('.btn-record'))), 'record enabled');
    const stored = await leaseOf(ipad, dev);
    assert(stored && stored.token, 'token in sessionStorage');
    const c1 = await countdown(ipad);
    await until('countdown runs', async () => (await countdown(ipad)) < c1, 4000);
  });

  await step('the page renews its lease by itself before it runs out (when the lease is short)', async () => {
    const l0 = await countdown(ipad);
    const lease = (await leaseOf(ipad, dev)).lease_seconds || l0;
    const before = Math.min(60, lease / 2);           // when the page renews
    if (l0 - before > 30) { log(`    (lease of ${l0} s: renewal comes ${before} s before the end; not waited for)`); return; }
    const tok0 = (await leaseOf(ipad, dev)).token;
    await until('a new token', async () => (await leaseOf(ipad, dev)).token !== tok0, (l0 - before + 8) * 1000);
    await until('countdown went up', async () => (await countdown(ipad)) > before);
    assert((await cardAttr(ipad, 'data-held')) === 'true', 'still held');
  });

  const phone = await browser.newPage({ width: 390, height: 844 });
  pages.push(phone);

  await step('phone: a second watcher sees who holds the device, cannot record, and may try to take control', async () => {
    await phone.goto(base + '/');
    await dom.waitFor(phone, CARD);
    await until('held by someone shown', async () => /^Held by .+ · \d+:\d\d left$/.test(await dom.text(phone, C('.lease-text'))));
    assert(await dom.disabled(phone, C('.btn-record')), 'record disabled without the lease');
    assert(!(await dom.disabled(phone, C('.btn-lease'))), 'the phone may try to take control');
    await phone.click(C('.btn-lease'));
    await until('a clear answer', async () => /Demo tone is held by .+(until \d\d:\d\d|connected)/.test(await dom.text(phone, '#messages')));
    assert((await cardAttr(phone, 'data-held')) === 'false', 'the phone did not get it');
    assert((await cardAttr(ipad, 'data-held')) === 'true', 'the iPad kept it');
  });

  // The counter, sampled in the page every 50 ms: [wall ms, shown seconds].
  const startSampling = (p) => p.eval((sel) => {
    window.__samples = [];
    const el = document.querySelector(sel);
    window.__sampler = setInterval(() => window.__samples.push([performance.now(), parseFloat(el.dataset.elapsed || '0')]), 50);
  }, CARD);
  const stopSampling = (p) => p.eval(() => { clearInterval(window.__sampler); return window.__samples; });
  // A counter that runs on: never back, never ahead of the time that passed by more than 1 s.
  const jumps = (samples) => {
    const bad = [];
    for (let i = 1; i < samples.length; i++) {
      const dw = (samples[i][0] - samples[i - 1][0]) / 1000, dc = samples[i][1] - samples[i - 1][1];
      if (samples[i - 1][1] > 0 && (dc < -0.05 || dc > dw + 1)) bad.push(`${samples[i - 1][1].toFixed(2)} -> ${samples[i][1].toFixed(2)} in ${dw.toFixed(2)} s`);
    }
    return bad;
  };

  let file = '';
  await step('record two seconds: the button says Stop (and its name too), the counter includes the pre-roll from the first frame, every watcher sees it', async () => {
    const firstShown = ipad.eval((sel) => new Promise((resolve) => {
      // the first counter the page shows after the tap, and the pre-roll label beside it
      const card = document.querySelector(sel);
      const mo = new MutationObserver(() => {
        if (card.dataset.recording === 'true') { mo.disconnect(); resolve({ shown: card.querySelector('.elapsed').textContent, pre: card.querySelector('.preroll').textContent }); }
      });
      mo.observe(card, { attributes: true, subtree: true, childList: true, characterData: true });
    }), CARD);
    await ipad.click(C('.btn-record'));
    const first = await firstShown;
    await until('recording', async () => (await cardAttr(ipad, 'data-recording')) === 'true');
    assert((await dom.text(ipad, C('.rec-label'))) === 'Stop', 'the toggle now says Stop');
    const name = await dom.name(ipad, C('.btn-record'));
    assert(/^Stop\b/.test(name) && name.includes('Stop'), `accessible name of the button says Stop: "${name}"`);
    assert(/incl\. ~?\d+(\.\d)? s pre-roll/.test(first.pre) && secondsOf(first.shown) >= 1,
      `from the first frame the counter includes the pre-roll and says so: "${first.shown}" "${first.pre}"`);
    await startSampling(ipad);
    await until('phone sees the take', async () => (await cardAttr(phone, 'data-recording')) === 'true');
    await until('phone hint', async () => /Recording, controlled by/.test(await dom.text(phone, C('.rec-hint'))));
    const e0 = secondsOf(await dom.text(ipad, C('.elapsed')));
    await until('elapsed grew by 2 s', async () => secondsOf(await dom.text(ipad, C('.elapsed'))) >= e0 + 2, 10000);
    // a re-sync (back from the background) must not make the counter jump
    const c0 = await ipad.eval(() => window.pirec.stats.connects);
    await ipad.eval(() => document.dispatchEvent(new Event('visibilitychange')));
    await until('reconnected', async () => (await ipad.eval(() => window.pirec.stats.connects)) > c0);
    const e1 = secondsOf(await dom.text(ipad, C('.elapsed')));
    await until('elapsed grew again', async () => secondsOf(await dom.text(ipad, C('.elapsed'))) >= e1 + 1, 10000);
    const bad = jumps(await stopSampling(ipad));
    assert(bad.length === 0, `the counter jumped: ${bad.join(', ')}`);
    await until('phone elapsed >= 2 s', async () => secondsOf(await dom.text(phone, C('.elapsed'))) >= 2, 5000);
    file = await dom.text(ipad, C('.rec-file'));
    assert(/\.flac$/.test(file), `file name shown: "${file}"`);
    await ipad.screenshot(shot('page-ipad-recording'), { fullPage: true });
    await phone.screenshot(shot('page-phone-recording'), { fullPage: true });
  });

  let href = '';
  const TAKE = () => `.take[data-name="${file}"]`;
  await step('while a take is written the list offers no download of it', async () => {
    await dom.waitFor(ipad, TAKE());
    if ((await dom.count(ipad, `${TAKE()} .partial`)) === 0) { log('    (the list shows the take complete already)'); return; }
    assert((await dom.count(ipad, `${TAKE()} a.download`)) === 0 ||
      /so far/.test(await dom.text(ipad, `${TAKE()} a.download`)), 'no plain Download of a take being written');
  });

  await step('stop: the take appears in the list with its duration, and downloads as audio/flac', async () => {
    await ipad.click(C('.btn-record'));
    await until('stopped', async () => (await cardAttr(ipad, 'data-recording')) === 'false');
    assert((await dom.text(ipad, C('.rec-label'))) === 'Record' && /^Record\b/.test(await dom.name(ipad, C('.btn-record'))), 'Record again, by name too');
    await until('phone sees the stop', async () => (await cardAttr(phone, 'data-recording')) === 'false');
    assert((await dom.count(ipad, '#messages .msg')) === 0,
      `an ordinary stop is no error: "${await dom.text(ipad, '#messages')}"`);
    await dom.waitFor(ipad, TAKE());
    await until('complete take listed', async () => (await dom.count(ipad, `${TAKE()} .partial`)) === 0);
    const dur = secondsOf(await dom.text(ipad, `${TAKE()} .dur`));
    assert(dur >= 2 && dur < 30, `duration of the take ${dur} s`);
    // the counter, the list and the server agree to the tenth of a second
    const counter = await dom.text(ipad, C('.elapsed'));
    assert(counter === await dom.text(ipad, `${TAKE()} .dur`), `counter "${counter}" = list "${await dom.text(ipad, `${TAKE()} .dur`)}"`);
    const listed = (await (await fetch(base + '/api/recordings')).json()).recordings.find((r) => r.name === file);
    assert(Math.floor(listed.seconds * 10 + 1e-6) === Math.round(dur * 10), `list ${dur} s, server ${listed.seconds} s`);
    assert(/kHz/.test(await dom.text(ipad, `${TAKE()} .fmt`)), 'format in the list');
    await dom.waitFor(phone, TAKE());
    href = await dom.attr(ipad, `${TAKE()} a.download`, 'href');
    const res = await fetch(base + href);
    assert(res.status === 200, `download answers 200 (got ${res.status})`);
    assert(/^audio\/flac/.test(res.headers.get('content-type') || ''), `audio/flac (got ${res.headers.get('content-type')})`);
    const body = Buffer.from(await res.arrayBuffer());
    assert(body.length > 4 && body.subarray(0, 4).toString('latin1') === 'fLaC', 'a FLAC stream');
    assert((await dom.count(ipad, `${TAKE()} .del`)) === 1, 'delete offered to the lease holder');
    assert((await dom.count(phone, `${TAKE()} .del`)) === 0, 'no delete without a lease');
  });

  await step('play: the take loads in the browser\'s own audio player and lasts as long as recorded', async () => {
    await ipad.click(`${TAKE()} button.play`);
    await until('audio element', async () => (await dom.count(ipad, `${TAKE()} audio`)) === 1);
    assert((await dom.attr(ipad, `${TAKE()} audio`, 'preload')) === 'none', 'preload="none"');
    const st = await until('metadata loaded', () => ipad.eval((sel) => {
      const a = document.querySelector(sel);
      return a.error ? { error: a.error.code } : a.readyState >= 1 ? { d: a.duration } : null;
    }, `${TAKE()} audio`), 15000);
    assert(!st.error, `the browser could not play the take (MediaError ${st.error})`);
    assert(st.d >= 2 && st.d < 30, `duration in the player ${st.d} s`);
    await ipad.eval((sel) => document.querySelector(sel).pause(), `${TAKE()} audio`);
  });

  await step('screenshots of the iPad and phone pages', async () => {
    await ipad.screenshot(shot('page-ipad'), { fullPage: true });
    await phone.screenshot(shot('page-phone'), { fullPage: true });
    if (phone.can.dark) {
      await phone.setDark(true);
      await phone.screenshot(shot('page-phone-dark'), { fullPage: true });
      await phone.setDark(false);
    }
  });

  await step('delete a take with the lease: two taps, then it is gone from the list and the server', async () => {
    const del = `${TAKE()} .del`;
    await ipad.click(del);
    assert(/Tap again/.test(await dom.text(ipad, del)), 'first tap asks to confirm');
    assert((await dom.count(ipad, TAKE())) === 1, 'still listed after one tap');
    await ipad.click(del);
    await until('gone from the list', async () => (await dom.count(ipad, TAKE())) === 0);
    const res = await fetch(base + href);
    assert(res.status === 404, `download of a deleted take answers 404 (got ${res.status})`);
  });

  await step('a token that no longer works: a readable message, and the lease is gone', async () => {
    await ipad.eval((id) => {
      const l = JSON.parse(sessionStorage.getItem('pirec.lease.' + id));
      l.token = 'x' + l.token.slice(1);
      sessionStorage.setItem('pirec.lease.' + id, JSON.stringify(l));
    }, dev);
    // The page may renew with the spoiled token before the click lands (it renews every
    // 10 s here): the outcome is the same, only the button is already disabled then.
    await ipad.click(C('.btn-record')).catch(() => {});
    await until('message', async () => /ran out; take it again/.test(await dom.text(ipad, '#messages')));
    await until('not held', async () => (await cardAttr(ipad, 'data-held')) === 'false');
    assert(await dom.disabled(ipad, C('.btn-record')), 'record disabled again');
  });

  if (phone.can.offline) {
    await step('offline: the banner shows, then the page reconnects by itself', async () => {
      await phone.setOffline(true);
      await until('banner shown', () => dom.visible(phone, '#banner'));
      assert(/Offline/.test(await dom.text(phone, '#banner')), 'banner says offline');
      assert((await dom.text(phone, '#conn')) === 'Offline', 'state pill says offline');
      // nothing contradicts it: every control is disabled and the card says what is known
      // (the meter's clip reset and the notice's close act on this page only, and stay)
      const enabled = () => phone.eval(() => [...document.querySelectorAll('main button')]
        .filter((b) => !b.disabled && !b.closest('[hidden]') && !b.matches('.meter-btn, .notice-close')).map((b) => b.className));
      await until('controls disabled', async () => (await enabled()).length === 0, 5000).catch(async () => {
        throw new Error('still enabled offline: ' + (await enabled()).join(', '));
      });
      const lt = await dom.text(phone, C('.lease-text'));
      assert(/^Last seen .*\d:\d\d ago/.test(lt), `the card says when the recorder was last seen: "${lt}"`);
      assert(!/Connected/.test(await dom.text(phone, C('.dev-conn'))), 'the card does not say Connected');
      // no level events any more: the bars fall to nothing instead of freezing
      await until('meter dark', async () => (await canvasLit(phone)) === 0, 8000);
      await phone.screenshot(shot('page-phone-offline'));
      const opens = await phone.eval(() => window.pirec.stats.connects);
      await phone.setOffline(false);
      await until('banner gone', async () => !(await dom.visible(phone, '#banner')), 20000);
      assert(await phone.eval(() => window.pirec.stats.connects) > opens, 'a new connection was made');
      const n = Number(await cardAttr(phone, 'data-levels'));
      await until('levels flow again', async () => Number(await cardAttr(phone, 'data-levels')) > n + 5);
    });
  } else {
    log(`    (${engine}: no network emulation through WebDriver; offline is tested in Chromium and by the server restart below)`);
  }

  await step('visible again (iPad Safari): the page reopens its events with lastEventId', async () => {
    const c0 = await ipad.eval(() => window.pirec.stats.connects);
    await ipad.eval(() => document.dispatchEvent(new Event('visibilitychange')));
    await until('reconnected', async () => (await ipad.eval(() => window.pirec.stats.connects)) > c0);
    const url = await ipad.eval(() => window.pirec.stats.lastOpenUrl);
    assert(/\?lastEventId=\d+/.test(url), `reopened with lastEventId: ${url}`);
    assert((await dom.text(ipad, '#conn')) === 'Live', 'live again');
  });

  if (serverPid) {
    await step('the server shuts down: the page says the recorder stopped', async () => {
      process.kill(serverPid, 'SIGTERM');
      await until('banner', () => dom.visible(ipad, '#banner'), 20000);
      const b = await dom.text(ipad, '#banner');
      assert(/Recorder stopped|Offline/.test(b), `banner: "${b}"`);
      await until('every control of the card disabled', async () =>
        (await dom.disabled(ipad, C('.btn-lease'))) && (await dom.disabled(ipad, C('.btn-record'))));
      assert(/^Last seen/.test(await dom.text(ipad, C('.lease-text'))), 'the card says when it was last seen');
      await ipad.screenshot(shot('page-ipad-stopped'));
    });
  }

  if (serverPid && args['restart-bin']) {
    await step('the recorder starts again on the same port: the page comes back by itself', async () => {
      const tmp = args['restart-tmp'];
      const port = new URL(base).port;
      const argv = ['serve', '--demo', '--listen', `127.0.0.1:${port}`, '--recordings', path.join(tmp, 'rec'),
        '--state-dir', path.join(tmp, 'state')];
      if (fs.existsSync(path.join(tmp, 'pirec.ini'))) argv.push('--config', path.join(tmp, 'pirec.ini'));
      // the old server must be gone first (it finalizes and exits on SIGTERM)
      const gone = (pid) => {     // exited (a zombie not yet reaped by its parent counts)
        try { process.kill(pid, 0); } catch { return true; }
        try { return /^\d+ \(.*\) Z/.test(fs.readFileSync(`/proc/${pid}/stat`, 'latin1')); } catch { return true; }
      };
      await until('old server exited', () => gone(serverPid), 15000);
      let out = '';
      for (let attempt = 0; ; attempt++) {
        out = '';
        restarted = spawn(args['restart-bin'], argv, { stdio: ['ignore', 'pipe', 'pipe'] });
        fs.writeFileSync(path.join(tmp, 'server2.pid'), String(restarted.pid));
        let exited = false;
        restarted.on('exit', () => { exited = true; });
        restarted.stdout.on('data', (b) => { out += b; });
        restarted.stderr.on('data', (b) => { out += b; });
        await until('listening again', () => exited || /listening on http/.test(out), 20000);
        if (!exited) break;
        if (attempt >= 4) throw new Error('the server did not start again: ' + out);
      }
      await until('banner gone', async () => !(await dom.visible(ipad, '#banner')), 30000);
      assert((await dom.text(ipad, '#conn')) === 'Live', 'live again');
      await until('card connected', async () => (await cardAttr(ipad, 'data-connected')) === 'true');
      const n = Number(await cardAttr(ipad, 'data-levels'));
      await until('levels flow again', async () => Number(await cardAttr(ipad, 'data-levels')) > n + 5);
      // a restarted server holds no lease: the device is free for anyone
      await until('free after restart', async () => /^Free/.test(await dom.text(ipad, C('.lease-text'))));
      assert(!(await dom.disabled(ipad, C('.btn-lease'))), 'take control offered again');
    });
  }

  await step('no uncaught errors nor CSP violations in the pages', async () => {
    // the server serves the manifest and icons (Add to Home Screen): no 404 is tolerated
    for (const f of ['/manifest.webmanifest', '/icon-192.png', '/icon-512.png', '/apple-touch-icon.png']) {
      const st = (await fetch(base + f)).status;
      assert(st === 200, `${f} answers ${st}`);
    }
    const all = [];
    for (const [i, p] of pages.entries()) {
      for (const x of await p.problems()) all.push(`${['ipad', 'phone'][i]}: ${x}`);
    }
    assert(all.length === 0, all.join('\n'));
    assert(accessibility.length === 0, 'axe-core:\n' + accessibility.join('\n'));
  });
  exitCode = 0;
} catch (e) {
  // the failing step printed itself; keep a screenshot of each page
  for (const [i, p] of pages.entries()) {
    try { await p.screenshot(shot(`page-failure-${i}`), { fullPage: true }); } catch (x) { /* gone */ }
    try { const pr = await p.problems(); if (pr.length) log(`page ${i} problems:\n  ` + pr.join('\n  ')); } catch (x) { /* gone */ }
  }
} finally {
  await browser.close();
  if (restarted && restarted.exitCode === null) {
    const done = new Promise((r) => restarted.once('exit', (code, sig) => r({ code, sig })));
    restarted.kill('SIGTERM');
    const end = await Promise.race([done, new Promise((r) => setTimeout(() => r(null), 10000))]);
    if (!end) { restarted.kill('SIGKILL'); log('not ok - the restarted server did not exit within 10 s of SIGTERM'); counts.failed++; exitCode = 1; }
    else if (end.code !== 0) { log(`not ok - the restarted server exited with ${end.code ?? end.sig} after SIGTERM`); counts.failed++; exitCode = 1; }
  }
}
log(`browser (${engine}): ${counts.passed} passed, ${counts.failed} failed`);
process.exit(exitCode || (counts.failed ? 1 : 0));
