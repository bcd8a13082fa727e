/**
 * train/checkpoint.ts and the trainer's use of it: no checkpoint file stays open after loading, a full disk
 * during a save leaves the previous checkpoint in charge, leftovers of a killed save are cleaned at the next
 * start, and `--from-step` resumes bit-exactly from an earlier checkpoint.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readlinkSync, realpathSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolveModelConfig, Trainer } from '../../src/train/trainer.js';
import { checkpointDir, completedCheckpoints, latestCheckpoint } from '../../src/io/run-dir.js';
import { openModelSource } from '../../src/io/model-dir.js';
import { readMetrics } from '../../src/train/metrics.js';
import type { TrainConfig } from '../../src/config/train.js';
import { deadPid, fullDisk, temporariesUnder } from '../fs-faults.js';
import { tinyConfig, tinyData } from './fixture.js';

let data = '';
const root = realpathSync(mkdtempSync(join(tmpdir(), 'lmf-ckpt-')));
before(async () => {
  data = await tinyData();
});

/** Files this process holds open under `dir` (deleted ones included: they still take disk space). */
function openFilesUnder(dir: string): string[] {
  return readdirSync('/proc/self/fd').flatMap((fd) => {
    try {
      const target = readlinkSync(`/proc/self/fd/${fd}`);
      return target.startsWith(dir) ? [target] : [];
    } catch {
      return [];
    }
  });
}

async function trained(tc: TrainConfig, resume = false, hooks: Parameters<Trainer['run']>[0] = {}, fromStep?: number): Promise<Trainer> {
  const t = new Trainer(tc, resolveModelConfig(tc), tc.run_dir);
  await t.setup(resume, { fromStep });
  await t.run(hooks);
  return t;
}

test('loading a checkpoint closes its files: a resumed run holds nothing open under checkpoints/', async () => {
  const run = join(root, 'fds');
  (await trained(tinyConfig(run, data, ['steps=2']))).dispose();
  const t = new Trainer(tinyConfig(run, data, ['steps=4']), resolveModelConfig(tinyConfig(run, data)), run);
  await t.setup(true);
  assert.deepEqual(openFilesUnder(join(run, 'checkpoints')), [], 'model.safetensors / optimizer.safetensors left open');
  await t.run();
  t.dispose();
  assert.deepEqual(openFilesUnder(run), []);
  assert.deepEqual(openFilesUnder(data), [], 'the data loaders closed their shards');
  const src = openModelSource(run);
  assert.ok(openFilesUnder(run).length > 0);
  src.close();
  assert.deepEqual(openFilesUnder(run), []);
});

test('a full disk during a checkpoint: the error names the file, the previous checkpoint and latest stay whole', async () => {
  const run = join(root, 'full');
  const tc = tinyConfig(run, data, ['steps=4']);
  let undo: (() => void) | null = null;
  try {
    await assert.rejects(
      trained(tc, false, {
        // After the step-2 checkpoint: room for metrics lines, not for a checkpoint.
        afterStep: (step) => {
          if (step === 3) undo = fullDisk(20_000);
        },
      }),
      (e: Error) => e.message.includes(join(run, 'checkpoints')) && /no space left.*ENOSPC/.test(e.message),
    );
  } finally {
    (undo as (() => void) | null)?.();
  }
  assert.equal(latestCheckpoint(run), checkpointDir(run, 2));
  assert.deepEqual(temporariesUnder(run), []);
  const src = openModelSource(run);
  assert.ok(src.tensors.read('model.norm.weight').every(Number.isFinite));
  src.close();
});

test('the leftovers of a killed save and a killed config write are removed when the run resumes', async () => {
  const run = join(root, 'stale');
  (await trained(tinyConfig(run, data, ['steps=2']))).dispose();
  const dead = deadPid();
  const leftover = join(run, 'checkpoints', `step-00000004.tmp-${dead}`);
  mkdirSync(leftover);
  writeFileSync(join(leftover, 'model.safetensors'), 'partial');
  writeFileSync(join(run, `train_config.json.tmp-${dead}`), '{');
  const t = new Trainer(tinyConfig(run, data, ['steps=3']), resolveModelConfig(tinyConfig(run, data)), run);
  await t.setup(true);
  assert.ok(!existsSync(leftover));
  assert.deepEqual(temporariesUnder(run), []);
  t.dispose();
});

test('--from-step resumes bit-exactly from an earlier checkpoint; later ones move to checkpoints/abandoned/', async () => {
  const a = join(root, 'straight');
  const sets = ['steps=6', 'checkpoint_every=2', 'keep_checkpoints=3', 'eval_every=2'];
  const ta = await trained(tinyConfig(a, data, sets));
  const last = ta.model.layout.params[ta.model.layout.params.length - 1]!;
  const wa = ta.model.getParam(last);
  ta.dispose();
  const b = join(root, 'back');
  (await trained(tinyConfig(b, data, sets))).dispose();
  assert.deepEqual(completedCheckpoints(b).map((d) => d.slice(-2)), ['02', '04', '06']);
  const tb = await trained(tinyConfig(b, data, sets), true, {}, 2);
  assert.deepEqual(tb.model.getParam(last), wa);
  const strip = (run: string) => readMetrics(run).map(({ step_s, tokens_per_s, gflops, mfu, time, ...r }) => r);
  assert.deepEqual(strip(b), strip(a));
  assert.deepEqual(readdirSync(join(b, 'checkpoints', 'abandoned')).sort(), ['step-00000004', 'step-00000006']);
  tb.dispose();
  await assert.rejects(trained(tinyConfig(b, data, sets), true, {}, 5), /--from-step 5: .* has no complete checkpoint saved at step 5; it has step 2, 4, 6/);
});
