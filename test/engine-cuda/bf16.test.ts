/**
 * bf16 activations (issue 10 item 1): the conversions (upload, download, copy, fill) on both engines against a
 * plain reference, every op of the CUDA engine with bf16 activations against the CPU engine on the same (bf16-valued)
 * inputs, and the CPU engine's refusal to compute on bf16. Tolerances: one bf16 rounding of an output is 2^-9
 * relative at most (~2e-3 in L2 over many elements); ops whose inputs are bf16-rounded on the GPU side only where
 * the CPU reads the same rounded values, so the errors below are the output rounding plus fp32 noise.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { at, type Backend, type DeviceBuffer, type Ptr } from '../../src/engine/backend.js';
import { CpuBackend } from '../../src/engine/cpu.js';
import { bf16Reference } from './bf16-reference.js';
import { both, cpu, cuda, errOf, freePairs, pair, randF32, randInts, readBoth, rng, skipReason, withPrecision, zerosPair, type Pair } from './harness.js';

const skip = skipReason;
/** One bf16 rounding of every output element plus fp32 noise (relative L2). */
const OUT_TOL = 4e-3;
/** GEMMs and reductions over bf16 operands (the GPU rounds f32 operands too; the CPU does not). */
const GEMM_TOL = 1.2e-2;

function roundAll(v: Float32Array): Float32Array {
  return Float32Array.from(v, bf16Reference);
}

/** The same values on both sides: bf16 on the GPU, their exact f32 values on the CPU. */
function actPair(data: Float32Array): Pair {
  const g = cuda!.alloc('bf16', data.length);
  cuda!.upload(at(g), data);
  const c = cpu.alloc('f32', data.length);
  cpu.upload(at(c), roundAll(data));
  return { cpu: c, gpu: g, length: data.length };
}

function actZeros(n: number): Pair {
  return { cpu: cpu.alloc('f32', n), gpu: cuda!.alloc('bf16', n), length: n };
}

function side(p: Pair, s: 'cpu' | 'gpu'): Ptr {
  return at(s === 'cpu' ? p.cpu : p.gpu);
}

/** Inputs that stress rounding: ties at several exponents, values next to ties, specials, overflow, subnormals. */
function conversionCases(): Float32Array {
  const v: number[] = [0, -0, 1, -1, Infinity, -Infinity, NaN, 3.4028234663852886e38, -3.4e38, 1e-40, -1e-42, 1.1754944e-38];
  const toFloat = (b: number) => new Float32Array(new Uint32Array([b >>> 0]).buffer)[0]!;
  for (const e of [0x3f800000, 0x40000000, 0x3e000000, 0x7e000000, 0x00800000, 0xbf800000]) {
    for (const m of [0x8000, 0x18000, 0x7fff, 0x8001, 0x17fff, 0x18001, 0xffff, 0x10000]) v.push(toFloat(e + m));
  }
  const r = rng(41);
  for (let i = 0; i < 500; i++) v.push((r() * 2 - 1) * Math.pow(2, Math.floor(r() * 60) - 30));
  return Float32Array.from(v);
}

function sameBits(a: Float32Array, b: Float32Array, what: string): void {
  assert.equal(a.length, b.length);
  for (let i = 0; i < a.length; i++) {
    if (Number.isNaN(b[i]!)) assert.ok(Number.isNaN(a[i]!), `${what}[${i}]: ${a[i]} is not NaN`);
    else assert.ok(Object.is(a[i], b[i]), `${what}[${i}]: ${a[i]} != ${b[i]} (from ${conversionCases()[i]})`);
  }
}

const engines = (): [string, Backend][] => [['cpu', new CpuBackend()], ...(cuda ? [['cuda', cuda] as [string, Backend]] : [])];

test('bf16 conversions: upload/download, copy f32<->bf16 and fill round to nearest even, keep NaN/Inf/-0', () => {
  const x = conversionCases();
  const want = roundAll(x);
  for (const [name, be] of engines()) {
    const b = be.alloc('bf16', x.length);
    const f = be.alloc('f32', x.length);
    be.upload(at(b), x);
    const back = new Float32Array(x.length);
    be.download(at(b), back);
    sameBits(back, want, `${name} upload/download`);
    // copy: f32 -> bf16 rounds, bf16 -> f32 is exact.
    be.upload(at(f), x);
    be.fill(at(b), x.length, 7);
    be.copy(at(b), at(f), x.length);
    be.download(at(b), back);
    sameBits(back, want, `${name} copy f32->bf16`);
    be.fill(at(f), x.length, 0);
    be.copy(at(f, 3), at(b, 3), x.length - 3);
    be.download(at(f), back);
    sameBits(back.subarray(3), want.subarray(3), `${name} copy bf16->f32`);
    assert.equal(back[0], 0, 'copy wrote outside its range');
    be.fill(at(b, 2), 5, 1.00390625 /* 1 + 2^-8: a tie, rounds to even (1) */);
    be.download(at(b), back);
    assert.deepEqual(Array.from(back.subarray(2, 7)), [1, 1, 1, 1, 1], `${name} fill`);
    assert.throws(() => be.upload(at(b), new Float64Array(4)), /bf16 buffer is transferred as a Float32Array/);
    assert.throws(() => be.copy(at(b), at(be.alloc('i32', 4)), 4), /copy needs equal dtypes, or f32 and bf16/);
    be.free(b);
    be.free(f);
  }
});

test('the CPU engine stores bf16 but refuses to compute on it, naming the argument', () => {
  const be = new CpuBackend();
  const x = be.alloc('bf16', 8), y = be.alloc('f32', 8);
  assert.throws(() => be.swigluForward(at(y), at(x), 2, 2), /swigluForward: gu is a bf16 buffer, but this engine computes in f32 only/);
  assert.throws(() => be.matmul(at(y), at(y), at(x), 2, 2, 2), /matmul: B is a bf16 buffer/);
  be.free(x);
  be.free(y);
});

test('bf16 matmul: bf16 and f32 operands mixed, bf16 or f32 C, bias, accumulate, odd leading dims (fp32 fallback)', { skip }, () => {
  const r = rng(42);
  for (const [m, n, k] of [[1, 1, 1], [7, 5, 3], [64, 96, 128], [33, 18, 40]] as const) {
    for (const [aB, bB, cB] of [[true, true, true], [true, false, false], [false, true, true], [true, true, false]] as const) {
      for (const transB of [false, true]) {
        for (const pad of [0, 1]) {
          const lda = k + pad, ldb = (transB ? k : n) + pad, ldc = n + pad;
          const A = (aB ? actPair : pair)(randF32(r, m * lda));
          const Braw = randF32(r, (transB ? n : k) * ldb);
          const B = bB ? actPair(Braw) : pair(Braw);
          const C = cB ? actPair(randF32(r, m * ldc)) : pair(randF32(r, m * ldc));
          const bias = pair(randF32(r, n));
          const what = `${m}x${n}x${k} A=${aB ? 'bf16' : 'f32'} B=${bB ? 'bf16' : 'f32'} C=${cB ? 'bf16' : 'f32'} tB=${transB} pad=${pad}`;
          withPrecision('bf16', () =>
            both((be, s) => be.matmul(side(C, s), side(A, s), side(B, s), m, n, k, { transB, lda, ldb, ldc, accumulate: true })),
          );
          assert.ok(errOf(C) < GEMM_TOL, `${what} accumulate: ${errOf(C)}`);
          withPrecision('fp32', () =>
            both((be, s) => be.matmul(side(C, s), side(A, s), side(B, s), m, n, k, { transB, lda, ldb, ldc, bias: side(bias, s) })),
          );
          assert.ok(errOf(C) < GEMM_TOL, `${what} bias (fp32 mode): ${errOf(C)}`);
          freePairs(A, B, C, bias);
        }
      }
    }
  }
});

test('bf16 biasGrad, norms (bf16 out / dout), SwiGLU and activations against the CPU engine', { skip }, () => {
  const r = rng(43);
  const rows = 37, cols = 70;
  const dy = actPair(randF32(r, rows * (cols + 3)));
  const db = pair(randF32(r, cols));
  both((be, s) => be.biasGrad(side(db, s), side(dy, s), rows, cols, cols + 3));
  assert.ok(errOf(db) < 1e-5, `biasGrad ${errOf(db)}`);
  freePairs(dy, db);
  for (const d of [1, 96, 257]) {
    const x = pair(randF32(r, rows * d, 2)), w = pair(randF32(r, d)), b = pair(randF32(r, d));
    const out = actZeros(rows * d), dout = actPair(randF32(r, rows * d));
    const rstd = zerosPair(rows), mean = zerosPair(rows), dx = pair(randF32(r, rows * d)), dw = pair(randF32(r, d)), dbn = pair(randF32(r, d));
    both((be, s) => {
      be.rmsnormForward(side(out, s), side(rstd, s), side(x, s), side(w, s), rows, d, 1e-6);
      be.rmsnormBackward(side(dx, s), side(dw, s), side(dout, s), side(x, s), side(w, s), side(rstd, s), rows, d, true);
    });
    for (const [name, p] of [['rms out', out], ['rms dx', dx], ['rms dw', dw]] as const) assert.ok(errOf(p) < OUT_TOL, `${name} d=${d}: ${errOf(p)}`);
    both((be, s) => {
      be.layernormForward(side(out, s), side(mean, s), side(rstd, s), side(x, s), side(w, s), side(b, s), rows, d, 1e-5);
      be.layernormBackward(side(dx, s), side(dw, s), side(dbn, s), side(dout, s), side(x, s), side(w, s), side(mean, s), side(rstd, s), rows, d, false);
    });
    // One column: x - mean is 0, so the output, dx and dw are rounding noise around 0 (ops.test.ts checks them).
    const lnChecked = d === 1 ? [['ln db', dbn]] as const : [['ln out', out], ['ln dx', dx], ['ln dw', dw], ['ln db', dbn]] as const;
    for (const [name, p] of lnChecked) assert.ok(errOf(p) < OUT_TOL, `${name} d=${d}: ${errOf(p)}`);
    freePairs(x, w, b, out, dout, rstd, mean, dx, dw, dbn);
  }
  const f = 83;
  const gu = actPair(randF32(r, rows * 2 * f, 3)), o = actZeros(rows * f), go = actPair(randF32(r, rows * f)), dgu = actZeros(rows * 2 * f);
  both((be, s) => {
    be.swigluForward(side(o, s), side(gu, s), rows, f);
    be.swigluBackward(side(dgu, s), side(go, s), side(gu, s), rows, f);
  });
  assert.ok(errOf(o) < OUT_TOL, `swiglu out ${errOf(o)}`);
  assert.ok(errOf(dgu) < OUT_TOL, `swiglu dgu ${errOf(dgu)}`);
  for (const kind of ['gelu', 'gelu_tanh', 'silu'] as const) {
    const n = rows * f;
    both((be, s) => {
      be.activationForward(side(o, s), side(gu, s), n, kind);
      be.activationBackward(side(dgu, s), side(go, s), side(gu, s), n, kind);
    });
    assert.ok(errOf(o) < OUT_TOL, `${kind} out ${errOf(o)}`);
    assert.ok(errOf(dgu) < OUT_TOL, `${kind} dx ${errOf(dgu)}`);
  }
  freePairs(gu, o, go, dgu);
});

test('bf16 qkPrep and attention (classic head_dim 24, tensor-core head_dim 64), GQA, against the CPU engine', { skip }, () => {
  const r = rng(44);
  for (const hd of [24, 64]) {
    const batch = 2, seq = 21, heads = 4, kvHeads = 2, half = hd / 2;
    const n = batch * seq, nh = heads + kvHeads, width = (heads + 2 * kvHeads) * hd;
    const cosT = new Float32Array(seq * half), sinT = new Float32Array(seq * half);
    for (let p = 0; p < seq; p++)
      for (let i = 0; i < half; i++) {
        cosT[p * half + i] = Math.cos(p / Math.pow(10000, (2 * i) / hd));
        sinT[p * half + i] = Math.sin(p / Math.pow(10000, (2 * i) / hd));
      }
    const qkv = actPair(randF32(r, n * width, 2)), qw = pair(randF32(r, hd)), kw = pair(randF32(r, hd));
    const cs = pair(cosT), sn = pair(sinT);
    const qk = actZeros(n * nh * hd), rstd = zerosPair(n * nh), dqk = actPair(randF32(r, n * nh * hd));
    const dqkv = actPair(randF32(r, n * width)), dqw = pair(randF32(r, hd)), dkw = pair(randF32(r, hd));
    both((be, s) => {
      be.qkPrepForward(side(qk, s), side(rstd, s), side(qkv, s), width, side(qw, s), side(kw, s), side(cs, s), side(sn, s), n, seq, heads, kvHeads, hd, 1e-6);
      be.qkPrepBackward(side(dqkv, s), width, side(dqw, s), side(dkw, s), side(dqk, s), side(qkv, s), side(rstd, s), side(qw, s), side(kw, s), side(cs, s), side(sn, s), n, seq, heads, kvHeads, hd);
    });
    for (const [name, p] of [['qk', qk], ['dqkv', dqkv], ['dqw', dqw], ['dkw', dkw]] as const) assert.ok(errOf(p) < OUT_TOL, `qkPrep hd=${hd} ${name}: ${errOf(p)}`);
    // Attention over q|k from qk (stride (H+K) hd) and v from qkv: the model's layout.
    const shape = { batch, seq, heads, kvHeads, headDim: hd, scale: 1 / Math.sqrt(hd) };
    const strides = { q: nh * hd, k: nh * hd, v: width };
    const out = actZeros(n * heads * hd), lse = zerosPair(batch * heads * seq), dout = actPair(randF32(r, n * heads * hd));
    const dq = actZeros(n * nh * hd);
    const P = (p: Pair, s: 'cpu' | 'gpu', off: number) => at(s === 'cpu' ? p.cpu : p.gpu, off);
    withPrecision('bf16', () => {
      both((be, s) => {
        const [q, k, v] = [P(qk, s, 0), P(qk, s, heads * hd), P(qkv, s, (heads + kvHeads) * hd)];
        be.attentionForward(side(out, s), side(lse, s), q, k, v, strides, shape);
        be.attentionBackward(P(dq, s, 0), P(dq, s, heads * hd), P(dqkv, s, (heads + kvHeads) * hd), side(dout, s), q, k, v, side(out, s), side(lse, s), strides, shape);
      });
    });
    // The tensor-core kernel rounds P to bf16 inside (docs/cuda.md): its errors are those of flash-attention.test.ts.
    const tol = hd === 64 ? 1e-2 : OUT_TOL;
    for (const [name, p] of [['out', out], ['lse', lse], ['dq|dk', dq], ['dv', dqkv]] as const) assert.ok(errOf(p) < tol, `attention hd=${hd} ${name}: ${errOf(p)}`);
    freePairs(qkv, qw, kw, cs, sn, qk, rstd, dqk, dqkv, dqw, dkw, out, lse, dout, dq);
  }
});

test('bf16 head input: headCrossEntropy and headLogprob read a bf16 h', { skip }, () => {
  const r = rng(45);
  const n = 19, d = 32, vocab = 77;
  const h = actPair(randF32(r, n * d)), w = pair(randF32(r, vocab * d, 0.3));
  const targets = pair(randInts(r, n, vocab));
  const loss = pair(new Float64Array(1)), dh = pair(new Float32Array(n * d)), dw = pair(new Float32Array(vocab * d));
  withPrecision('bf16', () =>
    both((be, s) => be.headCrossEntropy({
      lossOut: side(loss, s), h: side(h, s), w: side(w, s), targets: side(targets, s), n, d, vocab, gradScale: 1 / n,
      dh: side(dh, s), dw: side(dw, s), logitsOut: null,
    })),
  );
  for (const [name, p] of [['loss', loss], ['dh', dh], ['dw', dw]] as const) assert.ok(errOf(p) < GEMM_TOL, `${name}: ${errOf(p)}`);
  const lp = pair(new Float64Array(n)), am = pair(new Int32Array(n));
  withPrecision('bf16', () =>
    both((be, s) => be.headLogprob({ logprobOut: side(lp, s), argmaxOut: side(am, s), h: side(h, s), w: side(w, s), targets: side(targets, s), n, d, vocab })),
  );
  assert.ok(errOf(lp) < GEMM_TOL, `logprob ${errOf(lp)}`);
  freePairs(h, w, targets, loss, dh, dw, lp, am);
});

test('AdamW writes the bf16 weight copy in its pass: equal to the cast of the new weights, bit for bit', () => {
  for (const [name, be] of engines()) {
    const r = rng(46);
    const N = 1000;
    const bufs = ['p', 'g', 'm', 'v'].map(() => be.alloc('f32', N)) as [DeviceBuffer, DeviceBuffer, DeviceBuffer, DeviceBuffer];
    for (const b of bufs) be.upload(at(b), randF32(r, N));
    const copy = be.alloc('bf16', N);
    for (let step = 1; step <= 3; step++)
      be.adamw(at(bufs[0]), at(bufs[1]), at(bufs[2]), at(bufs[3]), N, { lr: 1e-2, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1, step, gradScale: 1 }, at(copy));
    const p = new Float32Array(N), c = new Float32Array(N);
    be.download(at(bufs[0]), p);
    be.download(at(copy), c);
    const want = roundAll(p);
    const bad = c.findIndex((v, i) => !Object.is(v, want[i]));
    assert.equal(bad, -1, `${name}: copy[${bad}] = ${c[bad]}, but the weight ${p[bad]} rounds to ${want[bad]}`);
    for (const b of [...bufs, copy]) be.free(b);
  }
});

test('readBoth reads bf16 buffers (harness check)', { skip }, () => {
  const p = actPair(Float32Array.from([1, 2.5, -3]));
  assert.deepEqual(Array.from(readBoth(p).gpu), [1, 2.5, -3]);
  freePairs(p);
});

test('bf16 tensor-core attention reads aligned rows in place and stages unaligned ones: both match the CPU', { skip }, () => {
  const r = rng(47);
  const batch = 2, seq = 19, heads = 2, kvHeads = 1, hd = 64;
  const n = batch * seq, shape = { batch, seq, heads, kvHeads, headDim: hd, scale: 0.125 };
  for (const pad of [0, 4]) {
    // q|k|v in one buffer: pad 4 makes the row stride an odd multiple of 8 bytes (not 16-byte aligned).
    const width = (heads + 2 * kvHeads) * hd + pad;
    const strides = { q: width, k: width, v: width };
    const qkv = actPair(randF32(r, n * width, 2)), out = actZeros(n * heads * hd), lse = zerosPair(batch * heads * seq);
    const dout = actPair(randF32(r, n * heads * hd)), dqkv = actZeros(n * width);
    const P = (p: Pair, s: 'cpu' | 'gpu', off: number) => at(s === 'cpu' ? p.cpu : p.gpu, off);
    withPrecision('bf16', () =>
      both((be, s) => {
        const [q, k, v] = [P(qkv, s, 0), P(qkv, s, heads * hd), P(qkv, s, (heads + kvHeads) * hd)];
        be.attentionForward(side(out, s), side(lse, s), q, k, v, strides, shape);
        be.attentionBackward(P(dqkv, s, 0), P(dqkv, s, heads * hd), P(dqkv, s, (heads + kvHeads) * hd), side(dout, s), q, k, v,
          side(out, s), side(lse, s), strides, shape);
      }),
    );
    for (const [name, p] of [['out', out], ['lse', lse], ['dqkv', dqkv]] as const) assert.ok(errOf(p) < 1e-2, `pad ${pad} ${name}: ${errOf(p)}`);
    freePairs(qkv, out, lse, dout, dqkv);
  }
});
