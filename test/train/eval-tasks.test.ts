/**
 * Downstream tasks during training: `eval_tasks` are scored every `eval_tasks_every` steps and at the end, logged
 * as eval records, and the last record equals `lmforge eval` on the final checkpoint.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { prepare } from '../../src/data/prepare.js';
import { loadTrainConfig } from '../../src/config/train.js';
import { resolveModelConfig, Trainer } from '../../src/train/trainer.js';
import { readMetrics } from '../../src/train/metrics.js';
import { REPO_ROOT } from '../helpers.js';
import { runEval } from '../../src/cli/eval.js';
import { fixture } from '../eval/helpers.js';

let data = '';
const root = mkdtempSync(join(tmpdir(), 'lmf-evaltasks-'));

before(async () => {
  const text = ['README.md', 'docs/data.md'].filter((f) => existsSync(join(REPO_ROOT, f))).map((f) => readFileSync(join(REPO_ROOT, f), 'utf8')).join('\n\n');
  const file = join(root, 'corpus.txt');
  writeFileSync(file, text);
  data = join(root, 'data');
  await prepare({ inputs: [file], out: data, valFraction: 0.2, workers: 1, textMode: 'blank-lines', progress: false, log: () => {} });
});

test('eval_tasks are logged as eval records on schedule and match lmforge eval on the final checkpoint', async () => {
  const runDir = join(root, 'run');
  const tc = loadTrainConfig(undefined, [
    'model=cpu-tiny', `data=${data}`, 'seq=16', 'micro_batch=2', 'steps=6', 'warmup_steps=1', 'eval_every=0', 'eval_batches=1',
    'checkpoint_every=0', 'sample_tokens=0', 'lr=3e-2',
    'model.hidden_size=32', 'model.n_layer=1', 'model.n_head=2', 'model.n_kv_head=1', 'model.head_dim=16', 'model.ffn_hidden=64',
    `eval_tasks=mc:${fixture('mc.jsonl')},winogrande:${fixture('winogrande.jsonl')}:2`, 'eval_tasks_every=3',
  ]);
  tc.run_dir = runDir;
  const lines: string[] = [];
  const t = new Trainer(tc, resolveModelConfig(tc), runDir);
  await t.setup(false);
  await t.run({ onLog: (l) => lines.push(l) });
  t.dispose();
  const recs = readMetrics(runDir).filter((r) => r.kind === 'eval' && typeof r.task === 'string');
  assert.deepEqual(recs.map((r) => [r.step, r.task, r.n]), [[3, 'mc', 3], [3, 'winogrande', 2], [6, 'mc', 3], [6, 'winogrande', 2]]);
  for (const r of recs) assert.equal(typeof r.acc, 'number');
  assert.equal(typeof recs[0]!.acc_norm, 'number');
  assert.ok(lines.some((l) => /^step 6: mc acc \d\.\d{4} ± \d\.\d{4}, acc_norm/.test(l)), lines.join('\n'));

  let stdout = '';
  assert.equal(await runEval(['--model', runDir, '--task', 'mc', '--data', fixture('mc.jsonl'), '--json', '--batch-tokens', '32'], (t) => (stdout += t)), 0);
  const out = JSON.parse(stdout) as { metrics: Record<string, { value: number; stderr: number | null }> };
  assert.equal(out.metrics.acc!.value, recs[2]!.acc);
  assert.equal(out.metrics.acc_norm!.value, recs[2]!.acc_norm);
});

test('a bad eval_tasks entry stops the run at setup, before any step', async () => {
  const tc = loadTrainConfig(undefined, ['model=cpu-tiny', `data=${data}`, 'seq=16', 'micro_batch=2', 'steps=2', 'warmup_steps=1', `eval_tasks=hellaswag:${fixture('piqa.jsonl')}`]);
  tc.run_dir = join(root, 'bad');
  const t = new Trainer(tc, resolveModelConfig(tc), tc.run_dir);
  await assert.rejects(t.setup(false), /piqa\.jsonl:1: no field 'activity_label' for task hellaswag/);
  t.dispose();
});
