/**
 * Activation recomputation is exact: with recompute 'mlp' and 'block' the losses, every gradient of every step and
 * the parameters after AdamW equal those of 'none' bit for bit (packed documents: document masking and
 * per-document positions through the re-run forward), while the arena shrinks to the hand-counted size.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createBackend } from '../../src/engine/index.js';
import { Decoder } from '../../src/model/decoder.js';
import { activationArenaBytes } from '../../src/model/activations.js';
import { validateModelConfig } from '../../src/config/schema.js';
import { loadTrainConfig, RECOMPUTE_MODES } from '../../src/config/train.js';
import type { ModelConfig } from '../../src/config/model.js';
import { firstDifference, trainSteps } from './recompute-run.js';

const be = createBackend('cpu');

const CASES: Record<string, Record<string, unknown>> = {
  'qwen3: pre-norm, rope + qk-norm, GQA, swiglu': { family: 'qwen3', n_kv_head: 2 },
  'gpt2: pre-norm layernorm, learned positions, gelu mlp, biases': { family: 'gpt2' },
  'llama post-norm, MQA, swiglu': { family: 'llama', norm_position: 'post', n_kv_head: 1 },
  'gpt2 post-norm layernorm': { family: 'gpt2', norm_position: 'post' },
};

const small = (over: Record<string, unknown>, name: string): ModelConfig => validateModelConfig({
  vocab_size: 61, hidden_size: 16, n_layer: 3, n_head: 4, head_dim: 6, ffn_hidden: 20, context_length: 40, init_std: 0.3, ...over,
}, name);

for (const [name, over] of Object.entries(CASES)) {
  test(`recompute mlp and block give the losses, gradients and weights of none, bit for bit (${name})`, () => {
    const cfg = small(over, name);
    const ref = trainSteps(be, cfg, 'none');
    assert.ok(ref.losses.every((l) => Number.isFinite(l) && l > 0));
    for (const mode of ['mlp', 'block'] as const) {
      const r = trainSteps(be, cfg, mode);
      assert.deepEqual(r.losses, ref.losses, `${mode}: losses`);
      r.grads.forEach((g, s) => assert.equal(firstDifference(g, ref.grads[s]!), null, `${mode}: gradients of step ${s + 1}`));
      assert.equal(firstDifference(r.params, ref.params), null, `${mode}: parameters after the updates`);
      assert.ok(r.activationBytes < ref.activationBytes, `${mode}: arena ${r.activationBytes} not below none's ${ref.activationBytes}`);
    }
  });
}

/** Elements of one arena view: every view is rounded up to 16 elements. */
const v = (n: number): number => Math.ceil(n / 16) * 16;

test('arena bytes per mode, by hand', () => {
  // qwen3-style, pre-norm, rope + qk-norm: D 16, H 4, K 2, hd 6 (Q 24, KV 12), F 20 (swiglu up 40), 3 layers,
  // batch 2 x seq 9: N = 18 rows.
  const cfg = small({ family: 'qwen3', n_kv_head: 2 }, 'qwen3');
  const N = 18;
  const stats = 2 * v(N); // mean + rstd
  const attn = v(N * 48) + v(N * 36) + v(N * 6) + v(N * 24) + v(2 * 4 * 9); // qkv, qk, qkRstd, att, lse
  const stream = 4 * v(N * 16) + 2 * stats; // input, attnIn, mid, mlpIn + two norms' statistics
  const mlp = v(N * 40) + v(N * 20); // up (gate | up), act
  const layer = attn + stream + mlp;
  // blocksOut, finalNormOut, final stats, dStream, dTmp, dQkv, dQk, dAtt, dUp, dAct, cos, sin.
  const tail = 2 * v(N * 16) + stats + 2 * v(N * 16) + v(N * 48) + v(N * 36) + v(N * 24) + v(N * 40) + v(N * 20) + 2 * v(9 * 3);
  const ints = (4 * N + 1) * 4 + 2 * 8;
  const bytes = (f32: number): number => f32 * 4 + ints;
  assert.equal(activationArenaBytes(cfg, 2, 9, 'f32', 'none'), bytes(3 * layer + tail));
  assert.equal(activationArenaBytes(cfg, 2, 9, 'f32', 'mlp'), bytes(3 * (layer - mlp) + mlp + tail));
  // block: each layer keeps its input; everything else is one shared set.
  assert.equal(activationArenaBytes(cfg, 2, 9, 'f32', 'block'), bytes(3 * v(N * 16) + (layer - v(N * 16)) + tail));
  // The default is none, and the model allocates what the function reports.
  assert.equal(activationArenaBytes(cfg, 2, 9), activationArenaBytes(cfg, 2, 9, 'f32', 'none'));
  for (const mode of RECOMPUTE_MODES) {
    const m = new Decoder(be, cfg);
    m.setRecompute(mode);
    const ids = Int32Array.from({ length: N }, (_, i) => (i * 7) % cfg.vocab_size);
    m.run(ids, ids, { batch: 2, seq: 9, backward: true });
    assert.equal(m.activationBytes, activationArenaBytes(cfg, 2, 9, 'f32', mode), mode);
    m.dispose();
  }
});

test('changing the mode replans the arena at the next run', () => {
  const cfg = small({ family: 'qwen3' }, 'qwen3');
  const m = new Decoder(be, cfg);
  const ids = Int32Array.from({ length: 18 }, (_, i) => i % 50);
  m.run(ids, ids, { batch: 2, seq: 9, backward: true });
  assert.equal(m.activationBytes, activationArenaBytes(cfg, 2, 9, 'f32', 'none'));
  m.setRecompute('block');
  assert.equal(m.recompute, 'block');
  assert.equal(m.activationBytes, 0, 'the old arena is released');
  m.run(ids, ids, { batch: 2, seq: 9, backward: true });
  assert.equal(m.activationBytes, activationArenaBytes(cfg, 2, 9, 'f32', 'block'));
  m.dispose();
});

test('recompute is a training key: default none, a wrong value names the allowed ones', () => {
  assert.equal(loadTrainConfig(undefined, []).recompute, 'none');
  assert.equal(loadTrainConfig(undefined, ['recompute=block']).recompute, 'block');
  assert.throws(() => loadTrainConfig(undefined, ['recompute=blocks']),
    /key 'recompute' must be one of 'none', 'mlp', 'block', got string 'blocks' \(did you mean 'block'\?\)/);
});
