/**
 * train/checkpoint.ts on a tiny model, without a training loop: what a checkpoint holds, that it loads back
 * exactly, that saving prunes beyond `keep`, and the errors for a checkpoint of another model or damaged moments.
 * (The trainer's use of checkpoints: faults during a save, leftovers, `--from-step`: checkpoint.test.ts.)
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createBackend } from '../../src/engine/index.js';
import { getPreset } from '../../src/config/presets.js';
import { validateModelConfig } from '../../src/config/schema.js';
import { Decoder } from '../../src/model/decoder.js';
import { loadCheckpoint, saveCheckpoint, type TrainState } from '../../src/train/checkpoint.js';
import { checkpointDir, latestCheckpoint } from '../../src/io/run-dir.js';
import { writeSafetensors } from '../../src/io/safetensors.js';

const be = createBackend('cpu');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lmforge-checkpoint-'));
process.on('exit', () => fs.rmSync(tmp, { recursive: true, force: true }));
const cfg = validateModelConfig({ ...getPreset('cpu-tiny'), vocab_size: 48, hidden_size: 16, n_layer: 1, n_head: 2, n_kv_head: 1, head_dim: 8, ffn_hidden: 24 }, 'tiny');

/** A model whose every parameter differs (so a swapped or shifted tensor shows). */
function model(seed: number, c = cfg): Decoder {
  const m = new Decoder(be, c);
  const w = new Float32Array(m.layout.total);
  for (let i = 0; i < w.length; i++) w[i] = Math.sin(seed * 1000 + i);
  be.upload(m.paramPtr(0), w);
  return m;
}

function params(m: Decoder): Float32Array {
  const out = new Float32Array(m.layout.total);
  be.download(m.paramPtr(0), out);
  return out;
}

function moments(n: number, seed: number): { m: Float32Array; v: Float32Array } {
  return { m: Float32Array.from({ length: n }, (_, i) => Math.cos(seed + i)), v: Float32Array.from({ length: n }, (_, i) => 1 + ((seed + i) % 5)) };
}

const state = (step: number): TrainState => ({
  step, optimizerStep: step + 1, loader: { step: 3 * step }, rng: [1, 2, 3, step], tokensSeen: 64 * step, config: { lr: 0.01 }, worldSize: 1, zero1: false,
});

/** Receives the moments loadCheckpoint reads. */
class Sink {
  got: { m: Float32Array; v: Float32Array; step: number } | null = null;
  importMoments(m: Float32Array, v: Float32Array, step: number): void {
    this.got = { m, v, step };
  }
}

test('a checkpoint holds weights, configs, moments and state, and loads back exactly', () => {
  const run = path.join(tmp, 'roundtrip');
  const a = model(1);
  const mom = moments(a.layout.total, 1);
  const dir = saveCheckpoint(run, a, mom, state(5), 2);
  assert.equal(dir, checkpointDir(run, 5));
  assert.deepEqual(fs.readdirSync(dir).sort(), ['config.json', 'model.safetensors', 'model_config.json', 'optimizer.safetensors', 'state.json']);
  assert.equal(latestCheckpoint(run), dir);
  assert.deepEqual(fs.readdirSync(path.join(run, 'checkpoints')).sort(), ['latest', 'step-00000005']);
  const b = model(2);
  const sink = new Sink();
  const st = loadCheckpoint(dir, b, sink);
  assert.deepEqual(st, state(5));
  assert.deepEqual(params(b), params(a));
  assert.deepEqual(sink.got, { ...mom, step: 6 });
  // Without an optimizer the moments are not read (an export or an init_from).
  const c = model(3);
  assert.deepEqual(loadCheckpoint(dir, c, null), state(5));
  assert.deepEqual(params(c), params(a));
  [a, b, c].forEach((m) => m.dispose());
});

test('saving keeps the newest `keep` checkpoints, replaces a checkpoint of the same step, and leaves no temporary files', () => {
  const run = path.join(tmp, 'keep');
  const a = model(4);
  const n = a.layout.total;
  for (const step of [2, 4, 6]) saveCheckpoint(run, a, moments(n, step), state(step), 2);
  assert.deepEqual(fs.readdirSync(path.join(run, 'checkpoints')).sort(), ['latest', 'step-00000004', 'step-00000006']);
  // A leftover of a save killed earlier, by this same process id, does not block the next save.
  fs.mkdirSync(`${checkpointDir(run, 8)}.tmp-${process.pid}`);
  fs.writeFileSync(path.join(`${checkpointDir(run, 8)}.tmp-${process.pid}`, 'junk'), 'x');
  saveCheckpoint(run, a, moments(n, 8), state(8), 3);
  assert.deepEqual(fs.readdirSync(checkpointDir(run, 8)).includes('junk'), false);
  assert.deepEqual(fs.readdirSync(path.join(run, 'checkpoints')).sort(), ['latest', 'step-00000004', 'step-00000006', 'step-00000008']);
  const sink = new Sink();
  saveCheckpoint(run, a, moments(n, 99), state(8), 3);
  loadCheckpoint(checkpointDir(run, 8), model(5), sink);
  assert.deepEqual(sink.got!.m, moments(n, 99).m);
  a.dispose();
});

test('clear errors: moments of the wrong size, a checkpoint of another model, damaged moments', () => {
  const run = path.join(tmp, 'errors');
  const a = model(6);
  const n = a.layout.total;
  assert.throws(() => saveCheckpoint(run, a, { m: new Float32Array(n - 1), v: new Float32Array(n) }, state(1), 2), new RegExp(`optimizer moments have ${n - 1}/${n} values for ${n} parameters`));
  assert.throws(() => saveCheckpoint(run, a, { m: new Float32Array(n), v: new Float32Array(n + 1) }, state(1), 2), /moments have/);
  const dir = saveCheckpoint(run, a, moments(n, 1), state(1), 2);
  const bigger = new Decoder(be, { ...cfg, ffn_hidden: 32 });
  assert.throws(() => loadCheckpoint(dir, bigger, new Sink()), /model\.safetensors: tensor 'model\.layers\.0\.mlp\.gate_proj\.weight' has shape \[24, 16\] but the config implies \[32, 16\]/);
  bigger.dispose();
  // The weights fit but the moments do not: another model's optimizer file.
  writeSafetensors(path.join(dir, 'optimizer.safetensors'), [
    { name: 'adamw.m', dtype: 'F32', shape: [n + 2], data: new Float32Array(n + 2) },
    { name: 'adamw.v', dtype: 'F32', shape: [n + 2], data: new Float32Array(n + 2) },
  ]);
  assert.throws(() => loadCheckpoint(dir, model(7), new Sink()), new RegExp(`optimizer state has ${n + 2} values but the model has ${n} parameters; the checkpoint belongs to another model`));
  writeSafetensors(path.join(dir, 'optimizer.safetensors'), [
    { name: 'adamw.m', dtype: 'F32', shape: [n], data: new Float32Array(n) },
    { name: 'adamw.v', dtype: 'F32', shape: [n - 1], data: new Float32Array(n - 1) },
  ]);
  assert.throws(() => loadCheckpoint(dir, model(8), new Sink()), new RegExp(`optimizer.safetensors has ${n} m values but ${n - 1} v values; the file is damaged`));
  a.dispose();
});
