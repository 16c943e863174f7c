// One small page interface over two browser engines, so that the same browser test runs in
// Debian's Chromium (playwright-core, CDP) and in WebKitGTK, the engine of iPad Safari
// (WebKitWebDriver, W3C WebDriver over plain HTTP, MiniBrowser under Xvfb).
//
//   const b = await launch('chromium' | 'webkit', { chromium: '/usr/bin/chromium' });
//   const p = await b.newPage({ width: 820, height: 1180 });
//   await p.goto(url); await p.eval((sel) => document.querySelector(sel).textContent, '.x');
//   await p.click('.btn'); await p.screenshot(file); await b.close();
//
// Only what both engines do is in the interface; what one engine alone can do is offered as
// a capability (p.can.offline, p.can.dark, p.can.cdp) and the test says when it skips it.
import { chromium } from 'playwright-core';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

export const MINIBROWSER = '/usr/lib/x86_64-linux-gnu/webkit2gtk-4.1/MiniBrowser';

// Collects uncaught errors and CSP violations inside the page itself (WebKitWebDriver shows
// no console); installed after every navigation.
const COLLECTOR = `(function () {
  if (window.__problems) return;
  window.__problems = [];
  addEventListener('error', function (e) { __problems.push('uncaught ' + (e.message || e.type)); });
  addEventListener('unhandledrejection', function (e) { __problems.push('unhandled rejection ' + (e.reason && e.reason.message || e.reason)); });
  document.addEventListener('securitypolicyviolation', function (e) { __problems.push('CSP violation: ' + e.violatedDirective + ' ' + e.blockedURI); });
})();`;

export async function launch(engine, opts = {}) {
  if (engine === 'chromium') return launchChromium(opts);
  if (engine === 'webkit') return launchWebKit(opts);
  throw new Error(`unknown engine "${engine}" (chromium or webkit)`);
}

// ---- Chromium through playwright-core ------------------------------------------------------
async function launchChromium(opts) {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'pirec-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: opts.chromium || '/usr/bin/chromium',
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic'],
    viewport: { width: 820, height: 1180 },
    deviceScaleFactor: 2,
    locale: 'en-GB',
    acceptDownloads: true,
  });
  context.setDefaultTimeout(5000);
  let first = context.pages()[0] || null;
  return {
    engine: 'chromium',
    context,
    async newPage(size = { width: 820, height: 1180 }) {
      const pw = first || await context.newPage();
      first = null;
      await pw.setViewportSize(size);
      return chromiumPage(pw, context);
    },
    async close() {
      await context.close().catch(() => {});
      fs.rmSync(profile, { recursive: true, force: true });
    },
  };
}

function chromiumPage(pw, context) {
  const problems = [];
  pw.on('pageerror', (e) => problems.push(`uncaught ${e.message}`));
  pw.on('console', (m) => {
    const t = m.text();
    if (/Content Security Policy|Refused to/.test(t)) problems.push(t);
    if (m.type() === 'error' && !/Failed to load resource|ERR_INTERNET_DISCONNECTED|ERR_CONNECTION_REFUSED|EventSource/.test(t)) {
      problems.push(`console error: ${t}`);
    }
  });
  let cdp = null;
  return {
    engine: 'chromium',
    pw,
    can: { offline: true, dark: true, cdp: true, fullPage: true },
    async goto(url) {
      const r = await pw.goto(url);
      await pw.evaluate(COLLECTOR);
      return r ? r.status() : 0;
    },
    eval: (fn, arg) => pw.evaluate(fn, arg),
    evalScript: (src) => pw.evaluate(src),
    async click(sel) { await pw.locator(sel).first().click(); },
    async press(key) { await pw.keyboard.press(key); },
    async screenshot(file, o = {}) { await pw.screenshot({ path: file, fullPage: !!o.fullPage }); },
    setSize: (w, h) => pw.setViewportSize({ width: w, height: h }),
    setOffline: (on) => context.setOffline(on),
    setDark: (on) => pw.emulateMedia({ colorScheme: on ? 'dark' : 'light' }),
    async cdpSession() { if (!cdp) cdp = await context.newCDPSession(pw); return cdp; },
    async problems() {
      const inPage = await pw.evaluate(() => window.__problems || []).catch(() => []);
      return problems.concat(inPage);
    },
    close: () => pw.close(),
  };
}

// ---- WebKitGTK through WebKitWebDriver (raw W3C WebDriver) ---------------------------------
function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => resolve(p)); });
  });
}

async function waitFor(what, fn, ms) {
  const end = Date.now() + ms;
  for (;;) {
    try { const v = await fn(); if (v) return v; } catch (e) { /* not yet */ }
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

// Xvfb on a display it picks itself (-displayfd), so that parallel runs do not collide.
async function startXvfb() {
  const x = spawn('Xvfb', ['-displayfd', '3', '-screen', '0', '1400x1400x24', '-nolisten', 'tcp'],
    { stdio: ['ignore', 'ignore', 'pipe', 'pipe'] });
  let out = '', err = '';
  x.stdio[3].on('data', (b) => { out += b; });
  x.stderr.on('data', (b) => { err += b; });
  const display = await waitFor('Xvfb to give its display number', () => {
    if (x.exitCode !== null) throw new Error('Xvfb exited: ' + err);
    return /\d+\n/.test(out) ? ':' + out.trim() : null;
  }, 15000).catch((e) => { x.kill('SIGKILL'); throw new Error(`${e.message}; Xvfb said: ${err.trim()}`); });
  return { proc: x, display };
}

async function launchWebKit(opts) {
  const xvfb = opts.display ? null : await startXvfb();
  const display = opts.display || xvfb.display;
  const port = await freePort();
  const driver = spawn(opts.webdriver || 'WebKitWebDriver', [`--port=${port}`],
    { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, DISPLAY: display } });
  let dlog = '';
  driver.stdout.on('data', (b) => { dlog += b; });
  driver.stderr.on('data', (b) => { dlog += b; });
  const base = `http://127.0.0.1:${port}`;
  const stopAll = () => {
    if (driver.exitCode === null) driver.kill('SIGTERM');
    if (xvfb && xvfb.proc.exitCode === null) xvfb.proc.kill('SIGTERM');
  };
  async function wd(method, p, body) {
    const r = await fetch(base + p, {
      method, headers: { 'Content-Type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const j = await r.json().catch(() => ({}));
    if (!r.ok) {
      const v = j.value || {};
      throw new Error(`WebDriver ${method} ${p}: ${v.error || r.status} ${v.message || ''}`.trim());
    }
    return j.value;
  }
  let sid;
  try {
    await waitFor('WebKitWebDriver to listen', () => wd('GET', '/status').then(() => true), 15000);
    const s = await wd('POST', '/session', { capabilities: { alwaysMatch: {
      'webkitgtk:browserOptions': { binary: opts.minibrowser || MINIBROWSER, args: ['--automation'] },
    } } });
    sid = s.sessionId;
  } catch (e) {
    stopAll();
    throw new Error(`${e.message}\nWebKitWebDriver said: ${dlog.trim()}`);
  }
  const S = `/session/${sid}`;
  let current = null;                 // the window handle WebDriver commands go to
  let firstUsed = false;
  await wd('POST', `${S}/timeouts`, { script: 30000 });

  async function webkitPage(handle, size) {
    const to = async () => { if (current !== handle) { await wd('POST', `${S}/window`, { handle }); current = handle; } };
    const page = {
      engine: 'webkit',
      can: { offline: false, dark: false, cdp: false, fullPage: false },
      async goto(url) {
        await to();
        await wd('POST', `${S}/url`, { url });
        await wd('POST', `${S}/execute/sync`, { script: COLLECTOR, args: [] });
        return 200;        // WebDriver does not tell the status; the test checks the page itself
      },
      async eval(fn, arg) {
        await to();
        return wd('POST', `${S}/execute/sync`, { script: `return (${fn}).call(null, arguments[0]);`, args: [arg === undefined ? null : arg] });
      },
      async evalScript(src) {
        await to();
        return wd('POST', `${S}/execute/sync`, { script: src, args: [] });
      },
      async click(sel) {
        await to();
        const el = await wd('POST', `${S}/element`, { using: 'css selector', value: sel });
        await wd('POST', `${S}/element/${Object.values(el)[0]}/click`, {});
      },
      async press(key) {
        await to();
        const code = { Space: ' ', PageDown: '\uE00F', Enter: '\uE007', Escape: '\uE00C' }[key] || key;
        await wd('POST', `${S}/actions`, { actions: [{ type: 'key', id: 'kbd', actions: [
          { type: 'keyDown', value: code }, { type: 'keyUp', value: code }] }] });
        await wd('DELETE', `${S}/actions`);
      },
      async screenshot(file) {
        await to();
        fs.writeFileSync(file, Buffer.from(await wd('GET', `${S}/screenshot`), 'base64'));
      },
      async setSize(w, h) {
        await to();
        // the window includes MiniBrowser's toolbar: grow it until the page gets w x h
        await wd('POST', `${S}/window/rect`, { width: w, height: h });
        const inner = await page.eval(() => [innerWidth, innerHeight]);
        await wd('POST', `${S}/window/rect`, { width: w + (w - inner[0]), height: h + (h - inner[1]) });
      },
      async problems() { return page.eval(() => window.__problems || []).catch(() => []); },
      async close() { await to(); await wd('DELETE', `${S}/window`); current = null; },
    };
    await page.setSize(size.width, size.height);
    return page;
  }

  return {
    engine: 'webkit',
    async newPage(size = { width: 820, height: 1180 }) {
      let handle;
      if (!firstUsed) { firstUsed = true; handle = await wd('GET', `${S}/window`); }
      else handle = (await wd('POST', `${S}/window/new`, { type: 'window' })).handle;
      current = null;
      return webkitPage(handle, size);
    },
    async close() {
      await wd('DELETE', S).catch(() => {});
      stopAll();
    },
  };
}
