// Browser test of what the page does with the server contract of issue 10, against
// tests/browser/mock_server.py (which implements that contract; docs/web.md lists it):
// the camera-app flow (page hidden and frozen past the lease, then one tap stops the take),
// a take-over with confirmation announced to every page, a restart said in words, events for
// new and deleted takes, no download of a take being written, the offline card, the wake
// lock, the keys, the manifest and icons, the clock offer, the waveform overview with the
// playback position, axe-core in every state, and screenshots at iPhone and iPad sizes.
//
//   node tests/browser/features.test.mjs [--engine chromium|webkit] [--artifacts DIR]
//
// It starts the mock itself (short lease, short take-over delay, clock not synchronised).
// Every wait is for a condition with a deadline; no fixed sleeps.
import { spawn } from 'node:child_process';
import path from 'node:path';
import { launch } from './engine.mjs';
import { here, parseArgs, log, counts, step, assert, until, secondsOf, dom, CARD, cardAttr,
  artifactsDir, axeCheck, setPrefix } from './lib.mjs';

const args = parseArgs(process.argv.slice(2));
const engine = args.engine || 'chromium';
const artifacts = artifactsDir(args);
setPrefix(`[${engine}, mock] `);
const LEASE_S = 8, TAKEOVER_S = 3;

const mock = spawn('/usr/bin/python3', [path.join(here, 'mock_server.py'), '--listen', '127.0.0.1:0',
  '--lease-seconds', String(LEASE_S), '--takeover-after', String(TAKEOVER_S), '--preroll', '5', '--unsynced'],
{ stdio: ['ignore', 'pipe', 'inherit'] });
let mockOut = '';
mock.stdout.on('data', (b) => { mockOut += b; });
const base = await until('the mock to listen', () => (/(http:\/\/[0-9.:]+\d)/.exec(mockOut) || [])[1], 15000);
const status = async () => (await (await fetch(base + '/api/status')).json());

const C = (sel) => `${CARD} ${sel}`;
const SIZES = { iphone: { width: 390, height: 844 }, ipad: { width: 820, height: 1180 } };
const violations = [];
async function axe(page, label) {
  const v = await axeCheck(page, `${engine} ${label}`);
  violations.push(...v);
  if (v.length) log(`    axe: ${v.length} violation(s) in "${label}"`);
}
// The same page at iPhone and iPad sizes, light and dark (dark where the engine can).
async function shots(page, state, size) {
  for (const [dev, sz] of Object.entries(SIZES)) {
    await page.setSize(sz.width, sz.height);
    for (const dark of page.can.dark ? [false, true] : [false]) {
      if (page.can.dark) await page.setDark(dark);
      await page.screenshot(path.join(artifacts, `${engine}-${state}-${dev}-${dark ? 'dark' : 'light'}.png`), { fullPage: true });
    }
  }
  if (page.can.dark) await page.setDark(false);
  await page.setSize(size.width, size.height);
}
const setName = (p, name) => p.eval((n) => { localStorage.setItem('pirec.client', n); document.getElementById('client-name').value = n; }, name);
const blur = (p) => p.eval(() => { if (document.activeElement) document.activeElement.blur(); });
const msgs = (p) => dom.text(p, '#messages');

const browser = await launch(engine, { chromium: args.chromium });
const pages = [];
let exitCode = 1;
try {
  const ipad = await browser.newPage(SIZES.ipad);
  pages.push(ipad);

  await step('idle: the page loads; a compact, dismissable clock warning offers the tablet\'s time', async () => {
    await ipad.goto(base + '/');
    await until('connected card', async () => (await cardAttr(ipad, 'data-connected')) === 'true');
    await until('clock warning', () => dom.visible(ipad, '#clock-warning'));
    await ipad.setSize(SIZES.iphone.width, SIZES.iphone.height);
    const h = await ipad.eval(() => document.getElementById('clock-warning').getBoundingClientRect().height);
    await ipad.setSize(SIZES.ipad.width, SIZES.ipad.height);
    assert(h <= 0.08 * SIZES.iphone.height, `on a phone the clock warning is ${h} px high of ${SIZES.iphone.height}`);
    assert(/^Use my time \(this .*\) for take names$/.test(await dom.name(ipad, '#clock-use')), 'offers this screen\'s time');
    await axe(ipad, 'idle');
    await shots(ipad, 'idle', SIZES.ipad);
  });

  await step('Add to Home Screen: a manifest (standalone) with PNG icons, and a touch icon', async () => {
    const href = await dom.attr(ipad, 'link[rel="manifest"]', 'href');
    assert(href, 'a <link rel="manifest">');
    const r = await fetch(new URL(href, base));
    assert(r.status === 200, `manifest answers ${r.status}`);
    const m = await r.json();
    assert(m.display === 'standalone' && m.start_url && m.name, `manifest: ${JSON.stringify(m).slice(0, 200)}`);
    const png = async (u) => {
      const b = Buffer.from(await (await fetch(new URL(u, base))).arrayBuffer());
      assert(b.subarray(1, 4).toString('latin1') === 'PNG', `${u} is a PNG`);
      return [b.readUInt32BE(16), b.readUInt32BE(20)];
    };
    for (const want of ['192x192', '512x512']) {
      const icon = (m.icons || []).find((i) => i.sizes === want && i.type === 'image/png');
      assert(icon, `a ${want} PNG icon`);
      assert((await png(icon.src)).join('x') === want, `${icon.src} is ${want}`);
    }
    const touch = await dom.attr(ipad, 'link[rel="apple-touch-icon"]', 'href');
    assert(touch && (await png(touch)).join('x') === '180x180', 'apple-touch-icon 180x180');
  });

  await step('the keys are documented on the page', async () => {
    const k = await dom.text(ipad, '#keys');
    assert(/R\b/.test(k) && /PageDown/.test(k) && /Space/.test(k), `keys: "${k}"`);
  });

  const phone = await browser.newPage(SIZES.iphone);
  pages.push(phone);
  await phone.goto(base + '/');
  await until('phone connected', async () => (await cardAttr(phone, 'data-connected')) === 'true');

  await step('take control: the screen wake lock is asked for while holding control (feature-detected)', async () => {
    // a stand-in for navigator.wakeLock that records what the page asks
    await ipad.eval(() => {
      window.__wl = { requests: 0, releases: 0 };
      const fake = { request: () => { window.__wl.requests++; const s = new EventTarget(); s.release = () => { window.__wl.releases++; s.dispatchEvent(new Event('release')); return Promise.resolve(); }; return Promise.resolve(s); } };
      Object.defineProperty(navigator, 'wakeLock', { value: fake, configurable: true });
    });
    await setName(ipad, 'iPad');
    await ipad.click(C('.btn-lease'));
    await until('held', async () => (await cardAttr(ipad, 'data-held')) === 'true');
    await until('wake lock held', () => ipad.eval(() => window.pirec.stats.wakeLock === 'held' && window.__wl.requests === 1));
    // release: the wake lock goes too (tapped again only if a tap changed nothing: WebKit
    // under load has been seen to lose one)
    for (let attempt = 1; ; attempt++) {
      await ipad.click(C('.btn-lease'));
      const gone = await until('released', async () => (await cardAttr(ipad, 'data-held')) === 'false', 5000).catch(() => false);
      if (gone) break;
      if (attempt >= 3) throw new Error(`still held after 3 taps on Release: "${await msgs(ipad)}"`);
      log(`    (tap ${attempt} on Release changed nothing: "${await msgs(ipad)}")`);
    }
    await until('wake lock released', () => ipad.eval(() => window.__wl.releases === 1 && window.pirec.stats.wakeLock === 'none'));
    await ipad.click(C('.btn-lease'));
    await until('held again', async () => (await cardAttr(ipad, 'data-held')) === 'true');
    await axe(ipad, 'holding control');
  });

  await step('the recorder\'s clock: "use this screen\'s time" gives the offset, said in the status; dismissable', async () => {
    await ipad.click('#clock-use');
    await until('offset in use', async () => /take names use the time of iPad/.test(await dom.text(ipad, '#clock-text')));
    assert((await status()).clock_source === 'iPad', 'the server names takes with the iPad\'s time');
    await ipad.click('#clock-dismiss');
    await until('dismissed', async () => !(await dom.visible(ipad, '#clock-warning')));
  });

  await step('a second page tries to take control: told clearly that the holder is here', async () => {
    await setName(phone, 'Phone');
    assert(!(await dom.disabled(phone, C('.btn-lease'))), 'the phone may try');
    await phone.click(C('.btn-lease'));
    await until('clear message', async () => /Demo tone is held by iPad, which is connected/.test(await msgs(phone)));
    assert((await cardAttr(phone, 'data-held')) === 'false', 'no take-over while the holder is here');
    assert((await dom.count(phone, `${C('.confirm')}:not([hidden])`)) === 0, 'no confirmation offered');
  });

  let file = '';
  await step('keys: PageDown starts a take on the device this screen controls', async () => {
    await blur(ipad);
    await ipad.eval(() => { window.__keys = []; document.addEventListener('keydown', (e) => window.__keys.push(e.key)); });
    await ipad.press('PageDown');
    await until('recording', async () => (await cardAttr(ipad, 'data-recording')) === 'true', 5000).catch(async (e) => {
      throw new Error(`${e.message}; keys seen ${JSON.stringify(await ipad.eval(() => window.__keys))}, messages "${await msgs(ipad)}", held ${await cardAttr(ipad, 'data-held')}`);
    });
    file = await dom.text(ipad, C('.rec-file'));
    const pre = await dom.text(ipad, C('.preroll'));
    assert(/incl\. 5\.0 s pre-roll/.test(pre), `pre-roll shown: "${pre}"`);
    assert(secondsOf(await dom.text(ipad, C('.elapsed'))) >= 5, 'the counter starts at the pre-roll');
    assert(/^Stop recording/.test(await dom.name(ipad, C('.btn-record'))), 'the button\'s name says Stop');
    await axe(ipad, 'recording');
  });

  await step('a take being written is listed without a Download', async () => {
    const t = `.take[data-name="${file}"]`;
    await until('listed', () => dom.visible(ipad, t));
    assert((await dom.count(ipad, `${t} .partial`)) === 1, 'marked as being written');
    assert((await dom.count(ipad, `${t} a.download`)) === 0, 'no Download');
    await shots(ipad, 'recording', SIZES.ipad);
  });

  await step('camera app: the page hidden (and frozen) longer than the lease, then one tap on Stop stops the take', async () => {
    const exp0 = (await status()).devices[0].expires;
    await ipad.eval(() => {
      Object.defineProperty(document, 'visibilityState', { value: 'hidden', configurable: true });
      Object.defineProperty(document, 'hidden', { value: true, configurable: true });
      document.dispatchEvent(new Event('visibilitychange'));
    });
    let cdp = null;
    if (ipad.can.cdp) { cdp = await ipad.cdpSession(); await cdp.send('Page.setWebLifecycleState', { state: 'frozen' }); }
    // longer than the lease: the server's expiry time passes while the page is away
    await until('the lease time passed', async () => Date.now() / 1000 > exp0 + 1, (LEASE_S + 10) * 1000);
    const st = (await status()).devices[0];
    assert(st.recording && st.taken && st.holder === 'iPad' && st.kept_by_take, `the running take keeps the iPad's lease: ${JSON.stringify(st)}`);
    if (cdp) await cdp.send('Page.setWebLifecycleState', { state: 'active' });
    await ipad.eval(() => {
      delete document.visibilityState; delete document.hidden;
      document.dispatchEvent(new Event('visibilitychange'));
    });
    assert(!(await dom.disabled(ipad, C('.btn-record'))), 'Stop is enabled as soon as the page is back');
    await ipad.click(C('.btn-record'));
    await until('stopped', async () => (await cardAttr(ipad, 'data-recording')) === 'false', 5000);
    assert(!/ran out|take it again/.test(await msgs(ipad)), `no lease message: "${await msgs(ipad)}"`);
    assert((await cardAttr(ipad, 'data-held')) === 'true', 'still in control after the take');
    const after = (await status()).devices[0];
    assert(after.expires >= Date.now() / 1000 + LEASE_S - 3, 'the lease timer started again when the take ended');
  });

  await step('the counter, the stop and the take list agree to the tenth; the other page gets the new take by event', async () => {
    const shown = await dom.text(ipad, C('.elapsed'));
    const rec = (await (await fetch(base + '/api/recordings')).json()).recordings.find((r) => r.name === file);
    const t = `.take[data-name="${file}"]`;
    await until('complete in the list', async () => (await dom.count(ipad, `${t} .partial`)) === 0 && (await dom.count(ipad, t)) === 1);
    assert(shown === await dom.text(ipad, `${t} .dur`), `counter ${shown} = list ${await dom.text(ipad, `${t} .dur`)}`);
    assert(Math.abs(secondsOf(shown) - rec.seconds) < 0.1, `counter ${shown} = server ${rec.seconds}`);
    await until('phone lists it complete', async () => (await dom.count(phone, `${t} .partial`)) === 0 && (await dom.count(phone, `${t} a.download`)) === 1);
  });

  await step('waveform overview of the take, with the playback position', async () => {
    const t = `.take[data-name="${file}"]`;
    await until('waveform drawn', async () => (await dom.attr(ipad, `${t} .wave`, 'data-drawn')) === 'true');
    const ink = await ipad.eval((sel) => {
      const c = document.querySelector(sel);
      const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
      let n = 0;
      for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++;
      return n / (c.width * c.height);
    }, `${t} .wave canvas`);
    assert(ink > 0.05 && ink < 0.95, `the overview shows a waveform (${(ink * 100).toFixed(0)} % inked)`);
    await ipad.click(`${t} button.play`);
    await until('metadata', () => ipad.eval((sel) => { const a = document.querySelector(sel); return a && a.readyState >= 1; }, `${t} audio`));
    await ipad.eval((sel) => { const a = document.querySelector(sel); a.pause(); a.currentTime = a.duration / 2; }, `${t} audio`);
    await until('position shown at half', async () => {
      const left = await ipad.eval((sel) => { const p = document.querySelector(sel); return p.hidden ? null : parseFloat(p.style.left); }, `${t} .wave-pos`);
      return left != null && Math.abs(left - 50) < 5;
    });
    await axe(ipad, 'take list with waveforms');
    await shots(ipad, 'takes', SIZES.ipad);
  });

  await step('a deleted take leaves every page (event), not only the one that deleted it', async () => {
    const t = `.take[data-name="${file}"]`;
    await ipad.click(`${t} .del`);
    await ipad.click(`${t} .del`);
    await until('gone from the iPad', async () => (await dom.count(ipad, t)) === 0);
    await until('gone from the phone', async () => (await dom.count(phone, t)) === 0, 5000);
  });

  await step('take-over: once the holder has gone away, with confirmation, announced to every page', async () => {
    // a watcher sees the announcement
    const watch = await browser.newPage(SIZES.iphone);
    pages.push(watch);
    await watch.goto(base + '/');
    await until('watcher connected', async () => (await cardAttr(watch, 'data-connected')) === 'true');
    // the iPad renews (back on screen), then goes away: its page is navigated off (its tab
    // keeps the lease in sessionStorage); its lease is still valid when the take-over comes
    const e0 = (await status()).devices[0].expires;
    await ipad.eval(() => document.dispatchEvent(new Event('visibilitychange')));
    await until('iPad renewed', async () => (await status()).devices[0].expires > e0);
    await ipad.goto('about:blank').catch(() => {});
    for (let attempt = 1; ; attempt++) {
      await until('take over offered', async () => (await dom.text(phone, C('.btn-lease'))) === 'Take over…', (TAKEOVER_S + 10) * 1000);
      await phone.click(C('.btn-lease'));
      await until('confirmation', () => dom.visible(phone, C('.confirm')));
      assert(/iPad controls Demo tone .*Take over\?/.test(await dom.text(phone, C('.confirm-text'))), 'asks, naming the holder');
      if (attempt === 1) await axe(phone, 'take-over confirmation');
      await phone.click(C('.confirm-yes'));
      // the server may still count the iPad as present (its clock decides): then try again
      const held = await until('phone holds it, or is told why not', async () =>
        ((await cardAttr(phone, 'data-held')) === 'true' && 'held') || (await dom.visible(phone, `${C('.confirm')}`) ? null : 'refused'), 5000);
      if (held === 'held' || (await cardAttr(phone, 'data-held')) === 'true') break;
      if (attempt >= 3) throw new Error(`take-over refused 3 times: "${await msgs(phone)}"; server ${JSON.stringify((await status()).devices[0])}`);
      log(`    (take-over attempt ${attempt} refused: "${await msgs(phone)}")`);
    }
    await until('phone holds it', async () => (await cardAttr(phone, 'data-held')) === 'true');
    await until('announced', async () => /Phone took over Demo tone from iPad/.test(await msgs(watch)), 8000).catch(async (e) => {
      throw new Error(`${e.message}; watcher: "${await msgs(watch)}", "${await dom.text(watch, C('.lease-text'))}", events ${await watch.eval(() => window.pirec.stats.events)}`);
    });
    // the iPad comes back: it is told in words
    await ipad.goto(base + '/');
    await until('iPad told', async () => /Your control of Demo tone ended while this page was away; Phone controls it now/.test(await msgs(ipad)));
    assert((await cardAttr(ipad, 'data-held')) === 'false', 'the iPad no longer claims control');
    await watch.close();
    pages.pop();
  });

  await step('the device goes silent (capture watchdog): the take ends, the card says so, Record waits for it', async () => {
    // right after the take-over the page may still be settling its lease: wait for Record
    // to be enabled, and tap again only if a tap left no take at all
    for (let attempt = 1; ; attempt++) {
      await until('record enabled', async () => !(await dom.disabled(phone, C('.btn-record'))));
      await phone.click(C('.btn-record'));
      const rec = await until('recording', async () => (await cardAttr(phone, 'data-recording')) === 'true', 5000).catch(() => false);
      if (rec) break;
      if (attempt >= 3) throw new Error(`no take after 3 taps: "${await msgs(phone)}"`);
      log(`    (tap ${attempt} on Record started no take: "${await msgs(phone)}")`);
    }
    await fetch(base + '/mock/stall?on=1', { method: 'POST' });
    await until('stalled', async () => (await cardAttr(phone, 'data-stalled')) === 'true');
    await until('take ended', async () => (await cardAttr(phone, 'data-recording')) === 'false');
    assert((await dom.text(phone, C('.dev-conn'))) === 'No audio: reopening', 'the card says the device is silent');
    await until('told why', async () => /stopped delivering audio/.test(await msgs(phone)));
    assert(await dom.disabled(phone, C('.btn-record')), 'Record disabled while the device is silent');
    assert((await cardAttr(phone, 'data-held')) === 'true', 'control is kept through the stall');
    await axe(phone, 'stalled');
    await fetch(base + '/mock/stall?on=0', { method: 'POST' });
    await until('back', async () => (await cardAttr(phone, 'data-stalled')) === 'false');
    assert((await dom.text(phone, C('.dev-conn'))) === 'Connected', 'the card says connected again');
    await until('record enabled', async () => !(await dom.disabled(phone, C('.btn-record'))));
    assert((await cardAttr(phone, 'data-recording')) === 'false', 'no take starts by itself');
  });

  await step('the recorder restarts: the lost control is said in words', async () => {
    await fetch(base + '/mock/restart', { method: 'POST' });
    await until('told', async () => /The recorder restarted: your control of Demo tone ended/.test(await msgs(phone)), 20000);
    await until('not held', async () => (await cardAttr(phone, 'data-held')) === 'false');
  });

  if (phone.can.offline) {
    await step('offline during a take: every control disabled, the card says what is known', async () => {
      await phone.click(C('.btn-lease'));
      await until('held', async () => (await cardAttr(phone, 'data-held')) === 'true');
      await phone.click(C('.btn-record'));
      await until('recording', async () => (await cardAttr(phone, 'data-recording')) === 'true');
      await phone.setOffline(true);
      await until('offline', async () => (await dom.text(phone, '#conn')) === 'Offline');
      await until('says what it knows', async () => /^Last seen recording \d+:\d\d ago; the recorder keeps recording without this page\.$/.test(await dom.text(phone, C('.lease-text'))));
      const enabled = await phone.eval(() => [...document.querySelectorAll('main button')]
        .filter((b) => !b.disabled && !b.closest('[hidden]') && !b.matches('.meter-btn, .notice-close')).map((b) => b.className));
      assert(enabled.length === 0, `enabled offline: ${enabled.join(', ')}`);
      await axe(phone, 'offline');
      await shots(phone, 'offline', SIZES.iphone);
      await phone.setOffline(false);
      await until('online', async () => (await dom.text(phone, '#conn')) === 'Live', 20000);
      await until('still held', async () => (await cardAttr(phone, 'data-held')) === 'true');
      await phone.click(C('.btn-record'));
      await until('stopped', async () => (await cardAttr(phone, 'data-recording')) === 'false');
    });
  } else {
    log(`    (${engine}: no network emulation through WebDriver; the offline card is tested in Chromium)`);
  }

  await step('keys: R stops a take; Space on a focused button keeps its own meaning', async () => {
    const p = phone;
    if ((await cardAttr(p, 'data-held')) !== 'true') {
      await p.click(C('.btn-lease'));
      await until('held', async () => (await cardAttr(p, 'data-held')) === 'true');
    }
    await blur(p);
    await p.press('Space');
    await until('recording by Space', async () => (await cardAttr(p, 'data-recording')) === 'true');
    await p.press('r');
    await until('stopped by R', async () => (await cardAttr(p, 'data-recording')) === 'false', 5000).catch(async (e) => {
      throw new Error(`${e.message}; messages "${await msgs(p)}", live "${await dom.text(p, '#live')}"`);
    });
  });

  await step('record all: shown with two devices, only to a screen in control; one tap starts both, one stops both', async () => {
    const p = phone;   // holds Demo tone (the keys step)
    if ((await cardAttr(p, 'data-held')) !== 'true') {
      await p.click(C('.btn-lease'));
      await until('held', async () => (await cardAttr(p, 'data-held')) === 'true');
    }
    assert(!(await dom.visible(p, '#all-row')), 'no Record all with one device');
    await fetch(base + '/mock/plug?on=1', { method: 'POST' });
    await until('second card', async () => (await dom.count(p, '.card')) === 2).catch(async (e) => {
      throw new Error(`${e.message}; conn "${await dom.text(p, '#conn')}", events ${await p.eval(() => window.pirec.stats.events)}, server ${(await status()).devices.length} devices`);
    });
    await until('Record all shown', () => dom.visible(p, '#all-row'));
    assert(!(await dom.disabled(p, '#record-all')), 'enabled for the screen in control');
    assert((await dom.name(p, '#record-all')) === 'Record all devices', 'its name says what it does');
    // another screen that controls nothing sees it disabled, and why
    await ipad.goto(base + '/');
    await until('iPad sees two', async () => (await dom.count(ipad, '.card')) === 2);
    await until('shown on the iPad', () => dom.visible(ipad, '#all-row'));
    assert(await dom.disabled(ipad, '#record-all'), 'disabled without control of a device');
    assert(/Take control of a device/.test(await dom.text(ipad, '#all-hint')), 'says why it is disabled');
    await p.click('#record-all');
    await until('both recording', async () => (await dom.count(p, '.card[data-recording="true"]')) === 2, 5000).catch(async (e) => {
      throw new Error(`${e.message}; messages "${await msgs(p)}"`);
    });
    const st = await status();
    assert(st.devices.length === 2 && st.devices.every((d) => d.recording), `the server records on both: ${JSON.stringify(st.devices.map((d) => [d.id, d.recording]))}`);
    await until('Stop all', async () => (await dom.text(p, '#record-all-label')) === 'Stop all');
    assert((await dom.name(p, '#record-all')) === 'Stop all takes of the session', 'its name says Stop');
    // every page learns of the session from its event
    await until('the iPad shows both recording', async () => (await dom.count(ipad, '.card[data-recording="true"]')) === 2);
    await until('and the session', async () => /session [0-9a-f]{16}/.test(await dom.text(ipad, '#all-hint')));
    await axe(p, 'record all');
    await shots(p, 'record-all', SIZES.iphone);
    await p.click('#record-all');
    await until('both stopped', async () => (await dom.count(p, '.card[data-recording="true"]')) === 0, 5000);
    await until('Record all again', async () => (await dom.text(p, '#record-all-label')) === 'Record all');
    assert((await status()).devices.every((d) => !d.recording), 'the server stopped both');
    await fetch(base + '/mock/plug?on=0', { method: 'POST' });
    await until('one card', async () => (await dom.count(p, '.card')) === 1);
    await until('Record all hidden', async () => !(await dom.visible(p, '#all-row')));
  });

  await step('the take\'s copy on the ingest ([forward]): where it stands, from the status and from events', async () => {
    const p = phone;
    const name = (await (await fetch(base + '/api/recordings')).json()).recordings[0].name;
    const t = `.take[data-name="${name}"] .take-copy`;
    const fwd = (q) => fetch(`${base}/mock/forward?file=${encodeURIComponent(name)}&${q}`, { method: 'POST' });
    await fwd('state=sending&connected=0&seconds_behind=12.3&error=' + encodeURIComponent('certificate verify failed: the CA file given does not vouch for this server'));
    await until('not reachable, and why', async () => /not reachable \(certificate verify failed.*\); 0:12\.3 behind/.test(await dom.text(p, t) || ''));
    assert((await dom.attr(p, t, 'data-state')) === 'sending-offline', 'marked as not reachable');
    await axe(p, 'copy not reachable');
    // a page loaded now has it from the status
    await ipad.goto(base + '/');
    await until('from the status', async () => /not reachable/.test(await dom.text(ipad, t) || ''));
    await fwd('state=complete&md5=0123456789abcdef0123456789abcdef');
    await until('complete', async () => (await dom.text(p, t)) === 'Copy on the ingest: complete, MD5 verified.');
    await until('complete on the iPad too', async () => (await dom.attr(ipad, t, 'data-state')) === 'complete');
  });

  await step('axe-core finds no violation in any state (contrast included), light and dark', async () => {
    if (phone.can.dark) {
      for (const p of [ipad, phone]) { await p.setDark(true); await axe(p, 'dark'); await p.setDark(false); }
    }
    assert(violations.length === 0, '\n' + violations.join('\n'));
  });

  await step('no uncaught errors nor CSP violations in the pages', async () => {
    const all = [];
    for (const [i, p] of pages.entries()) for (const x of await p.problems()) all.push(`${i}: ${x}`);
    assert(all.length === 0, all.join('\n'));
  });
  exitCode = 0;
} catch (e) {
  for (const [i, p] of pages.entries()) {
    try { await p.screenshot(path.join(artifacts, `${engine}-features-failure-${i}.png`), { fullPage: true }); } catch (x) { /* gone */ }
    try { const pr = await p.problems(); if (pr.length) log(`page ${i} problems:\n  ` + pr.join('\n  ')); } catch (x) { /* gone */ }
  }
  if (violations.length) log('axe-core:\n  ' + violations.join('\n  '));
} finally {
  await browser.close();
  mock.kill('SIGTERM');
}
log(`browser features (${engine}): ${counts.passed} passed, ${counts.failed} failed`);
process.exit(exitCode || (counts.failed ? 1 : 0));
