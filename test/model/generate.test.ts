/**
 * KV-cache generation equals recomputing the whole sequence: same logits (to float32 rounding) and the same greedy
 * tokens, on every golden model family (RoPE + QK-norm, GQA, MQA, learned positions + biases + LayerNorm) and on
 * post-norm part combinations no golden case has.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createBackend } from '../../src/engine/index.js';
import { Decoder } from '../../src/model/decoder.js';
import { loadWeights } from '../../src/model/weights.js';
import { argmax, KvGenerator } from '../../src/model/generate.js';
import { initWeights } from '../../src/model/init.js';
import { Rng } from '../../src/model/rng.js';
import { openModelSource } from '../../src/io/model-dir.js';
import { validateModelConfig } from '../../src/config/schema.js';
import { CLI, goldenCase, relErr } from '../helpers.js';

const be = createBackend('cpu');

function fullLogits(model: Decoder, ids: number[]): Float32Array {
  const V = model.cfg.vocab_size;
  const logits = new Float32Array(ids.length * V);
  model.resetLoss();
  model.run(Int32Array.from(ids), new Int32Array(ids.length).fill(-100), { batch: 1, seq: ids.length, backward: false, logits });
  return logits.slice((ids.length - 1) * V);
}

/** Prefills the prompt in one chunk, then feeds single greedy tokens; compares logits at every step. */
function checkKvAgainstFull(model: Decoder, prompt: number[], steps: number): void {
  const gen = new KvGenerator(model, prompt.length + steps + 1);
  const seq = [...prompt];
  let kv = gen.feed(prompt);
  for (let step = 0; step < steps; step++) {
    const ref = fullLogits(model, seq);
    assert.ok(relErr(kv, ref) < 1e-5, `step ${step}: logits differ (rel ${relErr(kv, ref)})`);
    const next = argmax(ref);
    assert.equal(argmax(kv), next, `step ${step}: greedy token differs`);
    seq.push(next);
    kv = gen.feed([next]);
  }
  gen.dispose();
}

for (const name of ['qwen3-tiny', 'qwen3-tiny-tied', 'llama-tiny', 'gpt2-tiny']) {
  test(`${name}: KV-cache greedy decoding equals full recomputation`, () => {
    const src = openModelSource(goldenCase(name));
    const model = new Decoder(be, src.cfg);
    loadWeights(model, src.tensors, name);
    checkKvAgainstFull(model, [5, 17, 3, 99, 42], 12);
    model.dispose();
    src.close();
  });
}

const PARTS: Record<string, Record<string, unknown>> = {
  'post-norm layernorm, gelu mlp, learned positions, biases, MQA': {
    family: 'gpt2', norm_position: 'post', n_kv_head: 1, attention_bias: true, mlp_bias: true,
  },
  'post-norm rmsnorm, swiglu, rope, qk-norm, GQA': { family: 'qwen3', norm_position: 'post', qk_norm: true, n_kv_head: 2 },
  'pre-norm, rope without qk-norm, attention bias, MHA': { family: 'llama', attention_bias: true, n_kv_head: 4 },
};

for (const [name, over] of Object.entries(PARTS)) {
  test(`KV-cache decoding equals full recomputation: ${name}`, () => {
    const cfg = validateModelConfig({
      vocab_size: 97, hidden_size: 24, n_layer: 3, n_head: 4, head_dim: 6, ffn_hidden: 40, context_length: 32,
      init_std: 0.3, ...over,
    }, name);
    const model = new Decoder(be, cfg);
    initWeights(model, { seed: 3, scaledResidual: false });
    // Norm gains and biases start at 1 and 0; perturb every parameter so each part acts.
    const rng = new Rng(5);
    const p = new Float32Array(model.layout.total);
    be.download(model.paramPtr(0), p);
    for (let i = 0; i < p.length; i++) p[i] += 0.2 * (rng.next() - 0.5);
    be.upload(model.paramPtr(0), p);
    checkKvAgainstFull(model, [4, 60, 11, 90, 2, 33, 7], 10);
    model.dispose();
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
