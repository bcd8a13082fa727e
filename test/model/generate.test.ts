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
import { argmax, KvGenerator, sample } from '../../src/model/generate.js';
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

/** Draws from `sample` many times; returns how often each index came up. */
function draws(logits: number[], o: { temperature: number; topK: number; topP: number }, n: number, seed = 7): Map<number, number> {
  const rng = new Rng(seed);
  const x = Float32Array.from(logits);
  const counts = new Map<number, number>();
  for (let i = 0; i < n; i++) {
    const k = sample(x, o, rng);
    counts.set(k, (counts.get(k) ?? 0) + 1);
  }
  return counts;
}

test('sampling: temperature 0 is greedy; otherwise draws follow softmax(logits / T)', () => {
  const logits = [1, 3, 2, 0.5, 2.9];
  assert.deepEqual([...draws(logits, { temperature: 0, topK: 0, topP: 1 }, 50)], [[1, 50]]);
  const n = 40000;
  for (const T of [0.5, 1, 2]) {
    const z = logits.map((l) => Math.exp(l / T));
    const sum = z.reduce((a, b) => a + b, 0);
    const c = draws(logits, { temperature: T, topK: 0, topP: 1 }, n);
    z.forEach((p, i) => {
      const want = p / sum;
      const got = (c.get(i) ?? 0) / n;
      // 5 standard deviations of a binomial proportion.
      assert.ok(Math.abs(got - want) < 5 * Math.sqrt((want * (1 - want)) / n) + 1e-4, `T=${T} index ${i}: ${got} vs ${want}`);
    });
  }
});

test('sampling: top-k keeps the k most likely, top-p the smallest set reaching p, renormalised', () => {
  const logits = [0, 2, 1, 3, -1, 2.5];
  const order = [3, 5, 1, 2, 0, 4];
  for (const k of [1, 2, 4]) {
    const c = draws(logits, { temperature: 1, topK: k, topP: 1 }, 4000);
    assert.deepEqual([...c.keys()].sort(), order.slice(0, k).sort(), `top-k ${k}`);
  }
  // Probabilities in order 3, 5, 1, 2, 0, 4: the first two hold about 0.66 of the mass, three about 0.88.
  const z = logits.map((l) => Math.exp(l));
  const total = z.reduce((a, b) => a + b, 0);
  const cum = order.map((_, j) => order.slice(0, j + 1).reduce((a, i) => a + z[i]! / total, 0));
  for (const [p, keep] of [[0.3, 1], [cum[1]! - 0.01, 2], [cum[1]! + 0.01, 3], [0.999, 6]] as const) {
    const c = draws(logits, { temperature: 1, topK: 0, topP: p }, 6000);
    assert.deepEqual([...c.keys()].sort(), order.slice(0, keep).sort(), `top-p ${p}`);
    // Within the nucleus the odds between two kept tokens are unchanged.
    if (keep >= 2) {
      const ratio = c.get(order[0]!)! / c.get(order[1]!)!;
      assert.ok(Math.abs(ratio - z[order[0]!]! / z[order[1]!]!) < 0.25, `top-p ${p}: ratio ${ratio}`);
    }
  }
  // Both: top-k first, then top-p within it.
  assert.deepEqual([...draws(logits, { temperature: 1, topK: 3, topP: 0.5 }, 2000).keys()], [3]);
});

test('generate verb: sampling flags are reproducible with a seed and change with it', () => {
  const dir = goldenCase('qwen3-tiny');
  const gen = (...flags: string[]) => {
    const r = spawnSync(process.execPath, [CLI, 'generate', '--model', dir, '--prompt-ids', '5,17,3', '--max-new-tokens', '24', '--json', ...flags], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    return JSON.parse(r.stdout).ids as number[];
  };
  const a = gen('--temperature', '1.5', '--top-k', '50', '--top-p', '0.95', '--seed', '11');
  assert.equal(a.length, 24);
  assert.deepEqual(gen('--temperature', '1.5', '--top-k', '50', '--top-p', '0.95', '--seed', '11'), a, 'same seed, same tokens');
  assert.notDeepEqual(gen('--temperature', '1.5', '--top-k', '50', '--top-p', '0.95', '--seed', '12'), a, 'another seed, other tokens');
  // top-k 1 at any temperature is greedy decoding.
  assert.deepEqual(gen('--temperature', '1.5', '--top-k', '1', '--seed', '3'), gen());
  for (const [flags, re] of [[['--temperature', '-1'], /--temperature must be >= 0/], [['--top-p', '0'], /--top-p must be in \(0, 1\]/], [['--top-p', '1.5'], /--top-p must be in \(0, 1\]/]] as const) {
    const r = spawnSync(process.execPath, [CLI, 'generate', '--model', dir, '--prompt-ids', '1', ...flags], { encoding: 'utf8' });
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, re);
  }
});
