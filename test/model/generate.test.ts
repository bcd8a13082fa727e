/**
 * KV-cache generation equals recomputing the whole sequence: same logits (to float32 rounding) and the same greedy
 * tokens, on every golden model family (RoPE + QK-norm, GQA, MQA, learned positions + biases + LayerNorm).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createBackend } from '../../src/engine/index.js';
import { Decoder } from '../../src/model/decoder.js';
import { loadWeights } from '../../src/model/weights.js';
import { argmax, KvGenerator } from '../../src/model/generate.js';
import { openModelSource } from '../../src/io/model-dir.js';
import { CLI, goldenCase, relErr } from '../helpers.js';

const be = createBackend('cpu');

function fullLogits(model: Decoder, ids: number[]): Float32Array {
  const V = model.cfg.vocab_size;
  const logits = new Float32Array(ids.length * V);
  model.resetLoss();
  model.run(Int32Array.from(ids), new Int32Array(ids.length).fill(-100), { batch: 1, seq: ids.length, backward: false, logits });
  return logits.slice((ids.length - 1) * V);
}

for (const name of ['qwen3-tiny', 'qwen3-tiny-tied', 'llama-tiny', 'gpt2-tiny']) {
  test(`${name}: KV-cache greedy decoding equals full recomputation`, () => {
    const src = openModelSource(goldenCase(name));
    const model = new Decoder(be, src.cfg);
    loadWeights(model, src.tensors, name);
    const prompt = [5, 17, 3, 99, 42];
    const gen = new KvGenerator(model, 24);
    // Prefill in one chunk, then single tokens; compare logits at every step.
    const seq = [...prompt];
    let kv = gen.feed(prompt);
    for (let step = 0; step < 12; step++) {
      const ref = fullLogits(model, seq);
      assert.ok(relErr(kv, ref) < 1e-5, `step ${step}: logits differ (rel ${relErr(kv, ref)})`);
      const next = argmax(ref);
      assert.equal(argmax(kv), next, `step ${step}: greedy token differs`);
      seq.push(next);
      kv = gen.feed([next]);
    }
    gen.dispose();
    model.dispose();
    src.close();
  });
}

test('generate verb: --prompt-ids --json prints only the new ids, greedy by default', () => {
  const dir = goldenCase('llama-tiny');
  const run = () => spawnSync(process.execPath, [CLI, 'generate', '--model', dir, '--prompt-ids', '1,2,3', '--max-new-tokens', '6', '--json'], { encoding: 'utf8' });
  const r = run();
  assert.equal(r.status, 0, r.stderr);
  const ids = JSON.parse(r.stdout).ids as number[];
  assert.equal(ids.length, 6);
  // Deterministic: same output twice, and equal to greedy over the full recomputation.
  assert.deepEqual(JSON.parse(run().stdout).ids, ids);
  const src = openModelSource(dir);
  const model = new Decoder(be, src.cfg);
  loadWeights(model, src.tensors, dir);
  const seq = [1, 2, 3];
  for (let i = 0; i < 6; i++) seq.push(argmax(fullLogits(model, seq)));
  assert.deepEqual(ids, seq.slice(3));
  model.dispose();
});

test('generate verb: a bad flag is a clear error', () => {
  const r = spawnSync(process.execPath, [CLI, 'generate', '--model', goldenCase('llama-tiny'), '--prompt-ids', '1,x'], { encoding: 'utf8' });
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /'x' is not a token id/);
});
