/**
 * Document masking on the CUDA engine (the varlen kernels of attention.cu and the per-token positions of rope.cu):
 * the ops against the CPU engine on random document bounds, and the proof at the model level: a packed batch run
 * with document bounds and per-document positions equals its documents run one by one (per-token losses, every
 * gradient), as test/model/documents.test.ts shows for the CPU engine.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { at } from '../../src/engine/backend.js';
import { Decoder } from '../../src/model/decoder.js';
import { initWeights } from '../../src/model/init.js';
import { validateModelConfig } from '../../src/config/schema.js';
import { documentSegments } from '../../src/data/documents.js';
import { Rng } from '../../src/model/rng.js';
import { both, cuda, errOf, FP32_TOL, freePairs, pair, randF32, relErr, rng, skipReason, zerosPair } from './harness.js';

const skip = skipReason;

/** Random document bounds over batch rows of seq tokens (every row ends a document). */
function randomDocuments(r: () => number, batch: number, seq: number): number[] {
  const cu = [0];
  for (let b = 0; b < batch; b++) {
    let t = 0;
    while (t < seq) {
      t = Math.min(seq, t + 1 + Math.floor(r() * seq * 0.4));
      cu.push(b * seq + t);
    }
  }
  return cu;
}

test('document-masked attention forward/backward: CUDA equals CPU (tiles trimmed to document bounds, GQA, MQA)', { skip }, () => {
  const r = rng(41);
  for (const [batch, seq, heads, kvHeads, hd] of [[2, 70, 4, 2, 32], [3, 40, 6, 1, 16], [1, 97, 2, 2, 64]] as const) {
    const cu = randomDocuments(r, batch, seq);
    const stride = (heads + 2 * kvHeads) * hd + 2, n = batch * seq, od = heads * hd;
    const kOff = heads * hd, vOff = kOff + kvHeads * hd;
    const shape = { batch, seq, heads, kvHeads, headDim: hd, scale: 1 / Math.sqrt(hd) };
    const strides = { q: stride, k: stride, v: stride };
    const qkv = pair(randF32(r, n * stride, 2)), bounds = pair(Int32Array.from(cu));
    const out = zerosPair(n * od), lse = zerosPair(batch * heads * seq);
    const dout = pair(randF32(r, n * od)), dqkv = pair(randF32(r, n * stride));
    both((be, s) => {
      const g = s === 'cpu' ? 'cpu' : 'gpu';
      const docs = { cuSeqlens: at(bounds[g]), segments: cu.length - 1 };
      be.attentionForward(at(out[g]), at(lse[g]), at(qkv[g], 0), at(qkv[g], kOff), at(qkv[g], vOff), strides, shape, docs);
      be.attentionBackward(
        at(dqkv[g], 0), at(dqkv[g], kOff), at(dqkv[g], vOff), at(dout[g]), at(qkv[g], 0), at(qkv[g], kOff), at(qkv[g], vOff),
        at(out[g]), at(lse[g]), strides, shape, docs,
      );
    });
    const tag = `B${batch} T${seq} H${heads}/${kvHeads} hd${hd}, ${cu.length - 1} documents`;
    assert.ok(errOf(out) < FP32_TOL, `${tag} out ${errOf(out)}`);
    assert.ok(errOf(lse) < FP32_TOL, `${tag} lse ${errOf(lse)}`);
    assert.ok(errOf(dqkv) < 1e-4, `${tag} dqkv ${errOf(dqkv)}`);
    freePairs(qkv, bounds, out, lse, dout, dqkv);
  }
});

test('qkPrep with per-token positions: CUDA equals CPU', { skip }, () => {
  const r = rng(42);
  const batch = 2, seq = 11, heads = 4, kvHeads = 2, hd = 16, stride = (heads + 2 * kvHeads) * hd + 3;
  const n = batch * seq, nh = heads + kvHeads, half = hd / 2;
  const cosT = new Float32Array(seq * half), sinT = new Float32Array(seq * half);
  for (let p = 0; p < seq; p++)
    for (let i = 0; i < half; i++) {
      const a = p / Math.pow(10000, (2 * i) / hd);
      cosT[p * half + i] = Math.cos(a);
      sinT[p * half + i] = Math.sin(a);
    }
  const positions = Int32Array.from({ length: n }, (_, i) => [0, 1, 2, 0, 1, 0, 1, 2, 3, 4, 5][i % seq]!);
  const qkv = pair(randF32(r, n * stride, 2)), qw = pair(randF32(r, hd)), kw = pair(randF32(r, hd));
  const cs = pair(cosT), sn = pair(sinT), pos = pair(positions);
  const out = zerosPair(n * nh * hd), rstd = zerosPair(n * nh), dout = pair(randF32(r, n * nh * hd));
  const dqkv = pair(randF32(r, n * stride)), dqw = pair(randF32(r, hd)), dkw = pair(randF32(r, hd));
  both((be, s) => {
    const g = s === 'cpu' ? 'cpu' : 'gpu';
    be.qkPrepForward(at(out[g]), at(rstd[g]), at(qkv[g]), stride, at(qw[g]), at(kw[g]), at(cs[g]), at(sn[g]), n, seq, heads, kvHeads, hd, 1e-6, at(pos[g]));
    be.qkPrepBackward(at(dqkv[g]), stride, at(dqw[g]), at(dkw[g]), at(dout[g]), at(qkv[g]), at(rstd[g]), at(qw[g]), at(kw[g]), at(cs[g]), at(sn[g]), n, seq, heads, kvHeads, hd, at(pos[g]));
  });
  for (const [name, p] of [['out', out], ['rstd', rstd], ['dqkv', dqkv], ['dqNormW', dqw], ['dkNormW', dkw]] as const)
    assert.ok(errOf(p) < FP32_TOL, `${name}: ${errOf(p)}`);
  freePairs(qkv, qw, kw, cs, sn, pos, out, rstd, dout, dqkv, dqw, dkw);
});

const EOS = 60;
const CASES: Record<string, Record<string, unknown>> = {
  'qwen3: rope + qk-norm, GQA': { family: 'qwen3', n_kv_head: 2 },
  'gpt2: learned positions, layernorm, biases': { family: 'gpt2', n_kv_head: 4 },
};

for (const [name, over] of Object.entries(CASES)) {
  test(`CUDA: a packed batch equals its documents run one by one (${name})`, { skip }, () => {
    const be = cuda!;
    const cfg = validateModelConfig({
      vocab_size: 61, hidden_size: 16, n_layer: 2, n_head: 4, head_dim: 6, ffn_hidden: 20, context_length: 40, init_std: 0.3, ...over,
    }, name);
    const m = new Decoder(be, cfg);
    initWeights(m, { seed: 5, scaledResidual: true });
    const batch = 2, seq = 24, N = batch * seq, V = cfg.vocab_size;
    const rand = new Rng(9);
    const ids = new Int32Array(N);
    for (let i = 0; i < N; i++) ids[i] = rand.next() < 0.15 ? EOS : Math.floor(rand.next() * (V - 1));
    ids[seq - 1] = EOS;
    ids[seq + 5] = EOS;
    ids[seq + 6] = EOS;
    const targets = Int32Array.from(ids, (_, i) => (i % 7 === 3 ? -100 : Math.floor(rand.next() * V)));
    const d = documentSegments(ids, batch, seq, EOS);
    const grads = (): Float32Array => {
      const g = new Float32Array(m.layout.total);
      be.download(m.gradPtr(0), g);
      return g;
    };
    m.zeroGrads();
    m.resetLoss();
    const packed = new Float32Array(N * V);
    m.run(ids, targets, { batch, seq, backward: true, gradScale: 1, logits: packed, segments: d.cuSeqlens, positionIds: d.positions });
    const packedGrads = grads();
    const packedLoss = m.takeLoss();
    m.zeroGrads();
    const alone = new Float32Array(N * V);
    let aloneLoss = 0;
    for (let g = 0; g + 1 < d.cuSeqlens.length; g++) {
      const a = d.cuSeqlens[g]!, b = d.cuSeqlens[g + 1]!;
      const out = new Float32Array((b - a) * V);
      m.resetLoss();
      m.run(ids.slice(a, b), targets.slice(a, b), { batch: 1, seq: b - a, backward: true, gradScale: 1, logits: out });
      alone.set(out, a * V);
      aloneLoss += m.takeLoss();
    }
    const aloneGrads = grads();
    assert.ok(relErr(packed, alone) < 2e-6, `logits ${relErr(packed, alone)}`);
    assert.ok(Math.abs(packedLoss - aloneLoss) < 1e-5 * Math.abs(aloneLoss), `loss sum ${packedLoss} vs ${aloneLoss}`);
    for (const spec of m.layout.params) {
      const a = packedGrads.subarray(spec.offset, spec.offset + spec.size);
      const b = aloneGrads.subarray(spec.offset, spec.offset + spec.size);
      assert.ok(relErr(a, b) < 1e-5, `${spec.name}: gradient rel err ${relErr(a, b)}`);
    }
    // Without the bounds the batch attends across documents: the test can tell.
    const causal = new Float32Array(N * V);
    m.run(ids, targets, { batch, seq, backward: false, logits: causal });
    assert.ok(relErr(causal, alone) > 1e-3, 'causal packing attends across documents');
    m.dispose();
  });
}
