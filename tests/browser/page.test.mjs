// Browser test of the pirec web page: Debian's Chromium driven by playwright-core.
//
//   node tests/browser/page.test.mjs --base-url http://127.0.0.1:PORT [--server-pid PID]
//        [--artifacts DIR] [--chromium /usr/bin/chromium]
//
// Against `pirec serve --demo` (tests/integration/test_browser.sh) or, while developing,
// against tests/browser/mock_server.py. With --server-pid the last step stops that server
// (SIGTERM) and checks that the page says so.
// Every wait is for a condition with a deadline; no fixed sleeps.
import { chromium } from 'playwright-core';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawn } from 'node:child_process';

const here = path.dirname(fileURLToPath(import.meta.url));
const args = Object.fromEntries(
  process.argv.slice(2).reduce((acc, a, i, all) => {
    if (a.startsWith('--')) acc.push([a.slice(2), all[i + 1] && !all[i + 1].startsWith('--') ? all[i + 1] : '1']);
    return acc;
  }, []));
const base = (args['base-url'] || '').replace(/\/$/, '');
if (!base) { console.error('usage: page.test.mjs --base-url URL [--server-pid PID] [--artifacts DIR]'); process.exit(2); }
const artifacts = path.resolve(args.artifacts || path.join(here, '..', 'artifacts'));
const serverPid = args['server-pid'] ? parseInt(args['server-pid'], 10) : 0;
fs.mkdirSync(artifacts, { recursive: true });

const T = 15000;                      // default deadline of one wait
let passed = 0, failed = 0;
const problems = [];                  // uncaught page errors, CSP violations

function log(...a) { console.log(...a); }

async function step(name, fn) {
  const t0 = Date.now();
  try {
    await fn();
    passed++;
    log(`ok - ${name} (${Date.now() - t0} ms)`);
  } catch (e) {
    failed++;
    log(`not ok - ${name}\n    ${String(e && e.stack || e).split('\n').slice(0, 6).join('\n    ')}`);
    throw e;
  }
}

function assert(cond, msg) { if (!cond) throw new Error('assertion failed: ' + msg); }

// Wait until fn() (in node) returns truthy; returns its value.
async function until(what, fn, timeout = T) {
  const end = Date.now() + timeout;
  let last;
  for (;;) {
    try { last = await fn(); if (last) return last; } catch (e) { last = e; }
    if (Date.now() > end) throw new Error(`timed out after ${timeout} ms waiting for ${what} (last: ${last})`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function watch(page, label) {
  page.on('pageerror', (e) => problems.push(`${label}: uncaught ${e.message}`));
  page.on('console', (m) => {
    const t = m.text();
    if (/Content Security Policy|Refused to/.test(t)) problems.push(`${label}: ${t}`);
    if (m.type() === 'error' && !/Failed to load resource|ERR_INTERNET_DISCONNECTED|ERR_CONNECTION_REFUSED|EventSource/.test(t)) {
      problems.push(`${label}: console error: ${t}`);
    }
  });
}

const card = (page) => page.locator('.card').first();
const attr = (page, name) => card(page).getAttribute(name);
const text = (loc) => loc.textContent().then((s) => (s || '').trim());
function secondsOf(s) {      // "1:02" or "1:02:03"
  const p = s.split(':').map(Number);
  return p.reduce((a, b) => a * 60 + b, 0);
}

const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'pirec-chromium-'));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: args.chromium || '/usr/bin/chromium',
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic'],
  viewport: { width: 820, height: 1180 },
  deviceScaleFactor: 2,
  locale: 'en-GB',
  acceptDownloads: true,
});
context.setDefaultTimeout(5000);
let restarted = null;                 // a server this script started again (killed at the end)       // a single action never waits longer than this
let exitCode = 1;
try {
  const ipad = context.pages()[0] || await context.newPage();
  watch(ipad, 'ipad');
  let dev = '';

  await step('iPad: the page loads and shows the demo device card, connected, with its format', async () => {
    const r = await ipad.goto(base + '/');
    assert(r && r.status() === 200, 'GET / answers 200');
    await card(ipad).waitFor({ state: 'visible', timeout: T });
    dev = await attr(ipad, 'data-device');
    assert(dev, 'the card names its device');
    await until('connected card', async () => (await attr(ipad, 'data-connected')) === 'true');
    const fmt = await text(card(ipad).locator('.dev-format'));
    assert(/\d+(\.\d+)? kHz · \d+-bit · \d+ ch/.test(fmt), `format reads like "48 kHz · 16-bit · 2 ch": "${fmt}"`);
    assert((await text(card(ipad).locator('.dev-name'))).length > 0, 'device name shown');
    await until('connection shown as live', async () => (await text(ipad.locator('#conn'))) === 'Live');
    assert(await ipad.locator('#banner').isHidden(), 'no offline banner when connected');
    await until('disk time left shown', async () => / left$/.test(await text(ipad.locator('#disk-left'))));
  });

  await step('without the lease the record button is disabled and "Take control" is offered', async () => {
    assert(await card(ipad).locator('.btn-record').isDisabled(), 'record disabled');
    assert((await text(card(ipad).locator('.btn-lease'))) === 'Take control', 'take control offered');
  });

  await step('the meter canvas is drawn from level events and changes over time', async () => {
    const canvas = card(ipad).locator('canvas.meter');
    await until('level events counted', async () => Number(await attr(ipad, 'data-levels')) >= 5);
    const size = await canvas.evaluate((c) => ({ w: c.width, h: c.height, cw: c.getBoundingClientRect().width }));
    assert(size.w === Math.round(size.cw * 2), `canvas backing store follows devicePixelRatio 2 (${size.w} vs ${size.cw})`);
    const snap = () => canvas.evaluate((c) => c.toDataURL());
    const a = await snap();
    const n0 = Number(await attr(ipad, 'data-levels'));
    await until('different pixels', async () => (await snap()) !== a, 5000);
    await until('more level events', async () => Number(await attr(ipad, 'data-levels')) > n0 + 10, 5000);
    // the bars are not empty: some lit green/yellow/red pixels in the first channel's row
    const lit = await canvas.evaluate((c) => {
      const ctx = c.getContext('2d');
      const d = ctx.getImageData(0, Math.round(c.height * 0.45), c.width, 1).data;
      let n = 0;
      for (let i = 0; i < d.length; i += 4) if (d[i + 1] > 150 && d[i + 2] < 120) n++;
      return n;
    });
    assert(lit > 10, `meter bars lit (${lit} pixels)`);
  });

  await step('a clip latches the red CLIP flag until the meter is tapped', async () => {
    await ipad.evaluate((id) => window.pirec.feedLevel({ id, t: 0, ch: [
      { peak: 0, rms: -6, hold: 0, clip: 1e9 }, { peak: -20, rms: -30, hold: -20, clip: 0 }] }), dev);
    await until('clip flag', async () => (await attr(ipad, 'data-clip')) === 'true', 2000);
    const redInReadout = () => card(ipad).locator('canvas.meter').evaluate((c) => {
      const dpr = window.devicePixelRatio, W = c.width / dpr, H = c.height / dpr;
      const bh = (H - 18 - 4 - 6) / 2;
      const y = Math.round((18 + bh / 2) * dpr);
      const d = c.getContext('2d').getImageData(Math.round((W - 50) * dpr), y, Math.round(44 * dpr), 1).data;
      let n = 0;
      for (let i = 0; i < d.length; i += 4) if (d[i] > 200 && d[i + 1] < 80 && d[i + 2] < 80) n++;
      return n;
    });
    await until('CLIP drawn in red', async () => (await redInReadout()) > 20, 2000);
    await card(ipad).locator('.meter-btn').screenshot({ path: path.join(artifacts, 'meter-clip.png') });
    const n = Number(await attr(ipad, 'data-levels'));
    await until('more levels', async () => Number(await attr(ipad, 'data-levels')) > n + 10);
    assert((await attr(ipad, 'data-clip')) === 'true', 'still latched after more level events');
    await card(ipad).locator('.meter-btn').click();
    await until('clip reset', async () => (await attr(ipad, 'data-clip')) === 'false', 2000);
    await until('CLIP no longer drawn', async () => (await redInReadout()) === 0, 2000);
  });

  await step('take control: the lease shows with a countdown, the token is kept per device', async () => {
    await card(ipad).locator('.btn-lease').click();
    await until('held', async () => (await attr(ipad, 'data-held')) === 'true');
    const lt = await text(card(ipad).locator('.lease-text'));
    assert(/You control it · \d+:\d\d left/.test(lt), `lease text: "${lt}"`);
    assert((await text(card(ipad).locator('.btn-lease'))) === 'Release', 'release offered');
    assert(await card(ipad).locator('.btn-record').isEnabled(), 'record enabled');
    const stored = await ipad.evaluate((id) => sessionStorage.getItem('pirec.lease.' + id), dev);
    assert(stored && JSON.parse(stored).token, 'token in sessionStorage');
    const c1 = secondsOf((await text(card(ipad).locator('.countdown'))).replace(' left', ''));
    await until('countdown runs', async () =>
      secondsOf((await text(card(ipad).locator('.countdown'))).replace(' left', '')) < c1, 4000);
  });

  await step('the page renews its lease by itself before it runs out (when the lease is short)', async () => {
    const left = () => text(card(ipad).locator('.countdown')).then((t) => secondsOf(t.replace(' left', '')));
    const l0 = await left();
    if (l0 > 75) { log(`    (lease of ${l0} s: renewal comes 60 s before the end; not waited for)`); return; }
    const tok0 = await ipad.evaluate((id) => JSON.parse(sessionStorage.getItem('pirec.lease.' + id)).token, dev);
    await until('a new token', async () =>
      (await ipad.evaluate((id) => JSON.parse(sessionStorage.getItem('pirec.lease.' + id)).token, dev)) !== tok0,
    (l0 - 55) * 1000);
    await until('countdown went up', async () => (await left()) > 60);
    assert((await attr(ipad, 'data-held')) === 'true', 'still held');
  });

  const phone = await context.newPage();
  watch(phone, 'phone');
  await phone.setViewportSize({ width: 390, height: 844 });

  await step('phone: a second watcher sees who holds the device and cannot record', async () => {
    await phone.goto(base + '/');
    await card(phone).waitFor({ state: 'visible', timeout: T });
    await until('held by someone shown', async () => /^Held by .+ · \d+:\d\d left$/.test(await text(card(phone).locator('.lease-text'))));
    assert(await card(phone).locator('.btn-lease').isDisabled(), 'take disabled while held');
    assert(await card(phone).locator('.btn-record').isDisabled(), 'record disabled without the lease');
  });

  let file = '';
  await step('record two seconds: aria-pressed, elapsed time, and every watcher sees it', async () => {
    await card(ipad).locator('.btn-record').click();
    await until('recording', async () => (await card(ipad).locator('.btn-record').getAttribute('aria-pressed')) === 'true');
    assert((await text(card(ipad).locator('.rec-label'))) === 'Stop', 'the toggle now says Stop');
    await until('phone sees the take', async () => (await attr(phone, 'data-recording')) === 'true');
    await until('phone hint', async () => /Take control to stop it/.test(await text(card(phone).locator('.rec-hint'))));
    // the take may begin with pre-roll: two more seconds than first shown, and at least 2 s
    const e0 = secondsOf(await text(card(ipad).locator('.elapsed')));
    await until('elapsed >= 2 s', async () => secondsOf(await text(card(ipad).locator('.elapsed'))) >= Math.max(2, e0 + 2), 10000);
    await until('phone elapsed >= 2 s', async () => secondsOf(await text(card(phone).locator('.elapsed'))) >= 2, 5000);
    file = await text(card(ipad).locator('.rec-file'));
    assert(/\.flac$/.test(file), `file name shown: "${file}"`);
    await ipad.screenshot({ path: path.join(artifacts, 'page-ipad-recording.png'), fullPage: true });
    await phone.screenshot({ path: path.join(artifacts, 'page-phone-recording.png'), fullPage: true });
  });

  let href = '';
  await step('stop: the take appears in the list with its duration, and downloads as audio/flac', async () => {
    await card(ipad).locator('.btn-record').click();
    await until('stopped', async () => (await card(ipad).locator('.btn-record').getAttribute('aria-pressed')) === 'false');
    await until('phone sees the stop', async () => (await attr(phone, 'data-recording')) === 'false');
    assert((await ipad.locator('#messages .msg').count()) === 0,
      `an ordinary stop is no error: "${await text(ipad.locator('#messages'))}"`);
    const item = ipad.locator(`.take[data-name="${file}"]`);
    await item.waitFor({ state: 'visible', timeout: T });
    await until('complete take listed', async () => (await item.locator('.partial').count()) === 0);
    const dur = secondsOf(await text(item.locator('.dur')));
    assert(dur >= 2 && dur < 30, `duration of the take ${dur} s`);
    assert(/kHz/.test(await text(item.locator('.fmt'))), 'format in the list');
    await phone.locator(`.take[data-name="${file}"]`).waitFor({ state: 'visible', timeout: T });
    href = await item.locator('a.download').getAttribute('href');
    const res = await context.request.get(base + href);
    assert(res.status() === 200, `download answers 200 (got ${res.status()})`);
    assert(/^audio\/flac/.test(res.headers()['content-type'] || ''), `audio/flac (got ${res.headers()['content-type']})`);
    const body = await res.body();
    assert(body.length > 4 && body.subarray(0, 4).toString('latin1') === 'fLaC', 'a FLAC stream');
    assert((await item.locator('.del').count()) === 1, 'delete offered to the lease holder');
    assert((await phone.locator(`.take[data-name="${file}"] .del`).count()) === 0, 'no delete without a lease');
  });

  await step('play: the take loads in the browser\'s own audio player and lasts as long as recorded', async () => {
    const item = ipad.locator(`.take[data-name="${file}"]`);
    await item.locator('button.play').click();
    const audio = item.locator('audio');
    await audio.waitFor({ state: 'attached', timeout: T });
    assert((await audio.getAttribute('preload')) === 'none', 'preload="none"');
    const st = await until('metadata loaded', () => audio.evaluate((a) =>
      (a.error ? { error: a.error.code } : a.readyState >= 1 ? { d: a.duration } : null)), 15000);
    assert(!st.error, `the browser could not play the take (MediaError ${st.error})`);
    assert(st.d >= 2 && st.d < 30, `duration in the player ${st.d} s`);
    await audio.evaluate((a) => a.pause());
  });

  await step('screenshots of the iPad and phone pages', async () => {
    await ipad.screenshot({ path: path.join(artifacts, 'page-ipad.png'), fullPage: true });
    await phone.screenshot({ path: path.join(artifacts, 'page-phone.png'), fullPage: true });
    await phone.emulateMedia({ colorScheme: 'dark' });
    await phone.screenshot({ path: path.join(artifacts, 'page-phone-dark.png'), fullPage: true });
    await phone.emulateMedia({ colorScheme: 'light' });
  });

  await step('delete a take with the lease: two taps, then it is gone from the list and the server', async () => {
    const del = ipad.locator(`.take[data-name="${file}"] .del`);
    await del.click();
    assert(/Tap again/.test(await text(del)), 'first tap asks to confirm');
    assert((await ipad.locator(`.take[data-name="${file}"]`).count()) === 1, 'still listed after one tap');
    await del.click();
    await until('gone from the list', async () => (await ipad.locator(`.take[data-name="${file}"]`).count()) === 0);
    const res = await context.request.get(base + href);
    assert(res.status() === 404, `download of a deleted take answers 404 (got ${res.status()})`);
  });

  await step('a token that no longer works: a readable message, and the lease is gone', async () => {
    await ipad.evaluate((id) => {
      const l = JSON.parse(sessionStorage.getItem('pirec.lease.' + id));
      l.token = 'x' + l.token.slice(1);
      sessionStorage.setItem('pirec.lease.' + id, JSON.stringify(l));
    }, dev);
    await card(ipad).locator('.btn-record').click();
    await until('message', async () => /ran out; take it again/.test(await text(ipad.locator('#messages'))));
    await until('not held', async () => (await attr(ipad, 'data-held')) === 'false');
    assert(await card(ipad).locator('.btn-record').isDisabled(), 'record disabled again');
  });

  await step('409: the phone tries to take a held device and is told by whom and until when', async () => {
    // the iPad page's real lease is still running on the server (its stored token was spoiled)
    await until('phone still sees it held', async () => /^Held by/.test(await text(card(phone).locator('.lease-text'))));
    await phone.evaluate(() => { const b = document.querySelector('.card .btn-lease'); b.disabled = false; b.click(); });
    await until('409 message', async () => /is held by .+ until \d\d:\d\d\./.test(await text(phone.locator('#messages'))));
  });

  await step('offline: the banner shows, then the page reconnects by itself', async () => {
    await phone.context().setOffline(true);
    await until('banner shown', () => phone.locator('#banner').isVisible());
    assert(/Offline/.test(await text(phone.locator('#banner'))), 'banner says offline');
    assert((await text(phone.locator('#conn'))) === 'Offline', 'state pill says offline');
    // no level events any more: the bars fall to nothing instead of freezing
    await until('meter dark', async () => (await card(phone).locator('canvas.meter').evaluate((c) => {
      const d = c.getContext('2d').getImageData(0, Math.round(c.height * 0.45), c.width, 1).data;
      let n = 0;
      for (let i = 0; i < d.length; i += 4) if (d[i + 1] > 150 && d[i + 2] < 120) n++;
      return n;
    })) === 0, 8000);
    await phone.screenshot({ path: path.join(artifacts, 'page-phone-offline.png') });
    const opens = await phone.evaluate(() => window.pirec.stats.connects);
    await phone.context().setOffline(false);
    await until('banner gone', () => phone.locator('#banner').isHidden(), 20000);
    assert(await phone.evaluate(() => window.pirec.stats.connects) > opens, 'a new connection was made');
    const n = Number(await attr(phone, 'data-levels'));
    await until('levels flow again', async () => Number(await attr(phone, 'data-levels')) > n + 5);
  });

  await step('visible again (iPad Safari): the page reopens its events with lastEventId', async () => {
    const seen = [];
    const onReq = (r) => { if (r.url().includes('/api/status/')) seen.push(r.url()); };
    ipad.on('request', onReq);
    const c0 = await ipad.evaluate(() => window.pirec.stats.connects);
    await ipad.evaluate(() => document.dispatchEvent(new Event('visibilitychange')));
    await until('reconnected', async () => (await ipad.evaluate(() => window.pirec.stats.connects)) > c0);
    ipad.off('request', onReq);
    assert(seen.some((u) => /\?lastEventId=\d+/.test(u)), `reopened with lastEventId: ${seen.join(' ')}`);
    assert((await text(ipad.locator('#conn'))) === 'Live', 'live again');
  });

  if (serverPid) {
    await step('the server shuts down: the page says the recorder stopped', async () => {
      process.kill(serverPid, 'SIGTERM');
      await until('banner', () => ipad.locator('#banner').isVisible(), 20000);
      const b = await text(ipad.locator('#banner'));
      assert(/Recorder stopped|Offline/.test(b), `banner: "${b}"`);
      await ipad.screenshot({ path: path.join(artifacts, 'page-ipad-stopped.png') });
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
      await until('banner gone', () => ipad.locator('#banner').isHidden(), 30000);
      assert((await text(ipad.locator('#conn'))) === 'Live', 'live again');
      await until('card connected', async () => (await attr(ipad, 'data-connected')) === 'true');
      const n = Number(await attr(ipad, 'data-levels'));
      await until('levels flow again', async () => Number(await attr(ipad, 'data-levels')) > n + 5);
      // a restarted server holds no lease: the device is free for anyone
      await until('free after restart', async () => /^Free/.test(await text(card(ipad).locator('.lease-text'))));
      assert(await card(ipad).locator('.btn-lease').isEnabled(), 'take control offered again');
    });
  }

  await step('no uncaught errors nor CSP violations in the pages', async () => {
    assert(problems.length === 0, problems.join('\n'));
  });
  exitCode = 0;
} catch (e) {
  // the failing step printed itself; keep a screenshot of each page
  for (const [i, p] of context.pages().entries()) {
    try { await p.screenshot({ path: path.join(artifacts, `page-failure-${i}.png`), fullPage: true }); } catch (x) { /* gone */ }
  }
  if (problems.length) log('page problems:\n  ' + problems.join('\n  '));
} finally {
  await context.close().catch(() => {});
  if (restarted && restarted.exitCode === null) {
    const done = new Promise((r) => restarted.once('exit', (code, sig) => r({ code, sig })));
    restarted.kill('SIGTERM');
    const end = await Promise.race([done, new Promise((r) => setTimeout(() => r(null), 10000))]);
    if (!end) { restarted.kill('SIGKILL'); log('not ok - the restarted server did not exit within 10 s of SIGTERM'); failed++; exitCode = 1; }
    else if (end.code !== 0) { log(`not ok - the restarted server exited with ${end.code ?? end.sig} after SIGTERM`); failed++; exitCode = 1; }
  }
  fs.rmSync(profile, { recursive: true, force: true });
}
log(`browser: ${passed} passed, ${failed} failed`);
process.exit(exitCode || (failed ? 1 : 0));
