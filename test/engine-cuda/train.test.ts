/**
 * Training on the CUDA engine: the loop never drains the stream inside a run (the clip scale and the skip of a
 * non-finite step are decided on the device; a step's loss and norm are read once the next step is queued), and
 * its losses are the CPU engine's. In cuda-interpret mode the model counts every host wait that leaves the device
 * with nothing queued; on a GPU only the losses are compared.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { prepare } from '../../src/data/prepare.js';
import { loadTrainConfig, type TrainConfig } from '../../src/config/train.js';
import { resolveModelConfig, Trainer } from '../../src/train/trainer.js';
import { readMetrics } from '../../src/train/metrics.js';
import { CudaBackend } from '../../src/engine/cuda.js';
import { REPO_ROOT } from '../helpers.js';
import { device, skipReason } from './harness.js';

const root = mkdtempSync(join(tmpdir(), 'lmf-cuda-train-'));
let data = '';

before(async () => {
  if (skipReason) return;
  const text = ['README.md', 'docs/data.md'].filter((f) => existsSync(join(REPO_ROOT, f)))
    .map((f) => readFileSync(join(REPO_ROOT, f), 'utf8')).join('\n\n');
  const file = join(root, 'corpus.txt');
  writeFileSync(file, text);
  data = join(root, 'data');
  await prepare({ inputs: [file], out: data, valFraction: 0.2, workers: 1, textMode: 'blank-lines', progress: false, log: () => {} });
});
after(() => rmSync(root, { recursive: true, force: true }));

function config(dev: string, runDir: string): TrainConfig {
  const tc = loadTrainConfig(undefined, [
    'model=cpu-tiny', `data=${data}`, `device=${dev}`, 'seq=16', 'micro_batch=1', 'grad_accum=2', 'steps=6', 'warmup_steps=1',
    'eval_every=0', 'eval_batches=1', 'checkpoint_every=0', 'log_every=1', 'sample_tokens=0', 'lr=3e-2', 'clip=0.5',
    'model.hidden_size=32', 'model.n_layer=1', 'model.n_head=2', 'model.n_kv_head=1', 'model.head_dim=16', 'model.ffn_hidden=48',
  ]);
  tc.run_dir = runDir;
  return tc;
}

test('a training run on the CUDA engine: no stream drain inside the run, and the CPU engine\'s losses', { skip: skipReason }, async () => {
  const saved = process.env.LMFORGE_CUDA_PRECISION;
  process.env.LMFORGE_CUDA_PRECISION = 'fp32';
  try {
    const runs: Record<string, number[]> = {};
    const drainsAfter: number[] = [];
    for (const dev of ['cpu', device]) {
      const tc = config(dev, join(root, `run-${dev}`));
      const t = new Trainer(tc, resolveModelConfig(tc), tc.run_dir);
      await t.setup(false);
      const be = t.be;
      await t.run({
        afterStep: () => {
          if (be instanceof CudaBackend) drainsAfter.push(be.interpretStats()?.drains ?? 0);
        },
      });
      runs[dev] = readMetrics(tc.run_dir).filter((r) => r.kind === 'train').map((r) => r.loss as number);
      t.dispose();
    }
    assert.equal(runs[device]!.length, 6);
    runs.cpu!.forEach((l, i) => assert.ok(Math.abs(runs[device]![i]! - l) <= 1e-4 * Math.abs(l), `step ${i + 1}: ${runs[device]![i]} vs ${l}`));
    if (device === 'cuda-interpret') {
      // Steps 1..5 are read while the next step is queued; the last step ends the run (an evaluation and a
      // checkpoint follow), so only there may the host wait for an empty stream.
      assert.equal(drainsAfter.length, 6);
      assert.equal(drainsAfter[4], drainsAfter[0], `the stream drained inside the run: drains after each step ${drainsAfter}`);
    }
  } finally {
    if (saved === undefined) delete process.env.LMFORGE_CUDA_PRECISION;
    else process.env.LMFORGE_CUDA_PRECISION = saved;
  }
});
