/** A run's four plots from its metrics.jsonl, and `lmforge report` returning on every degenerate series. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { writeReport } from '../../src/report/run-plots.js';
import { MetricsLog } from '../../src/train/metrics.js';
import { decodePng } from './png-decode.js';
import { CLI } from '../helpers.js';

type Px = [number, number, number];
const count = (rgb: Uint8Array, is: (p: Px) => boolean): number => {
  let n = 0;
  for (let i = 0; i < rgb.length; i += 3) if (is([rgb[i]!, rgb[i + 1]!, rgb[i + 2]!])) n++;
  return n;
};
const blue = ([r, g, b]: Px): boolean => b > r + 60 && b > g + 40;
const orange = ([r, g, b]: Px): boolean => r > g + 50 && g > b + 30;
const green = ([r, g, b]: Px): boolean => g > r + 40 && g > b + 40;
const red = ([r, g, b]: Px): boolean => r > g + 60 && r > b + 60;

test('report: four PNGs and SVGs from a synthetic run, with the series colours present', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lmforge-report-'));
  const log = new MetricsLog(dir);
  for (let s = 1; s <= 300; s++) {
    const loss = 3 + 8 * Math.exp(-s / 60) + 0.1 * Math.sin(s * 1.7);
    log.train({ step: s, loss: s === 150 ? NaN : loss, lr: 6e-4 * Math.min(1, s / 30), grad_norm: 0.4 + 10 * Math.exp(-s / 20), tokens_per_s: 9000 + 300 * Math.sin(s), mfu: 0.4 });
    if (s % 50 === 0) log.eval({ step: s, loss: loss + 0.1 });
  }
  log.close();
  const files = writeReport(dir);
  assert.deepEqual(files.map((f) => path.basename(f)), ['loss.png', 'lr.png', 'throughput.png', 'grad_norm.png']);
  assert.deepEqual(fs.readdirSync(path.join(dir, 'plots')).sort(), [
    'grad_norm.png', 'grad_norm.svg', 'loss.png', 'loss.svg', 'lr.png', 'lr.svg', 'throughput.png', 'throughput.svg',
  ]);
  const png = (i: number) => decodePng(fs.readFileSync(files[i]!));
  const loss = png(0);
  assert.deepEqual([loss.width, loss.height], [800, 480]);
  assert.ok(count(loss.rgb, blue) > 300, 'train loss (blue) drawn');
  assert.ok(count(loss.rgb, orange) > 50, 'val loss (orange) drawn');
  assert.ok(count(png(1).rgb, green) > 300, 'lr (green) drawn');
  assert.equal(count(png(1).rgb, red), 0, 'no red in the lr plot');
  assert.ok(count(png(3).rgb, red) > 300, 'grad norm (red) drawn');
  assert.match(fs.readFileSync(path.join(dir, 'plots', 'throughput.svg'), 'utf8'), /median 9\d{3} tok\/s, MFU 40\.0%/);

  // A run with no records yet still gets its (empty) plots rather than a crash.
  const empty = fs.mkdtempSync(path.join(os.tmpdir(), 'lmforge-report-'));
  fs.writeFileSync(path.join(empty, 'metrics.jsonl'), '');
  for (const f of writeReport(empty)) assert.equal(decodePng(fs.readFileSync(f)).width, 800);
  assert.throws(() => writeReport(path.join(empty, 'missing')), /metrics.jsonl does not exist/);
});

test('lmforge report returns on degenerate series: constant, one point, NaN, +-Inf, huge and tiny ranges', () => {
  const cases: Record<string, Array<Record<string, number>>> = {
    constant: [1, 2, 3].map((s) => ({ step: s, loss: 2, lr: 0.005, grad_norm: 1, tokens_per_s: 100 })),
    'last-bit': [1, 2, 3].map((s) => ({ step: s, loss: 2, lr: s === 2 ? 0.005000000000000001 : 0.005, grad_norm: 1, tokens_per_s: 100 })),
    'one-point': [{ step: 1, loss: 5, lr: 1e-3, grad_norm: 0.5, tokens_per_s: 10 }],
    'non-finite': [1, 2, 3].map((s) => ({ step: s, loss: [NaN, Infinity, -Infinity][s - 1]!, lr: NaN, grad_norm: Infinity, tokens_per_s: -Infinity })),
    huge: [1, 2, 3].map((s) => ({ step: s, loss: [1e-300, 1e300, -1e300][s - 1]!, lr: [Number.MAX_VALUE, -Number.MAX_VALUE, 0][s - 1]!, grad_norm: [1e-300, 1e300, 5e-324][s - 1]!, tokens_per_s: 1e308 })),
    'huge-steps': [{ step: 1, loss: 1, lr: 1, grad_norm: 1, tokens_per_s: 1 }, { step: 2 ** 53, loss: 1.0000001, lr: 1, grad_norm: 1, tokens_per_s: 1 }],
  };
  const dirs: Record<string, string> = {};
  for (const [name, records] of Object.entries(cases)) {
    const dir = (dirs[name] = fs.mkdtempSync(path.join(os.tmpdir(), `lmforge-degenerate-${name}-`)));
    const log = new MetricsLog(dir);
    for (const r of records) log.train(r as never);
    log.eval({ step: records[0]!.step!, loss: records[0]!.loss! });
    log.close();
  }
  // The verb itself on the case that used to hang, then every case in one child process (one chart-library start);
  // both under a timeout, as a hang is the failure to catch.
  const cli = spawnSync(process.execPath, [CLI, 'report', dirs['last-bit']!], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(cli.status, 0, `lmforge report: exit ${cli.status} signal ${cli.signal}\n${cli.stderr}`);
  const script = `import { writeReport } from ${JSON.stringify(new URL('../../src/report/run-plots.js', import.meta.url).href)};
    for (const d of ${JSON.stringify(Object.values(dirs))}) writeReport(d);`;
  const all = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(all.status, 0, `exit ${all.status} signal ${all.signal}\n${all.stderr}`);
  for (const [name, dir] of Object.entries(dirs))
    for (const f of ['loss', 'lr', 'throughput', 'grad_norm']) {
      const p = decodePng(fs.readFileSync(path.join(dir, 'plots', `${f}.png`)));
      assert.deepEqual([p.width, p.height], [800, 480], `${name}/${f}`);
      assert.doesNotMatch(fs.readFileSync(path.join(dir, 'plots', `${f}.svg`), 'utf8'), /NaN|Infinity/, `${name}/${f}.svg has no NaN/Infinity coordinates`);
    }
});
