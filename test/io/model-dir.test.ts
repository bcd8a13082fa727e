/** io/model-dir.ts: the one place that knows what a model directory, a checkpoint and a run look like. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { getPreset } from '../../src/config/presets.js';
import { loadModelSpec, MODEL_FILES, openModelSource, writeModelDir } from '../../src/io/model-dir.js';
import { checkpointDir, markLatest } from '../../src/io/run-dir.js';
import { GOLDEN_FIXTURES } from '../helpers.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lmforge-model-dir-'));
process.on('exit', () => fs.rmSync(tmp, { recursive: true, force: true }));

test('a Hugging Face directory loads through its config.json', () => {
  const d = loadModelSpec(path.join(GOLDEN_FIXTURES, 'qwen3-tiny'));
  assert.equal(d.kind, 'hf');
  assert.equal(d.config.head_dim, 32);
  const empty = path.join(tmp, 'empty');
  fs.mkdirSync(empty);
  assert.throws(() => loadModelSpec(empty), /directory has no config\.json/);
});

test('presets and files still resolve through loadModelSpec', () => {
  assert.deepEqual(loadModelSpec('cpu-tiny').config, getPreset('cpu-tiny'));
});

test('an lmforge model directory: its own model_config.json wins, and the weights read back', () => {
  const cfg = { ...getPreset('cpu-tiny'), n_layer: 1, vocab_size: 64, hidden_size: 16, n_head: 2, n_kv_head: 1, head_dim: 8, ffn_hidden: 32 };
  const dir = path.join(tmp, 'model');
  fs.mkdirSync(dir);
  const tensors = [{ name: 'model.embed_tokens.weight', shape: [64, 16], data: Float32Array.from({ length: 64 * 16 }, (_, i) => i / 7) }];
  writeModelDir(dir, cfg, tensors);
  assert.ok(fs.existsSync(path.join(dir, MODEL_FILES.config)));
  const spec = loadModelSpec(dir);
  assert.equal(spec.kind, 'file');
  assert.deepEqual(spec.config, cfg);
  const src = openModelSource(dir);
  assert.deepEqual(src.tensors.read('model.embed_tokens.weight'), tensors[0]!.data);
  src.close();
});

test('a run directory resolves to its latest complete checkpoint', () => {
  const run = path.join(tmp, 'run');
  const cfg = { ...getPreset('cpu-tiny'), n_layer: 1, vocab_size: 32, hidden_size: 8, n_head: 2, n_kv_head: 1, head_dim: 4, ffn_hidden: 16 };
  assert.throws(() => openModelSource(path.join(tmp, 'absent')), /no such directory/);
  fs.mkdirSync(path.join(run, 'checkpoints'), { recursive: true });
  assert.throws(() => openModelSource(run), /without a complete checkpoint/);
  for (const step of [1, 2]) {
    const ck = checkpointDir(run, step);
    fs.mkdirSync(ck, { recursive: true });
    writeModelDir(ck, { ...cfg, rope_theta: step * 1000 }, [{ name: 'model.norm.weight', shape: [8], data: new Float32Array(8).fill(step) }]);
    fs.writeFileSync(path.join(ck, 'state.json'), '{}');
  }
  markLatest(run, checkpointDir(run, 1));
  const src = openModelSource(run);
  assert.equal(src.dir, checkpointDir(run, 1));
  assert.equal(src.runDir, run);
  assert.equal(src.cfg.rope_theta, 1000);
  assert.equal(loadModelSpec(run).config.rope_theta, 1000);
});
