/**
 * The tensor-core flash attention (src/engine/cuda/flash_attention.cu) against the CPU engine's fp32 attention:
 * forward (out, lse) and backward (dq, dk, dv) on MHA, GQA and MQA, head_dim 64 and 128, sequence lengths that
 * are not multiples of the 64/32-row tiles, with and without document masking; two runs are bit-identical.
 * The CUDA engine picks this kernel in bf16 mode for head_dim 64/128 (attention.cc); each case also checks that
 * it really ran: its bf16 rounding shows against the fp32 kernel (LMFORGE_CUDA_ATTENTION=classic).
 *
 * Tolerances (relative L2 against fp32): q, k, v, P and dS are rounded to bf16 (relative rounding error up to
 * 2^-9 = 2e-3 per element, about 1e-3 on average); the products accumulate in fp32. Measured (interpret mode,
 * these shapes and seeds): out <= 2.9e-3, lse <= 1.8e-3 (T = 1, where lse is the one scaled score q·k), dq and dk
 * <= 4.3e-3, dv <= 3.1e-3. The limits below are 2-3x the worst measured; a logic error (a missed key, row or
 * tile) gives far more: see flash-mutation.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { at } from '../../src/engine/backend.js';
import type { Backend } from '../../src/engine/backend.js';
import { Decoder } from '../../src/model/decoder.js';
import { initWeights } from '../../src/model/init.js';
import { validateModelConfig } from '../../src/config/schema.js';
import { documentSegments } from '../../src/data/documents.js';
import { Rng } from '../../src/model/rng.js';
import {
  both, cpu, cuda, freePairs, pair, randF32, readBoth, relErr, rng, skipReason, withPrecision, zerosPair, type Pair,
} from './harness.js';

const skip = skipReason;
const TOL = { out: 8e-3, lse: 5e-3, grads: 1e-2 };

interface Shape {
  batch: number;
  seq: number;
  heads: number;
  kvHeads: number;
  hd: number;
  /** document bounds (cumulative, over batch * seq tokens), or none */
  cu?: number[];
}

interface Run {
  out: Pair;
  lse: Pair;
  dqkv: Pair;
  /** the column ranges of q, k and v in a fused row of `stride` */
  cols: Record<'dq' | 'dk' | 'dv', [number, number]>;
  stride: number;
  free(): void;
}

/** The given columns of every row. */
function columns(x: Float64Array, stride: number, [from, to]: [number, number]): Float64Array {
  const rows = x.length / stride, w = to - from, o = new Float64Array(rows * w);
  for (let r = 0; r < rows; r++) o.set(x.subarray(r * stride + from, r * stride + to), r * w);
  return o;
}

/** Forward + backward on both engines with q|k|v in one fused row (as the model stores them). */
function runBoth(s: Shape, seed: number): Run {
  const r = rng(seed);
  const { batch, seq, heads, kvHeads, hd } = s;
  const stride = (heads + 2 * kvHeads) * hd + 8, n = batch * seq, od = heads * hd;
  const kOff = heads * hd, vOff = kOff + kvHeads * hd;
  const shape = { batch, seq, heads, kvHeads, headDim: hd, scale: 1 / Math.sqrt(hd) };
  const strides = { q: stride, k: stride, v: stride };
  const qkv = pair(randF32(r, n * stride, 2)), out = zerosPair(n * od), lse = zerosPair(batch * heads * seq);
  const dout = pair(randF32(r, n * od)), dqkv = pair(randF32(r, n * stride));
  const bounds = s.cu ? pair(Int32Array.from(s.cu)) : null;
  withPrecision('bf16', () => {
    both((be, side) => {
      const g = side === 'cpu' ? 'cpu' : 'gpu';
      const docs = bounds ? { cuSeqlens: at(bounds[g]), segments: s.cu!.length - 1 } : undefined;
      be.attentionForward(at(out[g]), at(lse[g]), at(qkv[g], 0), at(qkv[g], kOff), at(qkv[g], vOff), strides, shape, docs);
      be.attentionBackward(
        at(dqkv[g], 0), at(dqkv[g], kOff), at(dqkv[g], vOff), at(dout[g]), at(qkv[g], 0), at(qkv[g], kOff), at(qkv[g], vOff),
        at(out[g]), at(lse[g]), strides, shape, docs,
      );
    });
  });
  const cols = { dq: [0, kOff], dk: [kOff, vOff], dv: [vOff, vOff + kvHeads * hd] } as Run['cols'];
  return { out, lse, dqkv, cols, stride, free: () => freePairs(qkv, out, lse, dout, dqkv, ...(bounds ? [bounds] : [])) };
}

function withAttentionKernel<T>(kernel: 'flash' | 'classic', fn: () => T): T {
  const before = process.env.LMFORGE_CUDA_ATTENTION;
  process.env.LMFORGE_CUDA_ATTENTION = kernel;
  try {
    return fn();
  } finally {
    if (before === undefined) delete process.env.LMFORGE_CUDA_ATTENTION;
    else process.env.LMFORGE_CUDA_ATTENTION = before;
  }
}

const tag = (s: Shape): string =>
  `B${s.batch} T${s.seq} H${s.heads}/${s.kvHeads} hd${s.hd}${s.cu ? `, ${s.cu.length - 1} documents` : ''}`;

function gpuCpu(p: Pair): [Float64Array, Float64Array] {
  const v = readBoth(p);
  return [v.gpu, v.cpu];
}

/** Checks one shape against the CPU; returns the worst errors. */
function check(s: Shape, seed: number): Record<string, number> {
  const run = runBoth(s, seed);
  const errs: Record<string, number> = {};
  try {
    const grads = readBoth(run.dqkv);
    const results: [string, Float64Array, Float64Array, number][] = [
      ['out', ...gpuCpu(run.out), TOL.out],
      ['lse', ...gpuCpu(run.lse), TOL.lse],
      ...(['dq', 'dk', 'dv'] as const).map((k): [string, Float64Array, Float64Array, number] =>
        [k, columns(grads.gpu, run.stride, run.cols[k]), columns(grads.cpu, run.stride, run.cols[k]), TOL.grads]),
    ];
    // dq and dk vanish where every row sees one key (T = 1: dS = P (dP - D) = 0 up to rounding, and dP from bf16
    // operands does not cancel D from fp32 ones exactly); their error is measured against at least dv's norm
    // (elsewhere |dq|, |dk| ~ 0.8 |dv| on these inputs).
    const norm = (x: Float64Array): number => Math.sqrt(x.reduce((a, v) => a + v * v, 0));
    const floor = norm(results[4]![2]);
    for (const [name, got, want, limit] of results) {
      const diff = got.map((v, i) => v - want[i]!);
      const e = name === 'dq' || name === 'dk' ? norm(diff) / Math.max(norm(want), floor) : relErr(got, want);
      errs[name] = e;
      assert.ok(e < limit, `${tag(s)}: ${name} relative error ${e.toExponential(2)} >= ${limit}`);
    }
    // The fp32 kernel on the same inputs is within 1e-5 of the CPU: an error this large means the flash kernel ran.
    assert.ok(errs.out! > 1e-5, `${tag(s)}: out error ${errs.out} is fp32-level: the flash kernel did not run`);
  } finally {
    run.free();
  }
  return errs;
}

const SHAPES: Shape[] = [
  { batch: 1, seq: 1, heads: 2, kvHeads: 1, hd: 64 },     // MQA, a single token
  { batch: 1, seq: 17, heads: 4, kvHeads: 4, hd: 128 },   // MHA, less than one tile
  { batch: 2, seq: 77, heads: 4, kvHeads: 2, hd: 64 },    // GQA, a partial second tile
  { batch: 1, seq: 130, heads: 2, kvHeads: 1, hd: 128 },  // MQA, 64-row tiles + 2 rows
  { batch: 1, seq: 130, heads: 4, kvHeads: 2, hd: 64 },   // GQA
  { batch: 3, seq: 40, heads: 8, kvHeads: 1, hd: 64 },    // MQA, a group of 8 heads per dK/dV block
];

test('flash attention forward/backward vs the CPU engine: MHA, GQA, MQA; head_dim 64, 128; T = 1, 17, 77, 130', { skip }, () => {
  const worst: Record<string, number> = {};
  SHAPES.forEach((s, i) => {
    for (const [k, v] of Object.entries(check(s, 100 + i))) worst[k] = Math.max(worst[k] ?? 0, v);
  });
  process.stdout.write(`# flash attention worst relative errors: ${JSON.stringify(worst)}\n`);
});

test('flash attention with document masking (varlen) vs the CPU engine', { skip }, () => {
  // Documents that start and end inside tiles, a one-token document, and a batch row that is one document.
  check({ batch: 2, seq: 77, heads: 4, kvHeads: 2, hd: 64, cu: [0, 5, 6, 40, 71, 77, 154] }, 201);
  check({ batch: 1, seq: 130, heads: 2, kvHeads: 1, hd: 128, cu: [0, 63, 66, 129, 130] }, 202);
});

test('flash attention is deterministic: two runs give the same bits', { skip }, () => {
  const s: Shape = { batch: 1, seq: 77, heads: 4, kvHeads: 2, hd: 64 };
  const a = runBoth(s, 300), b = runBoth(s, 300);
  try {
    for (const name of ['out', 'lse', 'dqkv'] as const) {
      const x = readBoth(a[name]).gpu, y = readBoth(b[name]).gpu;
      assert.ok(x.every((v, i) => Object.is(v, y[i])), `${name}: two runs differ`);
    }
  } finally {
    a.free();
    b.free();
  }
});

test('LMFORGE_CUDA_ATTENTION=classic runs the fp32 kernel in bf16 mode; a bad value is named', { skip }, () => {
  const s: Shape = { batch: 1, seq: 20, heads: 2, kvHeads: 1, hd: 64 };
  withAttentionKernel('classic', () => {
    const run = runBoth(s, 400);
    try {
      const v = readBoth(run.out);
      assert.ok(relErr(v.gpu, v.cpu) < 2e-5, 'the fp32 kernel matches the CPU at fp32 level');
    } finally {
      run.free();
    }
  });
  process.env.LMFORGE_CUDA_ATTENTION = 'fast';
  try {
    assert.throws(() => runBoth(s, 401), /LMFORGE_CUDA_ATTENTION='fast' is not a kernel: use flash \(default\) or classic/);
  } finally {
    delete process.env.LMFORGE_CUDA_ATTENTION;
  }
});

/** Loss, logits and every gradient of one forward/backward of `m` on a packed batch with document bounds. */
function step(be: Backend, cfg: ReturnType<typeof validateModelConfig>, ids: Int32Array, targets: Int32Array, batch: number, seq: number) {
  const m = new Decoder(be, cfg);
  initWeights(m, { seed: 5, scaledResidual: true });
  const d = documentSegments(ids, batch, seq, 60);
  m.zeroGrads();
  m.resetLoss();
  const logits = new Float32Array(batch * seq * cfg.vocab_size);
  m.run(ids, targets, { batch, seq, backward: true, gradScale: 1, logits, segments: d.cuSeqlens, positionIds: d.positions });
  const grads = new Float32Array(m.layout.total);
  be.download(m.gradPtr(0), grads);
  const out = { loss: m.takeLoss(), logits, grads, params: m.layout.params };
  m.dispose();
  return out;
}

test('a Qwen3-style model with head_dim 128 (GQA, packed documents): bf16 CUDA with flash attention vs the CPU engine', { skip }, () => {
  const cfg = validateModelConfig({
    family: 'qwen3', vocab_size: 61, hidden_size: 64, n_layer: 2, n_head: 2, n_kv_head: 1, head_dim: 128, ffn_hidden: 96,
    context_length: 80, init_std: 0.3,
  }, 'flash-model');
  const batch = 2, seq = 70, N = batch * seq;
  const rand = new Rng(9);
  const ids = Int32Array.from({ length: N }, () => (rand.next() < 0.05 ? 60 : Math.floor(rand.next() * 60)));
  const targets = Int32Array.from(ids, (_, i) => (i % 9 === 4 ? -100 : Math.floor(rand.next() * 61)));
  const ref = step(cpu, cfg, ids, targets, batch, seq);
  // The bf16 engine rounds every GEMM operand too: the fp32 attention kernel on it gives the baseline error.
  const got: Record<string, ReturnType<typeof step>> = {};
  withPrecision('bf16', () => {
    got.flash = step(cuda!, cfg, ids, targets, batch, seq);
    got.classic = withAttentionKernel('classic', () => step(cuda!, cfg, ids, targets, batch, seq));
  });
  const worst: Record<string, Record<string, number>> = {};
  for (const [kernel, g] of Object.entries(got)) {
    const grads = Math.max(...g.params.map((p) => relErr(g.grads.subarray(p.offset, p.offset + p.size), ref.grads.subarray(p.offset, p.offset + p.size))));
    worst[kernel] = { loss: Math.abs(g.loss - ref.loss) / Math.abs(ref.loss), logits: relErr(g.logits, ref.logits), grads };
  }
  process.stdout.write(`# model-level relative errors vs the CPU (bf16 engine): ${JSON.stringify(worst)}\n`);
  // The golden cases' bf16 tolerances (../shared/golden/README.md): 1e-2 on the loss, 2e-2 on logits, 3e-2 on
  // gradients (norm weights included).
  assert.ok(worst.flash!.loss! < 1e-2 && worst.flash!.logits! < 2e-2 && worst.flash!.grads! < 3e-2, JSON.stringify(worst.flash));
  assert.notDeepEqual(got.flash!.logits, got.classic!.logits, 'the flash kernel ran');
});
