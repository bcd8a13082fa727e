/**
 * The dashboard in a real browser: Debian's Chromium driven by playwright-core (which downloads no browser). The
 * page lists the runs and draws them; a line appended to metrics.jsonl reaches the chart without a reload;
 * selecting a run overlays it; the page cannot fetch outside DIR. Skipped, with the reason, where no Chromium is
 * installed, except in CI (CI=true), where .ci/run installs it and its absence is a failure.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { chromium, type Browser, type Page } from 'playwright-core';
import { MetricsLog } from '../../src/train/metrics.js';
import { startDashboard, type Dashboard } from '../../src/report/dashboard.js';

const CANDIDATES = [process.env.LMFORGE_CHROMIUM, '/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/bin/google-chrome'];
const executable = CANDIDATES.find((p): p is string => typeof p === 'string' && p !== '' && existsSync(p));
const skip = executable ? false : 'no Chromium found (apt-get install chromium, or set LMFORGE_CHROMIUM); CI installs it';
if (!executable && process.env.CI) throw new Error('CI: the dashboard browser tests need Chromium; .ci/run installs it with apt-get');

/** Flags for a headless Chromium as root on a machine without network or GPU. */
export const CHROMIUM_ARGS = [
  '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage',
];

const root = mkdtempSync(join(tmpdir(), 'lmf-dash-browser-'));
let d: Dashboard;
let browser: Browser;

function run(name: string, steps: number): string {
  const dir = join(root, name);
  const log = new MetricsLog(dir);
  for (let s = 1; s <= steps; s++) log.train({ step: s, loss: 8 - s / 10, lr: 1e-3 * s, grad_norm: 2 / s, tokens_per_s: 1000 + s });
  log.eval({ step: steps, loss: 8 - steps / 10 + 0.2 });
  log.close();
  writeFileSync(join(dir, 'train_config.json'), JSON.stringify({ steps: name === 'older' ? 10 : 100, lr: name === 'older' ? 1e-3 : 2e-3 }));
  writeFileSync(join(dir, 'model_config.json'), JSON.stringify({ hidden_size: 32 }));
  return dir;
}

/** Points of the chart's series whose name is `name`. */
function pointsOf(page: Page, chart: string, name: string): Promise<number> {
  return page.evaluate(([c, n]) => {
    const ec = (window as unknown as { echarts: { getInstanceByDom(e: Element | null): { getOption(): { series: { name: string; data: unknown[] }[] } } } }).echarts;
    const s = ec.getInstanceByDom(document.getElementById(`chart-${c}`)).getOption().series.find((x) => x.name === n);
    return s ? s.data.length : -1;
  }, [chart, name] as const);
}

before(async () => {
  if (skip) return;
  run('older', 10);
  await new Promise((r) => setTimeout(r, 20)); // 'newer' is the most recently written run
  run('newer', 20);
  d = await startDashboard({ dir: root, port: 0, scanMs: 150 });
  browser = await chromium.launch({ executablePath: executable, args: CHROMIUM_ARGS });
});

after(async () => {
  await browser?.close();
  await d?.close();
});

test('the page renders the runs, follows appended metrics live, and overlays a selected run', { skip, timeout: 60_000 }, async () => {
  const page = await browser.newPage({ viewport: { width: 1300, height: 900 } });
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  let loads = 0;
  page.on('load', () => loads++);
  await page.goto(d.url);
  await page.waitForSelector('label[data-run="newer"]');
  assert.deepEqual(await page.$$eval('nav label', (ls) => ls.map((l) => (l as HTMLElement).dataset.run)), ['newer', 'older']);
  assert.match(await page.textContent('label[data-run="newer"]') ?? '', /running 20\/100/);
  assert.match(await page.textContent('label[data-run="older"]') ?? '', /done 10\/10/);
  // The run in progress starts selected and drawn.
  await page.waitForFunction(() => document.querySelector('#chart-loss canvas') !== null);
  await page.waitForFunction(() => {
    const ec = (window as unknown as { echarts: { getInstanceByDom(e: Element | null): { getOption(): { series: unknown[] } } | undefined } }).echarts;
    return (ec.getInstanceByDom(document.getElementById('chart-loss'))?.getOption().series.length ?? 0) > 0;
  });
  assert.equal(await pointsOf(page, 'loss', 'newer'), 20);
  assert.equal(await pointsOf(page, 'loss', 'newer val'), 1);
  assert.equal(await pointsOf(page, 'loss', 'older'), -1, 'not selected, not drawn');

  // A new line in metrics.jsonl reaches the chart through the event stream, with no reload.
  await page.evaluate(() => ((window as unknown as { marker: number }).marker = 42));
  appendFileSync(join(root, 'newer', 'metrics.jsonl'), JSON.stringify({ kind: 'train', step: 21, loss: 5.9, lr: 0.021, grad_norm: 0.1, tokens_per_s: 1021 }) + '\n');
  await page.waitForFunction(() => {
    const ec = (window as unknown as { echarts: { getInstanceByDom(e: Element | null): { getOption(): { series: { name: string; data: unknown[] }[] } } } }).echarts;
    return ec.getInstanceByDom(document.getElementById('chart-lr')).getOption().series.find((s) => s.name === 'newer')?.data.length === 21;
  }, undefined, { timeout: 10_000 });
  assert.equal(await pointsOf(page, 'loss', 'newer'), 21);
  assert.equal(await page.evaluate(() => (window as unknown as { marker: number }).marker), 42, 'same page: no reload');
  assert.equal(loads, 1);

  // Selecting the other run overlays it on every chart, and the config table shows where they differ.
  await page.check('input[data-run="older"]');
  await page.waitForFunction(() => {
    const ec = (window as unknown as { echarts: { getInstanceByDom(e: Element | null): { getOption(): { series: { name: string }[] } } } }).echarts;
    return ec.getInstanceByDom(document.getElementById('chart-throughput')).getOption().series.some((s) => s.name === 'older');
  });
  assert.equal(await pointsOf(page, 'grad_norm', 'older'), 10);
  assert.match(await page.textContent('#config') ?? '', /lr.*0\.002.*0\.001/s);

  // The page itself cannot read outside DIR either.
  const statuses = await page.evaluate(async () => Promise.all(
    ['/api/metrics?run=../../etc/passwd', '/api/metrics?run=%2Fetc%2Fpasswd', '/%2e%2e/%2e%2e/etc/passwd', '/etc/passwd'].map(async (u) => (await fetch(u)).status),
  ));
  // The browser resolves /%2e%2e/ itself (the URL standard), so that one arrives as /etc/passwd: not a route.
  assert.deepEqual(statuses, [403, 403, 404, 404]);
  assert.deepEqual(errors, []);
  await page.close();
});
