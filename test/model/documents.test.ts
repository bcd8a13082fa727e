/**
 * Document masking, the proof: a packed batch (several documents per row, separated by EOS) run with document
 * bounds and per-document positions gives the same per-token losses and the same gradients as the documents run
 * one by one, each as its own sequence from position 0. Over the parts that touch it: RoPE with QK-norm (qwen3),
 * learned positions (gpt2), GQA and MQA, pre- and post-norm.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createBackend } from '../../src/engine/index.js';
import { Decoder } from '../../src/model/decoder.js';
import { initWeights } from '../../src/model/init.js';
import { validateModelConfig } from '../../src/config/schema.js';
import { documentSegments } from '../../src/data/documents.js';
import { Rng } from '../../src/model/rng.js';

const be = createBackend('cpu');
const EOS = 60;

const CASES: Record<string, Record<string, unknown>> = {
  'qwen3: rope + qk-norm, GQA': { family: 'qwen3', n_kv_head: 2 },
  'gpt2: learned positions, layernorm, biases, MHA': { family: 'gpt2', n_kv_head: 4 },
  'llama post-norm, MQA, rope 1e4': { family: 'llama', norm_position: 'post', n_kv_head: 1, rope_theta: 1e4 },
};

/** Per-token cross-entropy (float64) from logits [n, V]. */
function tokenLosses(logits: Float32Array, targets: Int32Array, V: number): number[] {
  return Array.from(targets, (t, i) => {
    const row = logits.subarray(i * V, (i + 1) * V);
    let mx = -Infinity;
    for (const x of row) mx = Math.max(mx, x);
    let s = 0;
    for (const x of row) s += Math.exp(x - mx);
    return mx + Math.log(s) - row[t]!;
  });
}

function allGrads(m: Decoder): Float32Array {
  const g = new Float32Array(m.layout.total);
  be.download(m.gradPtr(0), g);
  return g;
}

function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let num = 0, den = 0;
  for (let i = 0; i < a.length; i++) {
    num += (a[i]! - b[i]!) ** 2;
    den += b[i]! ** 2;
  }
  return Math.sqrt(num / Math.max(den, 1e-30));
}

for (const [name, over] of Object.entries(CASES)) {
  test(`a packed batch equals its documents run one by one: per-token losses and every gradient (${name})`, () => {
    const cfg = validateModelConfig({
      vocab_size: 61, hidden_size: 16, n_layer: 2, n_head: 4, head_dim: 6, ffn_hidden: 20, context_length: 40, init_std: 0.3, ...over,
    }, name);
    const m = new Decoder(be, cfg);
    initWeights(m, { seed: 5, scaledResidual: true });
    const batch = 3, seq = 24, N = batch * seq, V = cfg.vocab_size;
    // Rows of random tokens with EOS at random places (including a row's last token and two EOS in a row).
    const rng = new Rng(9);
    const ids = new Int32Array(N);
    for (let i = 0; i < N; i++) ids[i] = rng.next() < 0.15 ? EOS : Math.floor(rng.next() * (V - 1));
    ids[seq - 1] = EOS;
    ids[seq + 5] = EOS;
    ids[seq + 6] = EOS;
    const targets = Int32Array.from(ids, (_, i) => (i % 7 === 3 ? -100 : Math.floor(rng.next() * V)));
    const d = documentSegments(ids, batch, seq, EOS);
    assert.ok(d.cuSeqlens.length - 1 >= batch + 4, `${d.cuSeqlens.length - 1} documents`);

    // Packed: one call over the whole batch.
    m.zeroGrads();
    const packedLogits = new Float32Array(N * V);
    m.run(ids, targets, { batch, seq, backward: true, gradScale: 1, logits: packedLogits, segments: d.cuSeqlens, positionIds: d.positions });
    const packedGrads = allGrads(m);
    const packedLoss = m.takeLoss();

    // One by one: each document alone, from position 0, gradients adding up.
    m.zeroGrads();
    const oneLogits = new Float32Array(N * V);
    let oneLoss = 0;
    for (let g = 0; g + 1 < d.cuSeqlens.length; g++) {
      const a = d.cuSeqlens[g]!, b = d.cuSeqlens[g + 1]!;
      const out = new Float32Array((b - a) * V);
      m.run(ids.slice(a, b), targets.slice(a, b), { batch: 1, seq: b - a, backward: true, gradScale: 1, logits: out });
      oneLogits.set(out, a * V);
      oneLoss += m.takeLoss();
    }
    const oneGrads = allGrads(m);

    const counted = Array.from(targets.keys()).filter((i) => targets[i] !== -100);
    const lp = tokenLosses(packedLogits, targets.map((t) => Math.max(t, 0)), V);
    const lo = tokenLosses(oneLogits, targets.map((t) => Math.max(t, 0)), V);
    for (const i of counted) assert.ok(Math.abs(lp[i]! - lo[i]!) < 2e-5, `token ${i}: loss ${lp[i]} packed vs ${lo[i]} alone`);
    assert.ok(relErr(packedLogits, oneLogits) < 2e-6, 'logits');
    assert.ok(Math.abs(packedLoss - oneLoss) < 1e-5 * Math.abs(oneLoss), `loss sum ${packedLoss} vs ${oneLoss}`);
    for (const spec of m.layout.params) {
      const a = packedGrads.subarray(spec.offset, spec.offset + spec.size);
      const b = oneGrads.subarray(spec.offset, spec.offset + spec.size);
      assert.ok(relErr(a, b) < 1e-5, `${spec.name}: gradient rel err ${relErr(a, b)}`);
    }

    // And plain causal packing (no bounds, row positions) is different: the test can tell.
    m.zeroGrads();
    const causal = new Float32Array(N * V);
    m.run(ids, targets, { batch, seq, backward: false, logits: causal });
    assert.ok(relErr(causal, oneLogits) > 1e-3, 'causal packing attends across documents');
    // Masking alone, positions continuing through the row: learned positions then differ; RoPE scores depend only
    // on relative positions, so within a document they are the same up to rounding.
    m.run(ids, targets, { batch, seq, backward: false, logits: causal, segments: d.cuSeqlens });
    if (cfg.positions === 'learned') assert.ok(relErr(causal, oneLogits) > 1e-3, 'masking without per-document positions');
    else assert.ok(relErr(causal, oneLogits) < 1e-4, 'RoPE is relative: masking alone matches up to rounding');
    m.dispose();
  });
}
