/**
 * Activation recomputation on the CUDA engine (cuda-interpret in CI): 'mlp' and 'block' give the losses, every
 * gradient and the updated weights of 'none' bit for bit, in fp32 and in bf16 precision (flash attention at
 * head_dim 64), on packed documents (document masking and per-document positions through the re-run forward).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { validateModelConfig } from '../../src/config/schema.js';
import { firstDifference, trainSteps } from '../model/recompute-run.js';
import { cuda, device, skipReason, withPrecision } from './harness.js';

const CASES: Record<string, Record<string, unknown>> = {
  'qwen3: pre-norm, rope + qk-norm, GQA, head_dim 64': { family: 'qwen3', hidden_size: 32, n_head: 2, n_kv_head: 1, head_dim: 64 },
  'gpt2 post-norm: layernorm, learned positions, gelu mlp': { family: 'gpt2', norm_position: 'post', hidden_size: 16, n_head: 4, head_dim: 6 },
};

for (const precision of ['fp32', 'bf16'] as const) {
  for (const [name, over] of Object.entries(CASES)) {
    test(`recompute on ${device} (${precision}): mlp and block equal none bit for bit (${name})`, { skip: skipReason }, () => {
      const cfg = validateModelConfig({ vocab_size: 61, n_layer: 3, ffn_hidden: 24, context_length: 40, init_std: 0.3, ...over }, name);
      withPrecision(precision, () => {
        const be = cuda!;
        const ref = trainSteps(be, cfg, 'none', 2);
        assert.ok(ref.losses.every((l) => Number.isFinite(l) && l > 0));
        for (const mode of ['mlp', 'block'] as const) {
          const r = trainSteps(be, cfg, mode, 2);
          assert.deepEqual(r.losses, ref.losses, `${mode}: losses`);
          r.grads.forEach((g, s) => assert.equal(firstDifference(g, ref.grads[s]!), null, `${mode}: gradients of step ${s + 1}`));
          assert.equal(firstDifference(r.params, ref.params), null, `${mode}: parameters after the updates`);
        }
      });
    });
  }
}
