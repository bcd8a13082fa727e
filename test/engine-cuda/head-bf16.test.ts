/**
 * The bf16 head (src/engine/cuda/loss.cc, loss.cu in bf16 mode): the logits GEMM writes a bf16 chunk, one online-
 * softmax pass per row gives the loss, a second writes bf16 dlogits in place, and dh / dW (beta = 1) read them.
 * Checked two ways on random shapes (vocabularies that are no multiple of 8 or of any tile, ignored targets,
 * several chunks through LMFORGE_CE_CHUNK):
 *   - against a float64 recomputation from the bf16 logits the engine itself returns (logitsOut), with dlogits and
 *     the GEMM operands rounded to bf16 there too: the loss to 1e-7 (float32 per-thread sums; measured 1.1e-8 at
 *     most), dh and dW to 1e-4 (measured 6.8e-8: the reference rounds each dlogit from float64, the kernel from
 *     float32, so a value on a bf16 boundary may round the other way);
 *   - against the CPU engine's fp32 head, at bf16 tolerances: every GEMM operand is rounded to bf16 (8 significant
 *     bits, 2^-9 relative) and so is each logit, so a logit keeps about 3 significant digits (logits 5e-3 relative
 *     L2, measured 2.7e-3); the loss is a sum of logsumexps and target logits whose rounding errors are independent
 *     and partly cancel (1e-3, measured 1.5e-4); dlogits are bf16 too, and dh and dW average them over V and over
 *     rows (1e-2, measured 4.7e-3 and 3.0e-3).
 * Plus determinism (bit-identical twice), a tied head (the head's dW accumulating onto the embedding gradient),
 * the fp32 fallback for a shape cuBLASLt has no bf16 algorithm for (odd d), and headLogprob's argmax ties.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { at } from '../../src/engine/backend.js';
import {
  both, cuda, errOf, freePairs, pair, randF32, randInts, readBoth, rng, skipReason, withPrecision, zerosPair,
  type Pair,
} from './harness.js';
import { relErr } from '../helpers.js';

// The bf16 logits chunk is opt-in (loss.cc): every test of this file runs it, except the one about the default.
process.env.LMFORGE_CUDA_HEAD = 'bf16';
const skip = skipReason;

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);
/** x rounded to bf16, nearest even (as the engine's conversions). */
function bf16(x: number): number {
  f32[0] = x;
  const u = u32[0]!;
  if ((u & 0x7fffffff) > 0x7f800000) return NaN;
  u32[0] = (((u + 0x7fff + ((u >>> 16) & 1)) >>> 16) << 16) >>> 0;
  return f32[0]!;
}
function isBf16(x: number): boolean {
  f32[0] = x;
  return (u32[0]! & 0xffff) === 0;
}

/** Runs `fn` with LMFORGE_CE_CHUNK set (rows per chunk), restoring the variable afterwards. */
function withChunk<T>(rows: number | null, fn: () => T): T {
  const prev = process.env.LMFORGE_CE_CHUNK;
  if (rows === null) delete process.env.LMFORGE_CE_CHUNK;
  else process.env.LMFORGE_CE_CHUNK = String(rows);
  try {
    return fn();
  } finally {
    if (prev === undefined) delete process.env.LMFORGE_CE_CHUNK;
    else process.env.LMFORGE_CE_CHUNK = prev;
  }
}

interface HeadRun {
  n: number; d: number; V: number; gradScale: number;
  h: Float32Array; w: Float32Array; t: Int32Array; dw0: Float32Array;
  loss: { cpu: number; gpu: number };
  logits: { cpu: Float64Array; gpu: Float64Array };
  dh: { cpu: Float64Array; gpu: Float64Array };
  dw: { cpu: Float64Array; gpu: Float64Array };
}

/** One headCrossEntropy call (with dh, accumulating dW and logitsOut) on both engines, the CUDA one in bf16. */
function runHead(seed: number, n: number, d: number, V: number, chunk: number | null): HeadRun {
  const r = rng(seed);
  const h = randF32(r, n * d, 2), w = randF32(r, V * d, 0.5), dw0 = randF32(r, V * d, 0.1);
  const t = randInts(r, n, V);
  for (let i = 0; i < n; i += 5) t[i] = -100;
  const gradScale = 1 / Math.max(1, n - Math.ceil(n / 5));
  const P = { h: pair(h), w: pair(w), t: pair(t), loss: pair(Float64Array.of(0.25)), dh: zerosPair(n * d), dw: pair(dw0), logits: zerosPair(n * V) };
  withChunk(chunk, () =>
    withPrecision('bf16', () =>
      both((be, s) => {
        const g = s === 'cpu' ? 'cpu' : 'gpu';
        be.headCrossEntropy({
          lossOut: at(P.loss[g]), h: at(P.h[g]), w: at(P.w[g]), targets: at(P.t[g]), n, d, vocab: V, gradScale,
          dh: at(P.dh[g]), dw: at(P.dw[g]), logitsOut: at(P.logits[g]),
        });
      }),
    ),
  );
  const l = readBoth(P.loss);
  const out: HeadRun = {
    n, d, V, gradScale, h, w, t, dw0,
    loss: { cpu: l.cpu[0]!, gpu: l.gpu[0]! },
    logits: readBoth(P.logits), dh: readBoth(P.dh), dw: readBoth(P.dw),
  };
  freePairs(...Object.values(P));
  return out;
}

/** float64 loss, dh and dW from the bf16 logits the engine returned, with dlogits and the operands in bf16. */
function reference(run: HeadRun): { loss: number; dh: Float64Array; dw: Float64Array } {
  const { n, d, V, gradScale, t } = run;
  const L = run.logits.gpu;
  const hb = Float64Array.from(run.h, bf16), wb = Float64Array.from(run.w, bf16);
  let loss = 0.25;
  const dh = new Float64Array(n * d), dw = Float64Array.from(run.dw0);
  const dl = new Float64Array(V);
  for (let i = 0; i < n; i++) {
    const ti = t[i]!;
    if (ti === -100) continue;
    let mx = -Infinity;
    for (let j = 0; j < V; j++) mx = Math.max(mx, L[i * V + j]!);
    let sum = 0;
    for (let j = 0; j < V; j++) sum += Math.exp(L[i * V + j]! - mx);
    loss += mx + Math.log(sum) - L[i * V + ti]!;
    for (let j = 0; j < V; j++) dl[j] = bf16((Math.exp(L[i * V + j]! - mx) / sum - (j === ti ? 1 : 0)) * gradScale);
    for (let j = 0; j < V; j++) {
      const g = dl[j]!;
      if (g === 0) continue;
      for (let k = 0; k < d; k++) {
        dh[i * d + k] += g * wb[j * d + k]!;
        dw[j * d + k] += g * hb[i * d + k]!;
      }
    }
  }
  return { loss, dh, dw };
}

// [n, d, V, rows per chunk]: V = 1000 (a multiple of 8), 517 and 2053 (not), 9 (one vector and a tail); chunks of
// 64 (three, the last partial), 16 and 7 (views at every alignment), or the default (one chunk).
const SHAPES: [number, number, number, number | null][] = [
  [150, 64, 1000, 64],
  [37, 24, 517, 16],
  [45, 32, 2053, 7],
  [5, 16, 9, null],
];

test('bf16 head: loss, dh, dW against a float64 recomputation from its own bf16 logits, and against the CPU', { skip }, () => {
  let seed = 100;
  for (const [n, d, V, chunk] of SHAPES) {
    const tag = `n${n} d${d} V${V} chunk ${chunk ?? 'default'}`;
    const run = runHead(seed++, n, d, V, chunk);
    const ref = reference(run);
    // The bf16 path ran: every logit is a bf16 value, and ignored rows are returned too.
    assert.ok(run.logits.gpu.every(isBf16), `${tag}: logits are not bf16`);
    const lossErr = Math.abs(run.loss.gpu - ref.loss) / Math.abs(ref.loss);
    const dhErr = relErr(run.dh.gpu, ref.dh), dwErr = relErr(run.dw.gpu, ref.dw);
    assert.ok(lossErr < 1e-7, `${tag}: loss ${run.loss.gpu} vs recomputed ${ref.loss}`);
    assert.ok(dhErr < 1e-4, `${tag}: dh vs recomputed ${dhErr}`);
    assert.ok(dwErr < 1e-4, `${tag}: dW vs recomputed ${dwErr}`);
    // Against the fp32 CPU engine.
    const cpuLoss = Math.abs(run.loss.gpu - run.loss.cpu) / Math.abs(run.loss.cpu);
    const errs = { logits: relErr(run.logits.gpu, run.logits.cpu), dh: relErr(run.dh.gpu, run.dh.cpu), dw: relErr(run.dw.gpu, run.dw.cpu) };
    assert.ok(cpuLoss < 1e-3, `${tag}: loss ${run.loss.gpu} vs CPU ${run.loss.cpu}`);
    assert.ok(errs.logits < 5e-3, `${tag}: logits vs CPU ${errs.logits}`);
    assert.ok(errs.dh < 1e-2 && errs.dw < 1e-2, `${tag}: dh ${errs.dh}, dW ${errs.dw} vs CPU`);
    // Ignored rows: zero loss and zero dh.
    for (let i = 0; i < n; i += 5) assert.ok(run.dh.gpu.subarray(i * d, (i + 1) * d).every((x) => x === 0), `${tag}: row ${i} ignored`);
  }
});

test('bf16 head: bit-identical twice; odd d falls back to fp32 logits and still matches the CPU', { skip }, () => {
  const a = runHead(7, 45, 32, 2053, 16), b = runHead(7, 45, 32, 2053, 16);
  assert.equal(a.loss.gpu, b.loss.gpu);
  for (const k of ['dh', 'dw', 'logits'] as const) assert.deepEqual(a[k].gpu, b[k].gpu, `${k} differs between runs`);
  // d = 33: the packed bf16 operands have an odd row stride, which the bf16 GEMMs do not take.
  const odd = runHead(8, 20, 33, 300, 8);
  assert.ok(!odd.logits.gpu.every(isBf16), 'odd d: the fp32 path');
  assert.ok(Math.abs(odd.loss.gpu - odd.loss.cpu) / odd.loss.cpu < 2e-3);
  for (const k of ['logits', 'dh', 'dw'] as const) assert.ok(relErr(odd[k].gpu, odd[k].cpu) < 2e-2, `odd d: ${k} ${relErr(odd[k].gpu, odd[k].cpu)}`);
});

test('bf16 head, tied weights: dW accumulates onto the embedding gradient of the same matrix', { skip }, () => {
  const r = rng(21);
  const n = 40, d = 16, V = 203;
  const ids = pair(randInts(r, n, V)), dout = pair(randF32(r, n * d));
  const table = pair(randF32(r, V * d, 0.5)), grad = zerosPair(V * d);
  const h = pair(randF32(r, n * d, 2)), t = pair(randInts(r, n, V));
  const loss = pair(Float64Array.of(0)), dh = zerosPair(n * d);
  withChunk(16, () =>
    withPrecision('bf16', () =>
      both((be, s) => {
        const g = s === 'cpu' ? 'cpu' : 'gpu';
        be.embeddingBackward(at(grad[g]), at(ids[g]), at(dout[g]), n, d);
        be.headCrossEntropy({
          lossOut: at(loss[g]), h: at(h[g]), w: at(table[g]), targets: at(t[g]), n, d, vocab: V, gradScale: 1 / n,
          dh: at(dh[g]), dw: at(grad[g]), logitsOut: null,
        });
      }),
    ),
  );
  assert.ok(errOf(grad) < 2e-2, `tied gradient: ${errOf(grad)}`);
  assert.ok(errOf(dh) < 2e-2, `dh: ${errOf(dh)}`);
  freePairs(ids, dout, table, grad, h, t, loss, dh);
});

/** headLogprob in bf16 beside headCrossEntropy's bf16 logits of the same h and W. */
function logprobCase(seed: number, n: number, d: number, V: number, prep: (h: Float32Array, w: Float32Array) => void) {
  const r = rng(seed);
  const hv = randF32(r, n * d, 2), wv = randF32(r, V * d, 0.5);
  prep(hv, wv);
  const tv = randInts(r, n, V);
  tv[1] = -100;
  const P: Record<string, Pair> = {
    h: pair(hv), w: pair(wv), t: pair(tv), lp: zerosPair(n, 'f64'), am: zerosPair(n, 'i32'),
    logits: zerosPair(n * V), loss: pair(Float64Array.of(0)),
  };
  withChunk(8, () =>
    withPrecision('bf16', () =>
      both((be, s) => {
        const g = s === 'cpu' ? 'cpu' : 'gpu';
        be.headLogprob({ logprobOut: at(P.lp![g]), argmaxOut: at(P.am![g]), h: at(P.h![g]), w: at(P.w![g]), targets: at(P.t![g]), n, d, vocab: V });
        be.headCrossEntropy({
          lossOut: at(P.loss![g]), h: at(P.h![g]), w: at(P.w![g]), targets: at(P.t![g]), n, d, vocab: V, gradScale: 1,
          dh: null, dw: null, logitsOut: at(P.logits![g]),
        });
      }),
    ),
  );
  const out = { lp: readBoth(P.lp!), am: readBoth(P.am!), logits: readBoth(P.logits!).gpu, t: tv };
  freePairs(...Object.values(P));
  return out;
}

test('bf16 headLogprob: one pass gives log-probabilities and the first-index argmax of the bf16 logits; ties', { skip }, () => {
  const n = 30, d = 32, V = 389;
  const c = logprobCase(41, n, d, V, (h, w) => {
    // Rows 3, 10 and 300 of W are equal: wherever they hold the maximum, the first (3) wins. Row 0 of h is pushed
    // towards them so that it happens; row 2 of h is zero (every logit 0: argmax 0).
    for (const j of [10, 300]) w.copyWithin(j * d, 3 * d, 4 * d);
    for (let k = 0; k < d; k++) h[k] = 8 * w[3 * d + k]!;
    h.fill(0, 2 * d, 3 * d);
  });
  for (let i = 0; i < n; i++) {
    if (c.t[i] === -100) {
      assert.equal(c.am.gpu[i], -1);
      assert.equal(c.lp.gpu[i], 0);
      continue;
    }
    const row = c.logits.subarray(i * V, (i + 1) * V);
    let best = 0;
    for (let j = 1; j < V; j++) if (row[j]! > row[best]!) best = j;
    assert.equal(c.am.gpu[i], best, `row ${i}: argmax of the bf16 logits`);
    let mx = -Infinity, sum = 0;
    for (const x of row) mx = Math.max(mx, x);
    for (const x of row) sum += Math.exp(x - mx);
    const want = row[c.t[i]!]! - mx - Math.log(sum);
    assert.ok(Math.abs(c.lp.gpu[i]! - want) < 1e-5 * Math.max(1, Math.abs(want)), `row ${i}: ${c.lp.gpu[i]} vs ${want}`);
    // The CPU's fp32 log-probability, within the bf16 rounding of the logits (about 3 digits of a logit).
    assert.ok(Math.abs(c.lp.gpu[i]! - c.lp.cpu[i]!) < 5e-2 * Math.max(1, Math.abs(c.lp.cpu[i]!)), `row ${i} vs CPU`);
  }
  assert.equal(c.am.gpu[0], 3, 'tied maximum: the first index');
  assert.equal(c.am.cpu[0], 3);
  assert.equal(c.am.gpu[2], 0, 'all-equal row: index 0');
});

test('bf16 head: a target outside the vocabulary is reported, not read', { skip }, () => {
  const g = cuda!;
  const n = 4, d = 8, V = 50;
  const h = g.alloc('f32', n * d), w = g.alloc('f32', V * d), t = g.alloc('i32', n), loss = g.alloc('f64', 1);
  g.upload(at(h), new Float32Array(n * d).fill(0.5));
  g.upload(at(w), new Float32Array(V * d).fill(0.25));
  g.upload(at(t), Int32Array.of(1, 2, V, 3));
  g.upload(at(loss), Float64Array.of(0));
  withPrecision('bf16', () => {
    g.headCrossEntropy({ lossOut: at(loss), h: at(h), w: at(w), targets: at(t), n, d, vocab: V, gradScale: 1, dh: null, dw: null, logitsOut: null });
    assert.throws(() => g.download(at(loss), new Float64Array(1)), /outside the vocabulary/);
  });
  for (const b of [h, w, t, loss]) g.free(b);
});

test('bf16 mode keeps fp32 logits unless LMFORGE_CUDA_HEAD=bf16; an unknown value is an error naming the choices', { skip }, () => {
  const withHead = <T>(v: string | undefined, fn: () => T): T => {
    const prev = process.env.LMFORGE_CUDA_HEAD;
    if (v === undefined) delete process.env.LMFORGE_CUDA_HEAD;
    else process.env.LMFORGE_CUDA_HEAD = v;
    try {
      return fn();
    } finally {
      if (prev === undefined) delete process.env.LMFORGE_CUDA_HEAD;
      else process.env.LMFORGE_CUDA_HEAD = prev;
    }
  };
  const chosen = withHead('bf16', () => runHead(11, 30, 32, 300, null));
  assert.ok(chosen.logits.gpu.every(isBf16), 'LMFORGE_CUDA_HEAD=bf16: a bf16 chunk');
  for (const v of [undefined, 'fp32']) {
    const dflt = withHead(v, () => runHead(11, 30, 32, 300, null));
    assert.ok(!dflt.logits.gpu.every(isBf16), `LMFORGE_CUDA_HEAD=${v}: an fp32 chunk`);
    assert.ok(Math.abs(dflt.loss.gpu - dflt.loss.cpu) / dflt.loss.cpu < 1e-3);
    for (const k of ['logits', 'dh', 'dw'] as const) assert.ok(relErr(dflt[k].gpu, dflt[k].cpu) < 2e-2, `${v}: ${k}`);
  }
  assert.throws(() => withHead('fp16', () => runHead(11, 30, 32, 300, null)), /LMFORGE_CUDA_HEAD='fp16' is not a head precision: use fp32 \(default\) or bf16/);
});
