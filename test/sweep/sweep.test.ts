/**
 * `lmforge sweep` end to end at a tiny size: a failing variant is recorded and the sweep goes on; a sweep killed
 * mid-run (SIGKILL, runner and worker) and continued with --resume gives the same final table as an uninterrupted
 * one, float for float; the report has one row per variant with the best marked.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { spawnSync } from 'node:child_process';
import { prepare } from '../../src/data/prepare.js';
import { readSweepState } from '../../src/io/sweep-dir.js';
import { sweepComparison } from '../../src/report/compare.js';
import { readMetrics } from '../../src/train/metrics.js';
import { KILL_ENV } from '../../src/sweep/worker.js';
import { CLI, REPO_ROOT } from '../helpers.js';

const root = mkdtempSync(join(tmpdir(), 'lmf-sweep-'));
let sweepFile = '';

before(async () => {
  const text = ['README.md', 'docs/data.md'].map((f) => readFileSync(join(REPO_ROOT, f), 'utf8')).join('\n\n');
  writeFileSync(join(root, 'corpus.txt'), text);
  const data = join(root, 'data');
  await prepare({ inputs: [join(root, 'corpus.txt')], out: data, valFraction: 0.2, workers: 1, textMode: 'blank-lines', progress: false, log: () => {} });
  sweepFile = join(root, 'tiny.yaml');
  writeFileSync(sweepFile, [
    'name: tiny',
    'set: { model: cpu-tiny, seq: 16, micro_batch: 2, grad_accum: 1, warmup_steps: 2, eval_every: 2, eval_batches: 2, threads: 1,',
    '       checkpoint_every: 3, lr: 0.03, model.hidden_size: 32, model.n_layer: 2, model.n_head: 4, model.head_dim: 8,',
    '       model.ffn_hidden: 64 }',
    'hold: { tokens: 192, seed: 7 }',
    'variants:',
    `  - { name: a, model.n_kv_head: 1, data: ${data} }`,
    `  - { name: b, model.n_kv_head: 4, data: ${data} }`,
    `  - { name: c, model.n_kv_head: 4, data: ${join(root, 'no-such-data')} }`,
    '',
  ].join('\n'));
});

function sweep(args: string[], env: Record<string, string> = {}) {
  return spawnSync(process.execPath, [CLI, 'sweep', sweepFile, '--quiet', ...args], { encoding: 'utf8', env: { ...process.env, ...env }, timeout: 600_000 }); // generous: a loaded CI machine is slow, a hang is what this guards against
}

/** Everything in a comparison that does not depend on the clock. */
function deterministic(dir: string) {
  return sweepComparison(dir).runs.map((r) => ({
    label: r.label, values: r.values, state: r.state, params: r.params, flopsPerToken: r.flopsPerToken, tokens: r.tokens,
    train: r.finalTrainLoss, val: r.finalValLoss, noise: r.valNoise, bpb: r.bitsPerByte, curve: r.val, trainCurve: r.train,
  }));
}

test('a failed run is recorded and the sweep goes on; a killed sweep resumes to the same table', () => {
  const straight = join(root, 'straight');
  const r1 = sweep(['--out', straight]);
  assert.equal(r1.status, 1, r1.stderr); // one run failed
  const s1 = readSweepState(straight);
  assert.deepEqual(s1.variants.map((v) => v.state), ['done', 'done', 'failed']);
  assert.match(s1.variants[2]!.error ?? '', /no-such-data/);
  assert.match(r1.stderr, /1 of 3 runs failed: c/);
  assert.match(r1.stdout, /\| \*\*[ab]\*\* ★ \|/); // the best run is marked in the printed table
  assert.match(r1.stdout, /\*\*c failed\*\*: .*no-such-data/);
  for (const f of ['report.md', 'val_loss_tokens.png', 'val_loss_flops.svg', 'train_loss_step.png']) assert.ok(existsSync(join(straight, 'report', f)), f);
  assert.ok(existsSync(join(straight, 'a', 'plots', 'loss.png')), 'each finished run gets its own plots');
  assert.equal(readMetrics(join(straight, 'a')).filter((r) => r.kind === 'train').length, 6);

  const killed = join(root, 'killed');
  const r2 = sweep(['--out', killed], { [KILL_ENV]: 'b:4' }); // after step 4; b's last checkpoint is step 3
  assert.equal(r2.signal, 'SIGKILL');
  const s2 = readSweepState(killed);
  assert.deepEqual(s2.variants.map((v) => v.state), ['done', 'running', 'pending']);
  assert.ok(existsSync(join(killed, 'b', 'checkpoints', 'step-00000003')));

  const again = sweep(['--out', killed]);
  assert.equal(again.status, 1);
  assert.match(again.stderr, /already holds a sweep; continue it with --resume/);

  const r3 = sweep(['--out', killed, '--resume']);
  assert.equal(r3.status, 1, r3.stderr);
  assert.deepEqual(readSweepState(killed).variants.map((v) => [v.state, v.attempts]), [['done', 1], ['done', 2], ['failed', 1]]);
  assert.deepEqual(deterministic(killed), deterministic(straight));
  // b's step-4 record written before the kill was dropped and rewritten once: no duplicates.
  assert.equal(readMetrics(join(killed, 'b')).filter((r) => r.kind === 'train').length, 6);

  const other = spawnSync(process.execPath, [CLI, 'sweep', sweepFile, '--quiet', '--out', killed, '--resume', '--set', 'lr=0.01'], { encoding: 'utf8' });
  assert.equal(other.status, 1);
  assert.match(other.stderr, /holds a sweep with other runs than this sweep file and --set give now \(variant 'a' differs\)/);
});
