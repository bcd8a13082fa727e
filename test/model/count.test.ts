import { test } from 'node:test';
import assert from 'node:assert/strict';
import { getPreset } from '../../src/config/presets.js';
import { countParams, flopsPerToken, trainingMemory, MEMORY_BF16_MIXED, MEMORY_FP32 } from '../../src/model/count.js';
import type { ModelConfig } from '../../src/config/model.js';

const untie = (c: ModelConfig): ModelConfig => ({ ...c, tie_embeddings: false });
const tie = (c: ModelConfig): ModelConfig => ({ ...c, tie_embeddings: true });

// Every exact count from transformers / qwen3.md, tied and untied.
const EXACT: [string, (c: ModelConfig) => ModelConfig, number][] = [
  ['gpt2', (c) => c, 124_439_808],
  ['gpt2-medium', (c) => c, 354_823_168],
  ['gpt2-large', (c) => c, 774_030_080],
  ['gpt2-xl', (c) => c, 1_557_611_200],
  ['qwen3-0.6b', (c) => c, 596_049_920],
  ['qwen3-1.7b', (c) => c, 1_720_574_976],
  ['qwen3-4b', (c) => c, 4_022_468_096],
  ['qwen3-8b', (c) => c, 8_190_735_360],
  ['gpt2-1.36b', (c) => c, 1_265_313_024],
  ['llama2-1.36b', (c) => c, 1_294_159_104],
  ['llama2-1.36b', tie, 1_220_431_104],
  ['llama3-1.5b', (c) => c, 1_544_628_224],
  ['llama3-1.5b', tie, 1_281_959_936],
  ['qwen3-1.7b', untie, 2_031_739_904],
  ['qwen3-custom-1.5b', (c) => c, 2_031_739_904],
  ['qwen3-custom-1.5b', tie, 1_720_574_976],
  ['qwen3-custom-1b', tie, 1_092_252_160],
  ['qwen3-custom-1b', (c) => c, 1_325_625_856],
  ['qwen3-custom-2b', tie, 2_084_281_600],
  ['qwen3-custom-2b', (c) => c, 2_434_342_144],
];

for (const [name, f, expected] of EXACT) {
  const c = f(getPreset(name));
  test(`countParams ${name} (${c.tie_embeddings ? 'tied' : 'untied'}) = ${expected.toLocaleString('en-US')}`, () => {
    assert.equal(countParams(c).total, expected);
  });
}

test('parts add up; non-embedding excludes token and position embeddings; tied head is 0', () => {
  const g = countParams(getPreset('gpt2'));
  assert.equal(g.embedding, 50257 * 768);
  assert.equal(g.positions, 1024 * 768);
  assert.equal(g.head, 0);
  assert.equal(g.embedding + g.positions + g.attention + g.mlp + g.norms + g.head, g.total);
  assert.equal(g.nonEmbedding, g.total - g.embedding - g.positions);
  assert.equal(g.nonEmbedding, 85_056_000);
  const q = countParams(getPreset('qwen3-8b'));
  assert.equal(q.head, 151936 * 4096);
  assert.equal(q.positions, 0);
  assert.equal(q.nonEmbedding, q.total - q.embedding);
  // QK-norm weights are counted with the norms: 28 x (2 x 1024 + 2 x 128) + 1024 for Qwen3-0.6B.
  assert.equal(countParams(getPreset('qwen3-0.6b')).norms, 28 * (2 * 1024 + 256) + 1024);
});

test('countParams follows a plain per-tensor enumeration on random configs', () => {
  let seed = 12345;
  const rnd = (n: number) => { seed = (seed * 1103515245 + 12345) % 2 ** 31; return 1 + (seed % n); };
  for (let i = 0; i < 50; i++) {
    const heads = rnd(8), kvDiv = [1, heads].at(rnd(2) - 1)!;
    const c: ModelConfig = {
      ...getPreset('cpu-tiny'),
      vocab_size: rnd(1000), hidden_size: 8 * rnd(16), n_layer: rnd(5), n_head: heads, n_kv_head: heads / kvDiv,
      head_dim: 2 * rnd(16), ffn_hidden: rnd(300), ffn: rnd(2) === 1 ? 'mlp' : 'swiglu',
      norm: rnd(2) === 1 ? 'layernorm' : 'rmsnorm', positions: rnd(2) === 1 ? 'learned' : 'rope',
      context_length: rnd(64), qk_norm: rnd(2) === 1, attention_bias: rnd(2) === 1, mlp_bias: rnd(2) === 1,
      tie_embeddings: rnd(2) === 1,
    };
    // Enumerate tensors as a Hugging Face-like module tree would hold them.
    const shapes: number[][] = [[c.vocab_size, c.hidden_size]];
    if (c.positions === 'learned') shapes.push([c.context_length, c.hidden_size]);
    const norm = () => { shapes.push([c.hidden_size]); if (c.norm === 'layernorm') shapes.push([c.hidden_size]); };
    for (let l = 0; l < c.n_layer; l++) {
      norm(); norm();
      const q = c.n_head * c.head_dim, kv = c.n_kv_head * c.head_dim;
      shapes.push([q, c.hidden_size], [kv, c.hidden_size], [kv, c.hidden_size], [c.hidden_size, q]);
      if (c.attention_bias) shapes.push([q], [kv], [kv], [c.hidden_size]);
      if (c.qk_norm) shapes.push([c.head_dim], [c.head_dim]);
      const n = c.ffn === 'swiglu' ? 2 : 1;
      for (let j = 0; j < n; j++) { shapes.push([c.ffn_hidden, c.hidden_size]); if (c.mlp_bias) shapes.push([c.ffn_hidden]); }
      shapes.push([c.hidden_size, c.ffn_hidden]); if (c.mlp_bias) shapes.push([c.hidden_size]);
    }
    norm();
    if (!c.tie_embeddings) shapes.push([c.vocab_size, c.hidden_size]);
    const total = shapes.reduce((s, sh) => s + sh.reduce((a, b) => a * b, 1), 0);
    assert.equal(countParams(c).total, total, JSON.stringify(c));
  }
});

test('flopsPerToken: 6N (matmul weights incl. lm_head) + 12 L H Q T', () => {
  const c = getPreset('gpt2');
  const f = flopsPerToken(c, 1024);
  // GPT-2: per layer 12 d^2 matmul weights, plus the (tied) head 50257 x 768.
  const n = 12 * 12 * 768 * 768 + 50257 * 768;
  assert.equal(f.matmulParams, n);
  assert.equal(f.matmul, 6 * n);
  assert.equal(f.attention, 12 * 12 * 12 * 64 * 1024);
  assert.equal(f.total, 6 * n + 12 * 12 * 12 * 64 * 1024);
  assert.match(f.formula, /6 x N_matmul/);
  // Qwen3-0.6B: GQA shrinks k/v; head_dim 128 widens q/o.
  const q = getPreset('qwen3-0.6b');
  const perLayer = 1024 * 2048 + 2 * 1024 * 1024 + 2048 * 1024 + 3 * 1024 * 3072;
  assert.equal(flopsPerToken(q, 4096).matmulParams, 28 * perLayer + 151936 * 1024);
  assert.equal(flopsPerToken(q, 4096).attention, 12 * 28 * 16 * 128 * 4096);
});

test('trainingMemory: bytes per parameter', () => {
  const c = getPreset('qwen3-0.6b');
  const m = trainingMemory(c, MEMORY_FP32);
  assert.equal(m.params, 596_049_920);
  assert.equal(m.weights, 4 * 596_049_920);
  assert.equal(m.grads, 4 * 596_049_920);
  assert.equal(m.optimizer, 8 * 596_049_920);
  assert.equal(m.total, 16 * 596_049_920);
  const b = trainingMemory(c, MEMORY_BF16_MIXED);
  assert.equal(b.weights, 2 * 596_049_920);
  assert.equal(b.optimizer, 12 * 596_049_920);
  assert.equal(trainingMemory(c, { weightBytes: 1, gradBytes: 0, optimizerBytes: 0 }).total, 596_049_920);
});
