/**
 * Whole-model gradient check by finite differences, over combinations of parts the golden cases do not cover
 * (post-norm, erf GELU, biases with RoPE, learned positions with QK-norm, MQA/MHA, tied and untied, ignored labels).
 * Directional derivatives: (L(p + h v) - L(p - h v)) / 2h against g . v, for random directions over all
 * parameters and for directions confined to each tensor.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createBackend } from '../../src/engine/index.js';
import { Decoder } from '../../src/model/decoder.js';
import { initWeights } from '../../src/model/init.js';
import { validateModelConfig } from '../../src/config/schema.js';
import { Rng } from '../../src/model/rng.js';

const be = createBackend('cpu');

const CASES: Record<string, Record<string, unknown>> = {
  'qwen3-like: rmsnorm pre, swiglu, rope, qk-norm, GQA, untied': {
    family: 'qwen3', qk_norm: true, n_kv_head: 2, tie_embeddings: false,
  },
  'gpt2-like: layernorm pre, gelu_tanh mlp, learned positions, biases, tied': {
    family: 'gpt2', n_kv_head: 4,
  },
  'post-norm layernorm, erf gelu mlp, rope, MQA, attention+mlp bias, untied': {
    family: 'llama', norm: 'layernorm', norm_position: 'post', ffn: 'mlp', activation: 'gelu', n_kv_head: 1,
    attention_bias: true, mlp_bias: true, tie_embeddings: false,
  },
  'llama with biases: swiglu, rope theta 1e4, MHA, tied': {
    family: 'llama', attention_bias: true, mlp_bias: true, rope_theta: 1e4, n_kv_head: 4, tie_embeddings: true,
  },
  'post-norm rmsnorm, swiglu, learned positions, qk-norm, GQA': {
    family: 'qwen3', norm_position: 'post', positions: 'learned', qk_norm: true, n_kv_head: 2,
  },
};

for (const [name, over] of Object.entries(CASES)) {
  test(`finite differences: ${name}`, () => {
    const cfg = validateModelConfig({
      vocab_size: 61, hidden_size: 16, n_layer: 2, n_head: 4, head_dim: 6, ffn_hidden: 20, context_length: 16,
      init_std: 0.3, ...over,
    }, name);
    const model = new Decoder(be, cfg);
    initWeights(model, { seed: 7, scaledResidual: false });
    const rng = new Rng(11);
    const total = model.layout.total;
    // Norm gains and biases start at 1 and 0; perturb them so their gradients are generic.
    const p0 = new Float32Array(total);
    be.download(model.paramPtr(0), p0);
    for (let i = 0; i < total; i++) p0[i] += 0.2 * (rng.next() - 0.5);
    be.upload(model.paramPtr(0), p0);
    const batch = 2;
    const seq = 7;
    const ids = Int32Array.from({ length: batch * seq }, () => rng.int(cfg.vocab_size));
    const targets = Int32Array.from({ length: batch * seq }, (_, i) => (i % 5 === 3 ? -100 : rng.int(cfg.vocab_size)));
    const count = targets.filter((t) => t !== -100).length;
    const loss = (p: Float32Array): number => {
      be.upload(model.paramPtr(0), p);
      model.resetLoss();
      model.run(ids, targets, { batch, seq, backward: false });
      return model.takeLoss() / count;
    };
    model.zeroGrads();
    model.resetLoss();
    be.upload(model.paramPtr(0), p0);
    model.run(ids, targets, { batch, seq, backward: true, gradScale: 1 / count });
    const g = new Float32Array(total);
    be.download(model.gradPtr(0), g);
    const check = (what: string, v: Float32Array) => {
      let an = 0;
      let vn = 0;
      for (let i = 0; i < total; i++) {
        an += g[i]! * v[i]!;
        vn += v[i]! * v[i]!;
      }
      const h = 1e-2 / Math.sqrt(vn);
      const plus = Float32Array.from(p0, (x, i) => x + h * v[i]!);
      const minus = Float32Array.from(p0, (x, i) => x - h * v[i]!);
      const fd = (loss(plus) - loss(minus)) / (2 * h);
      const scale = Math.sqrt(vn);
      assert.ok(Math.abs(fd - an) <= 2e-2 * Math.abs(an) + 2e-3 * scale, `${what}: finite difference ${fd} vs analytic ${an}`);
    };
    for (let k = 0; k < 3; k++) check(`random direction ${k}`, Float32Array.from({ length: total }, () => rng.next() - 0.5));
    for (const spec of model.layout.params) {
      const v = new Float32Array(total);
      for (let i = 0; i < spec.size; i++) v[spec.offset + i] = rng.next() - 0.5;
      check(spec.name, v);
    }
    model.dispose();
  });
}
