/** The comparison report: one row per run, the best marked, ties within noise named, failures listed, plots overlaid. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { MetricsLog } from '../../src/train/metrics.js';
import { getPreset } from '../../src/config/presets.js';
import { countParams, flopsPerToken } from '../../src/model/count.js';
import { writeSweepState, type SweepState } from '../../src/io/sweep-dir.js';
import { bestAndTies, comparisonCharts, runsComparison, sweepComparison, writeComparison } from '../../src/report/compare.js';
import { summariseRun } from '../../src/report/run-summary.js';
import { decodePng } from './png-decode.js';

const root = mkdtempSync(join(tmpdir(), 'lmf-compare-'));

/** A finished run whose validation loss ends at `final`, the last three evaluations spread by `spread`. */
function fakeRun(dir: string, final: number, spread: number, overrides: Record<string, unknown> = {}): void {
  const model = { ...getPreset('cpu-tiny'), ...overrides };
  const tc = { model: 'cpu-tiny', seq: 128, micro_batch: 8, grad_accum: 1, steps: 40, lr: 5e-3, run_dir: dir };
  const log = new MetricsLog(dir);
  writeFileSync(join(dir, 'train_config.json'), JSON.stringify(tc));
  writeFileSync(join(dir, 'model_config.json'), JSON.stringify(model));
  for (let s = 1; s <= 40; s++) {
    log.train({ step: s, loss: final + 1 + 5 / s, lr: 5e-3, grad_norm: 1, tokens_per_s: 1000 + s, gflops: 120, tokens: s * 1024, step_s: 1 });
    if (s % 10 === 0) log.eval({ step: s, loss: s === 40 ? final : s === 30 ? final + spread : s === 20 ? final + spread / 2 : final + 1, bpb: final / 3.5 });
  }
  log.close();
}

test('best run, ties within noise, failures and plots of a sweep', () => {
  const sweep = join(root, 'sweep');
  const variants: [string, number, number][] = [['v1', 5.0, 0.02], ['v2', 5.01, 0.05], ['v3', 5.3, 0.01], ['v4', NaN, 0]];
  const state: SweepState = {
    version: 1, name: 'toy', file: 'toy.yaml', base: null, hold: { tokens: 40960, seed: 1 }, keys: ['model.rope_theta'], nproc: 1,
    assumption: '150 GFLOP/s achieved', created: '', variants: [],
  };
  for (const [id, final, spread] of variants) {
    const failed = Number.isNaN(final);
    if (!failed) fakeRun(join(sweep, id), final, spread);
    state.variants.push({
      id, values: { 'model.rope_theta': id }, sets: [], runDir: id, state: failed ? 'failed' : 'done', attempts: 1,
      ...(failed ? { error: 'out of memory' } : { measured: { wallSeconds: 75, peakRssBytes: 2 ** 30, enginePeakBytes: 300 * 2 ** 20 } }),
      prediction: { params: 1, flopsPerToken: 1, tokens: 40960, steps: 40, seconds: 60, memoryBytes: 290 * 2 ** 20 },
    });
  }
  writeSweepState(sweep, state);
  const c = sweepComparison(sweep);
  const { best, withinNoise } = bestAndTies(c.runs);
  assert.equal(best, 0);
  assert.deepEqual(withinNoise, [1]); // 5.01 - 5.0 < 0.05; 5.3 is beyond both spreads; v4 failed
  const r0 = c.runs[0]!;
  const m = getPreset('cpu-tiny');
  assert.equal(r0.params, countParams(m).total);
  assert.equal(r0.flopsPerToken, flopsPerToken(m, 128).total);
  assert.equal(r0.tokens, 40 * 1024);
  assert.equal(r0.finalValLoss, 5.0);
  assert.ok(Math.abs(r0.valNoise! - 0.02) < 1e-12);
  // Mean of the last ten train losses, 6 + 5/s for s = 31..40.
  const expected = [31, 32, 33, 34, 35, 36, 37, 38, 39, 40].reduce((a, s) => a + 6 + 5 / s, 0) / 10;
  assert.ok(Math.abs(r0.finalTrainLoss! - expected) < 1e-12);
  assert.deepEqual(r0.val.map((p) => [p.step, p.tokens]), [[10, 10240], [20, 20480], [30, 30720], [40, 40960]]);
  assert.equal(r0.val[3]!.flops, 40960 * flopsPerToken(m, 128).total);

  const out = join(sweep, 'report');
  const rep = writeComparison(c, out);
  const md = readFileSync(join(out, 'report.md'), 'utf8');
  assert.equal(md, rep.markdown + '\n');
  assert.match(md, /^# Sweep toy/);
  assert.match(md, /held fixed per run: tokens 40,960, seed 1/);
  assert.match(md, /\| \*\*v1\*\* ★ \| v1 \| 20\.\d\dM \| [\d.]+e8 \| 41\.0k \| [\d.]+ \| 5\.0000 \| 0\.0200 \|/);
  assert.match(md, /\| v2 \| v2 \|.*\| 5\.0100 \| 0\.0500 \|/);
  assert.match(md, /1m15s \(1m00s\) \| 300 MiB \/ 1\.00 GiB RSS \(290 MiB\) \| done \|/);
  assert.match(md, /Within noise of the best.*v2 \(5\.0100, differs by 0\.0100 < noise 0\.0500\)/);
  assert.doesNotMatch(md, /Within noise.*v3/);
  assert.match(md, /- \*\*v4 failed\*\*: out of memory/);
  assert.match(md, /\| v4 \| v4 \| — \|/);
  for (const f of ['val_loss_tokens', 'val_loss_flops', 'train_loss_step']) {
    assert.ok(existsSync(join(out, `${f}.svg`)), f);
    assert.equal(decodePng(readFileSync(join(out, `${f}.png`))).width, 800);
    assert.match(md, new RegExp(`\\]\\(${f}\\.png\\)`));
  }
  const svg = readFileSync(join(out, 'val_loss_tokens.svg'), 'utf8');
  for (const id of ['v1', 'v2', 'v3']) assert.match(svg, new RegExp(`>${id}<`), `legend names ${id}`);
  assert.equal(comparisonCharts(c)[0]![1].series.length, 3, 'the failed run has no curve');
});

test('any runs: the columns are the config keys that differ', () => {
  const a = join(root, 'runs', 'theta-a'), b = join(root, 'runs', 'theta-b');
  fakeRun(a, 5.2, 0.1, { rope_theta: 1e5 });
  fakeRun(b, 5.1, 0.01, { rope_theta: 1e6 });
  const c = runsComparison([a, b]);
  assert.deepEqual(c.keys, ['model.rope_theta']); // run_dir differs too, but is not a setting
  assert.deepEqual(c.runs.map((r) => r.values), [{ 'model.rope_theta': 1e5 }, { 'model.rope_theta': 1e6 }]);
  const { markdown } = writeComparison(c, join(root, 'cmp'));
  assert.match(markdown, /\| run \| rope_theta \| params/);
  assert.match(markdown, /\| \*\*theta-b\*\* ★ \| 1000000 \|/);
  assert.match(markdown, /40s \(steps\) \(—\)/); // no sweep: wall time from the logged step times, no prediction
  assert.doesNotMatch(markdown, /\| state \|/);
  // A run that died before writing anything still summarises.
  const s = summariseRun(join(root, 'nothing-here'));
  assert.deepEqual([s.params, s.finalValLoss, s.steps], [null, null, 0]);
});
