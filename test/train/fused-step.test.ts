/**
 * Training is bit-identical with and without the fusions: the same model and AdamW steps run once on the CPU
 * engine as it is (residual adds fused with the norms, inside blocks and across them; one multi-tensor AdamW
 * pass) and once through a backend that computes each fused op as the unfused composition it replaces (`add`
 * then the norm op; one `adamw` call per range). Loss, gradients, parameters and moments must agree bit for bit.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createBackend } from '../../src/engine/index.js';
import type { AdamWHyper, AdamWRange, Backend, Ptr } from '../../src/engine/backend.js';
import { Decoder } from '../../src/model/decoder.js';
import { initWeights } from '../../src/model/init.js';
import { Rng } from '../../src/model/rng.js';
import { validateModelConfig } from '../../src/config/schema.js';
import { AdamW } from '../../src/train/adamw.js';

const be = createBackend('cpu');

/** `inner` with every fused op replaced by the composition of unfused ops it stands for. */
function unfused(inner: Backend): Backend {
  const shift = (p: Ptr, by: number): Ptr => ({ buf: p.buf, offset: p.offset + by });
  const replaced: Partial<Backend> = {
    addRmsnormForward(sum, out, rstd, a, b, w, rows, d, eps) {
      inner.add(sum, a, b, rows * d);
      inner.rmsnormForward(out, rstd, sum, w, rows, d, eps);
    },
    addLayernormForward(sum, out, mean, rstd, a, b, w, bias, rows, d, eps) {
      inner.add(sum, a, b, rows * d);
      inner.layernormForward(out, mean, rstd, sum, w, bias, rows, d, eps);
    },
    adamwRanges(param, grad, m, v, _n, ranges: readonly AdamWRange[], hyper: AdamWHyper, paramBf16?: Ptr | null) {
      for (const r of ranges) {
        inner.adamw(shift(param, r.offset), shift(grad, r.offset), shift(m, r.offset), shift(v, r.offset), r.size, {
          ...hyper, weightDecay: r.decay ? hyper.weightDecay : 0,
        }, paramBf16 ? shift(paramBf16, r.offset) : null);
      }
    },
  };
  return new Proxy(inner, {
    get(target, key) {
      const own = (replaced as Record<string | symbol, unknown>)[key];
      if (own) return own;
      const v = Reflect.get(target, key, target) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}

const CONFIGS: Record<string, Record<string, unknown>> = {
  'pre-norm rmsnorm, qk-norm, GQA (Qwen3)': { family: 'qwen3', qk_norm: true, n_kv_head: 2 },
  'pre-norm layernorm, learned positions, biases (GPT-2)': { family: 'gpt2', attention_bias: true, mlp_bias: true },
  'post-norm layernorm, MQA': { family: 'gpt2', norm_position: 'post', n_kv_head: 1 },
  'post-norm rmsnorm, qk-norm': { family: 'qwen3', norm_position: 'post', qk_norm: true },
};

function train(backend: Backend, over: Record<string, unknown>, name: string): { loss: number[]; state: Float32Array[] } {
  const cfg = validateModelConfig({
    vocab_size: 97, hidden_size: 40, n_layer: 3, n_head: 4, head_dim: 10, ffn_hidden: 56, context_length: 16,
    init_std: 0.3, ...over,
  }, name);
  const model = new Decoder(backend, cfg);
  initWeights(model, { seed: 11, scaledResidual: true });
  // Norm gains and biases start at 1 and 0: perturb every parameter so each part acts.
  const rng = new Rng(13);
  const p = new Float32Array(model.layout.total);
  backend.download(model.paramPtr(0), p);
  for (let i = 0; i < p.length; i++) p[i] += 0.1 * (rng.next() - 0.5);
  backend.upload(model.paramPtr(0), p);
  const opt = new AdamW(backend, model, { lr: 1e-2, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1, clip: 0.5 });
  const batch = 2, seq = 16, N = batch * seq;
  const loss: number[] = [];
  for (let step = 0; step < 3; step++) {
    const ids = Int32Array.from({ length: N }, () => Math.floor(rng.next() * 97));
    const targets = Int32Array.from({ length: N }, (_, i) => (i % 7 === 3 ? -100 : Math.floor(rng.next() * 97)));
    model.zeroGrads();
    model.resetLoss();
    // Document masking on the second step: packed rows go through the same fused wiring.
    const segments = step === 1 ? Int32Array.from([0, 5, 16, 27, 32]) : undefined;
    model.run(ids, targets, { batch, seq, backward: true, gradScale: 1 / N, segments });
    const stats = model.stepStats();
    model.gradSquares(stats);
    opt.update(1e-2, 1, stats);
    loss.push(model.takeLoss());
  }
  const state = [model.paramPtr(0), model.gradPtr(0), { buf: opt.m, offset: 0 }, { buf: opt.v, offset: 0 }].map((q) => {
    const out = new Float32Array(model.layout.total);
    backend.download(q, out);
    return out;
  });
  opt.dispose();
  model.dispose();
  return { loss, state };
}

for (const [name, over] of Object.entries(CONFIGS)) {
  test(`fused residual norms and multi-tensor AdamW train bit-identically to the unfused ops: ${name}`, () => {
    const fused = train(be, over, name);
    const plain = train(unfused(be), over, name);
    assert.deepEqual(fused.loss, plain.loss);
    ['params', 'grads', 'm', 'v'].forEach((what, k) => {
      const a = fused.state[k]!, b = plain.state[k]!;
      for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) assert.fail(`${name}: ${what}[${i}] ${a[i]} != unfused ${b[i]}`);
    });
  });
}
