// Helpers shared by the browser tests: steps, assertions, waits with deadlines (no fixed
// sleeps) and DOM queries that work through the engine interface of engine.mjs.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const here = path.dirname(fileURLToPath(import.meta.url));
export const T = 15000;                      // default deadline of one wait

export function parseArgs(argv) {
  return Object.fromEntries(argv.reduce((acc, a, i, all) => {
    if (a.startsWith('--')) acc.push([a.slice(2), all[i + 1] && !all[i + 1].startsWith('--') ? all[i + 1] : '1']);
    return acc;
  }, []));
}

export const log = (...a) => console.log(...a);
export const counts = { passed: 0, failed: 0 };
let prefix = '';
export function setPrefix(p) { prefix = p; }

export async function step(name, fn) {
  const t0 = Date.now();
  try {
    await fn();
    counts.passed++;
    log(`ok - ${prefix}${name} (${Date.now() - t0} ms)`);
  } catch (e) {
    counts.failed++;
    log(`not ok - ${prefix}${name}\n    ${String(e && e.stack || e).split('\n').slice(0, 6).join('\n    ')}`);
    throw e;
  }
}

export function assert(cond, msg) { if (!cond) throw new Error('assertion failed: ' + msg); }

// Wait until fn() returns truthy; returns its value.
export async function until(what, fn, timeout = T) {
  const end = Date.now() + timeout;
  let last;
  for (;;) {
    try { last = await fn(); if (last) return last; } catch (e) { last = e; }
    if (Date.now() > end) throw new Error(`timed out after ${timeout} ms waiting for ${what} (last: ${last})`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export function secondsOf(s) {      // "1:02", "1:02.3" or "1:02:03"
  const p = String(s).trim().split(':').map(Number);
  return p.reduce((a, b) => a * 60 + b, 0);
}

// DOM queries by CSS selector (run inside the page).
export const dom = {
  text: (p, sel) => p.eval((s) => { const e = document.querySelector(s); return e ? (e.textContent || '').trim() : null; }, sel),
  attr: (p, sel, name) => p.eval(([s, n]) => { const e = document.querySelector(s); return e ? e.getAttribute(n) : null; }, [sel, name]),
  count: (p, sel) => p.eval((s) => document.querySelectorAll(s).length, sel),
  visible: (p, sel) => p.eval((s) => {
    const e = document.querySelector(s);
    return !!(e && e.getClientRects().length && getComputedStyle(e).visibility !== 'hidden');
  }, sel),
  disabled: (p, sel) => p.eval((s) => { const e = document.querySelector(s); return e ? e.disabled === true : null; }, sel),
  // the accessible name as a screen reader computes it for a button with aria-label or text
  name: (p, sel) => p.eval((s) => {
    const e = document.querySelector(s);
    if (!e) return null;
    return (e.getAttribute('aria-label') || e.textContent || '').replace(/\s+/g, ' ').trim();
  }, sel),
  waitFor: (p, sel, timeout = T) => until(`${sel} to be shown`, () => dom.visible(p, sel), timeout),
};

// The first device card, and the value of one of its data- attributes.
export const CARD = '.card';
export const cardAttr = (p, name) => dom.attr(p, CARD, name);

export function artifactsDir(args) {
  const d = path.resolve(args.artifacts || path.join(here, '..', 'artifacts'));
  fs.mkdirSync(d, { recursive: true });
  return d;
}

// axe-core (from npm) run inside the page; returns the violations as readable lines.
const AXE = path.join(here, 'node_modules', 'axe-core', 'axe.min.js');
export async function axeCheck(page, label) {
  const src = fs.readFileSync(AXE, 'utf8');
  // as a script of the test itself: the page's CSP (no eval) does not apply to it
  if (!(await page.eval(() => !!window.axe))) await page.evalScript(src);
  const res = await page.eval(async () => {
    const r = await window.axe.run(document, { resultTypes: ['violations'] });
    return r.violations.map((v) => `${v.id} (${v.impact}): ${v.help} — ` +
      v.nodes.slice(0, 4).map((n) => n.target.join(' ') + (n.any[0] ? ' [' + n.any[0].message + ']' : '')).join('; '));
  });
  return res.map((l) => `${label}: ${l}`);
}
