/**
 * A staged run end to end on a tiny model: three stages, two datasets mixed 70/30 then 30/70 (with document
 * masking), an optimizer reset, a sequence-length and RoPE-base change; resumed at a stage boundary and in the middle of stages it equals the
 * uninterrupted run float for float. Also the learning-rate segments and on_exhausted: stop.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { prepare } from '../../src/data/prepare.js';
import { trainConfigFromRecord, type TrainConfig } from '../../src/config/train.js';
import { resolveModelConfig, Trainer } from '../../src/train/trainer.js';
import { train } from './fixture.js';
import { StageSchedule } from '../../src/train/stage-schedule.js';
import { latestCheckpoint } from '../../src/io/run-dir.js';
import { readMetrics, type MetricRecord } from '../../src/train/metrics.js';
import { REPO_ROOT } from '../helpers.js';

const root = mkdtempSync(join(tmpdir(), 'lmf-stages-'));
let prose = '';
let code = '';
let tiny = '';

before(async () => {
  const corpus = async (name: string, files: string[], chars = Infinity): Promise<string> => {
    const f = join(root, `${name}.txt`);
    writeFileSync(f, files.map((p) => readFileSync(join(REPO_ROOT, p), 'utf8')).join('\n\n').slice(0, chars));
    const out = join(root, name);
    await prepare({ inputs: [f], out, valFraction: 0.2, workers: 1, textMode: 'blank-lines', progress: false, log: () => {} });
    return out;
  };
  prose = await corpus('prose', ['README.md', 'docs/data.md', 'docs/planning.md']);
  code = await corpus('code', ['src/data/loader.ts', 'src/train/trainer.ts', 'src/config/schema.ts']);
  tiny = await corpus('tiny', ['src/data/loader.ts'], 1500);
});

function config(runDir: string, extra: Record<string, unknown> = {}): TrainConfig {
  const tc = trainConfigFromRecord(
    {
      model: 'cpu-tiny', seq: 16, micro_batch: 2, grad_accum: 2, warmup_steps: 1, lr: 3e-2, eval_every: 0, eval_batches: 1,
      checkpoint_every: 3, keep_checkpoints: 20, sample_tokens: 0,
      model_overrides: { hidden_size: 16, n_layer: 2, n_head: 2, n_kv_head: 1, head_dim: 8, ffn_hidden: 32, rope_theta: 1e4, context_length: 64 },
      data: [{ path: prose, weight: 0.7 }, { path: code, weight: 0.3 }],
      stages: [
        { name: 'general', steps: 4 },
        {
          name: 'reasoning', steps: 3, lr: 1e-2, schedule: 'constant', warmup_steps: 0, reset_optimizer: true,
          attention_mask: 'document', positions: 'document', data: [{ path: prose, weight: 0.3 }, { path: code, weight: 0.7 }],
        },
        { name: 'long', steps: 3, seq: 32, micro_batch: 1, rope_theta: 1e6, warmup_steps: 0 },
      ],
      ...extra,
    },
    [],
    'test',
  );
  tc.run_dir = runDir;
  return tc;
}


/** Every record without the wall-clock fields. */
function records(runDir: string): MetricRecord[] {
  return readMetrics(runDir).map((r) => {
    const o = { ...r };
    for (const k of ['step_s', 'tokens_per_s', 'gflops', 'mfu', 'time']) delete o[k];
    return o;
  });
}

function params(t: Trainer): Float32Array[] {
  return t.model.layout.params.map((p) => t.model.getParam(p));
}

let straight: { records: MetricRecord[]; params: Float32Array[] };

test('three stages train as one run: stage fields, mixture shares, boundary events, theta and optimizer reset', async () => {
  const dir = join(root, 'straight');
  const t = await train(config(dir), false);
  straight = { records: records(dir), params: params(t) };
  assert.equal(t.model.cfg.rope_theta, 1e6);
  t.dispose();
  const trainRecs = straight.records.filter((r) => r.kind === 'train');
  assert.deepEqual(trainRecs.map((r) => r.stage), [1, 1, 1, 1, 2, 2, 2, 3, 3, 3]);
  assert.deepEqual(trainRecs.map((r) => r.tokens), [64, 128, 192, 256, 320, 384, 448, 512, 576, 640]);
  // Constant lr in stage 2; stage 3 restarts its own cosine segment at its peak.
  assert.deepEqual(trainRecs.slice(4, 7).map((r) => r.lr), [1e-2, 1e-2, 1e-2]);
  assert.equal(trainRecs[7]!.lr, 3e-2);
  for (const r of trainRecs) assert.ok(Math.abs((r.mix_prose as number) + (r.mix_code as number) - 1) < 1e-5, JSON.stringify(r));
  // Realised shares so far in the stage, at each stage's end: both datasets were read.
  for (const i of [3, 6, 9]) assert.ok((trainRecs[i]!.mix_prose as number) > 0 && (trainRecs[i]!.mix_code as number) > 0, JSON.stringify(trainRecs[i]));
  const events = straight.records.filter((r) => r.kind === 'event' && r.event === 'stage');
  assert.deepEqual(events.map((r) => [r.step, r.stage, r.name, r.seq, r.rope_theta]), [
    [0, 1, 'general', 16, 1e4], [4, 2, 'reasoning', 16, 1e4], [7, 3, 'long', 32, 1e6],
  ]);
  // Each stage ends with an evaluation and a checkpoint.
  const evals = straight.records.filter((r) => r.kind === 'eval').map((r) => [r.step, r.stage]);
  assert.deepEqual(evals, [[0, 1], [4, 1], [7, 2], [10, 3]]);
  const ckpts = readdirSync(join(dir, 'checkpoints')).filter((d) => d.startsWith('step-'));
  assert.deepEqual(ckpts, ['step-00000003', 'step-00000004', 'step-00000006', 'step-00000007', 'step-00000009', 'step-00000010']);
  const state = (step: number) => JSON.parse(readFileSync(join(dir, 'checkpoints', `step-${String(step).padStart(8, '0')}`, 'state.json'), 'utf8'));
  // Stage 2 reset the optimizer at step 4: three updates since then at step 7, six at step 10.
  assert.deepEqual([3, 4, 6, 7, 10].map((s) => state(s).optimizerStep), [3, 4, 2, 3, 6]);
  const cfgAt = (step: string) => JSON.parse(readFileSync(join(dir, 'checkpoints', step, 'model_config.json'), 'utf8'));
  assert.equal(cfgAt('step-00000007').rope_theta, 1e4);
  assert.equal(cfgAt('step-00000010').rope_theta, 1e6);
});

test('recompute set per stage (none, mlp, block) changes no number of the run', async () => {
  const dir = join(root, 'recompute');
  const modes = ['none', 'mlp', 'block'] as const;
  const stages = config(dir).stages.map((st, i) => ({ ...st, recompute: modes[i] }));
  const t = await train(config(dir, { stages }), false);
  assert.equal(t.model.recompute, 'block');
  assert.ok(t.model.activationBytes > 0);
  const p = params(t);
  t.dispose();
  assert.deepEqual(records(dir), straight.records);
  p.forEach((x, i) => assert.deepEqual(x, straight.params[i]));
});

test('resumed at a stage boundary and in the middle of stages, the run equals the uninterrupted one, float for float', async () => {
  const dir = join(root, 'resumed');
  await assert.rejects(train(config(dir), false, 5), /simulated kill/);
  // Exactly at the boundary into the stage that resets the optimizer ...
  assert.match(latestCheckpoint(dir) ?? '', /step-00000004$/);
  await assert.rejects(train(config(dir), true, 7), /simulated kill/);
  // ... in the middle of a stage ...
  assert.match(latestCheckpoint(dir) ?? '', /step-00000006$/);
  await assert.rejects(train(config(dir), true, 10), /simulated kill/);
  // ... and in the middle of the stage that changed seq and rope_theta.
  assert.match(latestCheckpoint(dir) ?? '', /step-00000009$/);
  const t = await train(config(dir), true);
  assert.deepEqual(records(dir), straight.records);
  assert.deepEqual(params(t), straight.params);
  t.dispose();
});

test('each stage runs its own learning-rate segment', () => {
  const tc = config(join(root, 'unused'));
  const s = StageSchedule.fromConfig(tc, resolveModelConfig(tc), 1);
  assert.equal(s.totalSteps, 10);
  assert.deepEqual([0, 3, 4, 6, 7, 9, 10].map((i) => s.at(i).name), ['general', 'general', 'reasoning', 'reasoning', 'long', 'long', 'long']);
  // Stage 1: warmup 1 then cosine from 3e-2 to 3e-3 over 4 steps; stage 3 the same over 3 steps.
  const cos = (p: number) => 3e-3 + (3e-2 - 3e-3) * (1 + Math.cos(Math.PI * p)) / 2;
  assert.equal(s.lr(0), 3e-2);
  assert.ok(Math.abs(s.lr(2) - cos(1 / 3)) < 1e-15);
  assert.equal(s.lr(5), 1e-2);
  assert.equal(s.lr(7), 3e-2);
  assert.ok(Math.abs(s.lr(9) - cos(2 / 3)) < 1e-15);
});

test('on_exhausted: stop ends the run with a checkpoint when a dataset is used up', async () => {
  const dir = join(root, 'stop');
  const tc = config(dir, {
    on_exhausted: 'stop', checkpoint_every: 0,
    stages: [{ steps: 400, data: [{ path: prose, weight: 0.5 }, { path: tiny, weight: 0.5 }] }],
  });
  const t = await train(tc, false);
  const ev = readMetrics(dir).filter((r) => r.kind === 'event' && r.event === 'data_exhausted');
  assert.equal(ev.length, 1);
  assert.equal(ev[0]!.dataset, 'tiny');
  const stoppedAt = ev[0]!.step;
  assert.ok(stoppedAt > 0 && stoppedAt < 400);
  assert.match(latestCheckpoint(dir) ?? '', new RegExp(`step-0*${stoppedAt}$`));
  t.dispose();
});
