// Measures what the page costs the browser while it only shows the meters: Chromium's main
// thread busy time (CDP Performance.getMetrics TaskDuration) and the CPU time of the whole
// Chromium process tree (/proc), over a window of N seconds. A benchmark, not a test: it
// reports figures and asserts nothing.
//
//   node tests/browser/meter_cpu.mjs [--web DIR] [--seconds 10] [--throttle 1]
//
// It starts tests/browser/mock_server.py (levels at 25 Hz), serving the page from --web
// (default web/). To compare with an older page:
//   git archive main web | tar -x -C /tmp/old && node tests/browser/meter_cpu.mjs --web /tmp/old/web
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { launch } from './engine.mjs';
import { here, parseArgs, until } from './lib.mjs';

const args = parseArgs(process.argv.slice(2));
const seconds = Number(args.seconds || 10);
const throttle = Number(args.throttle || 1);
const mockArgs = [path.join(here, 'mock_server.py'), '--listen', '127.0.0.1:0'];
if (args.web) mockArgs.push('--web', path.resolve(args.web));
const mock = spawn('/usr/bin/python3', mockArgs, { stdio: ['ignore', 'pipe', 'inherit'] });
let out = '';
mock.stdout.on('data', (b) => { out += b; });
const url = await until('the mock to listen', () => (/(http:\/\/[0-9.:]+)/.exec(out) || [])[1], 15000);

// CPU seconds (user + system) of a process and all its descendants.
const HZ = 100;
function treeCpu(pid) {
  let total = 0;
  const kids = {};
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const st = fs.readFileSync(`/proc/${d}/stat`, 'latin1');
      const f = st.slice(st.lastIndexOf(')') + 2).split(' ');
      (kids[f[1]] = kids[f[1]] || []).push({ pid: d, cpu: (Number(f[11]) + Number(f[12])) / HZ });
    } catch (e) { /* gone */ }
  }
  const walk = (p) => { for (const k of kids[p] || []) { total += k.cpu; walk(k.pid); } };
  walk(String(pid));
  return total;
}

const browser = await launch('chromium');
try {
  const page = await browser.newPage({ width: 820, height: 1180 });
  await page.goto(url + '/');
  await until('levels', () => page.eval(() => window.pirec.stats.levels > 25), 15000);
  const cdp = await page.cdpSession();
  await cdp.send('Performance.enable');
  if (throttle > 1) await cdp.send('Emulation.setCPUThrottlingRate', { rate: throttle });
  const metrics = async () => Object.fromEntries((await cdp.send('Performance.getMetrics')).metrics.map((m) => [m.name, m.value]));
  const m0 = await metrics();
  const s0 = await page.eval(() => Object.assign({}, window.pirec.stats));
  const c0 = treeCpu(process.pid);
  const t0 = Date.now();
  await new Promise((r) => setTimeout(r, seconds * 1000));     // the measuring window
  const m1 = await metrics();
  const s1 = await page.eval(() => Object.assign({}, window.pirec.stats));
  const c1 = treeCpu(process.pid);
  const wall = (Date.now() - t0) / 1000;
  const pct = (x) => (100 * x / wall).toFixed(1) + ' %';
  console.log(`page: ${args.web || 'web/'}; window ${wall.toFixed(1)} s; CPU throttling ${throttle}x`);
  console.log(`level events ${s1.levels - s0.levels}, meter frames drawn ${s1.framesDrawn - s0.framesDrawn}`);
  console.log(`main thread busy (TaskDuration): ${pct(m1.TaskDuration - m0.TaskDuration)} ` +
    `(script ${pct(m1.ScriptDuration - m0.ScriptDuration)}, layout ${pct(m1.LayoutDuration - m0.LayoutDuration)}, ` +
    `style ${pct(m1.RecalcStyleDuration - m0.RecalcStyleDuration)})`);
  console.log(`Chromium processes, all together: ${pct(c1 - c0)} of one core`);
} finally {
  await browser.close();
  mock.kill('SIGTERM');
}
