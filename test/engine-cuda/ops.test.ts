/**
 * Every CUDA op against the CPU backend on random shapes (including sizes that are not multiples of the
 * kernels' tiles). Runs only where a CUDA device and the built engine exist; skips with the reason elsewhere.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { at } from '../../src/engine/backend.js';
import {
  both, BF16_TOL, cuda, errOf, FP32_TOL, freePairs, pair, randF32, randInts, readBoth, rng, skipReason,
  withPrecision, zerosPair,
} from './harness.js';

const skip = skipReason;

test('memory: fill, copy (overlapping too), add, scale, f64 and i32 round trips', { skip }, () => {
  const r = rng(1);
  const x = pair(randF32(r, 1001));
  const y = pair(randF32(r, 1001));
  const o = zerosPair(1001);
  both((be, s) => {
    const P = s === 'cpu' ? { x: x.cpu, y: y.cpu, o: o.cpu } : { x: x.gpu, y: y.gpu, o: o.gpu };
    be.add(at(P.o), at(P.x), at(P.y), 1001);
    be.scale(at(P.o, 3), 500, -1.5);
    be.copy(at(P.o, 10), at(P.o, 0), 600); // overlapping: memmove semantics
    be.fill(at(P.x, 7), 33, 2.25);
  });
  assert.equal(errOf(o), 0);
  assert.equal(errOf(x), 0);
  const d = pair(Float64Array.from([1.5, -2, 1e300]));
  const i = pair(Int32Array.from([-7, 0, 2147483647]));
  both((be, s) => be.fill(at(s === 'cpu' ? i.cpu : i.gpu, 1), 1, 42));
  assert.equal(errOf(d), 0);
  assert.deepEqual(Array.from(readBoth(i).gpu), [-7, 42, 2147483647]);
  freePairs(x, y, o, d, i);
});

test('matmul: all transpose combinations, padded leading dimensions, accumulate, bias; fp32 and bf16', { skip }, () => {
  const r = rng(2);
  for (const precision of ['fp32', 'bf16'] as const) {
    for (const [m, n, k] of [[1, 1, 1], [7, 5, 3], [64, 96, 128], [130, 67, 257]] as const) {
      for (const transA of [false, true]) {
        for (const transB of [false, true]) {
          const lda = (transA ? m : k) + 3;
          const ldb = (transB ? k : n) + 1;
          const ldc = n + 2;
          const A = pair(randF32(r, (transA ? k : m) * lda));
          const B = pair(randF32(r, (transB ? n : k) * ldb));
          const C = pair(randF32(r, m * ldc));
          const bias = pair(randF32(r, n));
          const tol = precision === 'bf16' ? BF16_TOL : FP32_TOL;
          const what = `${precision} ${m}x${n}x${k} tA=${transA} tB=${transB}`;
          // C += A B on top of random C: compared before anything overwrites it.
          withPrecision(precision, () =>
            both((be, s) => {
              const g = s === 'cpu' ? 'cpu' : 'gpu';
              be.matmul(at(C[g]), at(A[g]), at(B[g]), m, n, k, { transA, transB, lda, ldb, ldc, accumulate: true });
            }),
          );
          const eAcc = errOf(C);
          assert.ok(eAcc < tol, `${what} accumulate: ${eAcc}`);
          // C = A B + bias, overwriting.
          withPrecision(precision, () =>
            both((be, s) => {
              const g = s === 'cpu' ? 'cpu' : 'gpu';
              be.matmul(at(C[g], 0), at(A[g]), at(B[g]), m, n, k, { transA, transB, lda, ldb, ldc, bias: at(bias[g]) });
            }),
          );
          const e = errOf(C);
          assert.ok(e < tol, `${what} bias: ${e}`);
          freePairs(A, B, C, bias);
        }
      }
    }
  }
});

test('biasGrad: column sums with a row stride', { skip }, () => {
  const r = rng(3);
  const dy = pair(randF32(r, 300 * 70));
  const db = pair(randF32(r, 65));
  both((be, s) => be.biasGrad(at(s === 'cpu' ? db.cpu : db.gpu), at(s === 'cpu' ? dy.cpu : dy.gpu), 300, 65, 70));
  assert.ok(errOf(db) < FP32_TOL);
  freePairs(dy, db);
});

test('embedding forward (set and accumulate) and backward with repeated ids, deterministic', { skip }, () => {
  const r = rng(4);
  const V = 50, d = 37, n = 300;
  const table = pair(randF32(r, V * d));
  const ids = pair(randInts(r, n, V));
  const out = pair(randF32(r, n * d));
  const dout = pair(randF32(r, n * d));
  const dtable = pair(randF32(r, V * d));
  both((be, s) => {
    const g = s === 'cpu' ? 'cpu' : 'gpu';
    be.embeddingForward(at(out[g]), at(ids[g]), at(table[g]), n, d, true);
    be.embeddingBackward(at(dtable[g]), at(ids[g]), at(dout[g]), n, d);
  });
  assert.ok(errOf(out) < FP32_TOL);
  assert.ok(errOf(dtable) < FP32_TOL);
  // Same inputs into two fresh buffers: bit-identical on the GPU (no atomics-order dependence).
  const g = cuda!;
  const runs = [0, 1].map(() => {
    const b = g.alloc('f32', V * d);
    g.embeddingBackward(at(b), at(ids.gpu), at(dout.gpu), n, d);
    const o = new Float32Array(V * d);
    g.download(at(b), o);
    g.free(b);
    return o;
  });
  assert.deepEqual(runs[0], runs[1]);
  freePairs(table, ids, out, dout, dtable);
});

test('embedding: an id outside the table is reported at the next download', { skip }, () => {
  const g = cuda!;
  const table = g.alloc('f32', 4 * 3);
  const ids = g.alloc('i32', 2);
  g.upload(at(ids), Int32Array.from([1, 9]));
  const out = g.alloc('f32', 6);
  g.embeddingForward(at(out), at(ids), at(table), 2, 3, false);
  assert.throws(() => g.download(at(out), new Float32Array(6)), /outside the table/);
  g.download(at(out), new Float32Array(6)); // the flag was cleared
  for (const b of [table, ids, out]) g.free(b);
});

test('rmsnorm and layernorm forward/backward (accumulating dx), odd widths', { skip }, () => {
  const r = rng(5);
  for (const [rows, d] of [[1, 1], [33, 257], [300, 1024]] as const) {
    const x = pair(randF32(r, rows * d, 2));
    const w = pair(randF32(r, d));
    const b = pair(randF32(r, d));
    const out = zerosPair(rows * d), mean = zerosPair(rows), rstd = zerosPair(rows);
    const dout = pair(randF32(r, rows * d));
    const dx = pair(randF32(r, rows * d));
    const dw = pair(randF32(r, d)), db = pair(randF32(r, d));
    both((be, s) => {
      const g = s === 'cpu' ? 'cpu' : 'gpu';
      be.rmsnormForward(at(out[g]), at(rstd[g]), at(x[g]), at(w[g]), rows, d, 1e-6);
      be.rmsnormBackward(at(dx[g]), at(dw[g]), at(dout[g]), at(x[g]), at(w[g]), at(rstd[g]), rows, d, true);
    });
    for (const [name, p] of [['rms out', out], ['rstd', rstd], ['rms dx', dx], ['rms dw', dw]] as const)
      assert.ok(errOf(p) < FP32_TOL, `${name} ${rows}x${d}: ${errOf(p)}`);
    both((be, s) => {
      const g = s === 'cpu' ? 'cpu' : 'gpu';
      be.layernormForward(at(out[g]), at(mean[g]), at(rstd[g]), at(x[g]), at(w[g]), at(b[g]), rows, d, 1e-5);
      be.layernormBackward(at(dx[g]), at(dw[g]), at(db[g]), at(dout[g]), at(x[g]), at(w[g]), at(mean[g]), at(rstd[g]), rows, d, false);
    });
    for (const [name, p] of [['ln out', out], ['mean', mean], ['ln dw', dw], ['ln db', db]] as const)
      assert.ok(errOf(p) < FP32_TOL, `${name} ${rows}x${d}: ${errOf(p)}`);
    if (d === 1) {
      // One column: x - mean is 0, so dx is exactly 0 and a relative error only compares rounding noise.
      const r = readBoth(dx);
      for (const v of [...r.cpu, ...r.gpu]) assert.ok(Math.abs(v) < 1e-4, `ln dx ${rows}x${d}: ${v} is not ~0`);
    } else {
      assert.ok(errOf(dx) < FP32_TOL, `ln dx ${rows}x${d}: ${errOf(dx)}`);
    }
    freePairs(x, w, b, out, mean, rstd, dout, dx, dw, db);
  }
});

test('qkPrep forward/backward: QK-norm and RoPE, each alone and together, GQA, padded stride', { skip }, () => {
  const r = rng(6);
  const batch = 2, seq = 9, heads = 4, kvHeads = 2, hd = 16, stride = (heads + 2 * kvHeads) * hd + 5;
  const n = batch * seq, nh = heads + kvHeads;
  const half = hd / 2;
  const cosT = new Float32Array(seq * half), sinT = new Float32Array(seq * half);
  for (let p = 0; p < seq; p++)
    for (let i = 0; i < half; i++) {
      const a = p / Math.pow(10000, (2 * i) / hd);
      cosT[p * half + i] = Math.cos(a);
      sinT[p * half + i] = Math.sin(a);
    }
  for (const [norm, rope] of [[true, true], [true, false], [false, true]] as const) {
    const qkv = pair(randF32(r, n * stride, 2));
    const qw = pair(randF32(r, hd)), kw = pair(randF32(r, hd));
    const cs = pair(cosT), sn = pair(sinT);
    const out = zerosPair(n * nh * hd), rstd = zerosPair(n * nh);
    const dout = pair(randF32(r, n * nh * hd));
    const dqkv = pair(randF32(r, n * stride));
    const dqw = pair(randF32(r, hd)), dkw = pair(randF32(r, hd));
    both((be, s) => {
      const g = s === 'cpu' ? 'cpu' : 'gpu';
      const W = (p: typeof qw) => (norm ? at(p[g]) : null);
      const R = (p: typeof cs) => (rope ? at(p[g]) : null);
      be.qkPrepForward(at(out[g]), at(rstd[g]), at(qkv[g]), stride, W(qw), W(kw), R(cs), R(sn), n, seq, heads, kvHeads, hd, 1e-6);
      be.qkPrepBackward(at(dqkv[g]), stride, W(dqw), W(dkw), at(dout[g]), at(qkv[g]), at(rstd[g]), W(qw), W(kw), R(cs), R(sn), n, seq, heads, kvHeads, hd);
    });
    const tag = `norm=${norm} rope=${rope}`;
    assert.ok(errOf(out) < FP32_TOL, `${tag} out`);
    assert.ok(errOf(dqkv) < FP32_TOL, `${tag} dqkv (the v columns and padding must be untouched)`);
    if (norm) {
      assert.ok(errOf(rstd) < FP32_TOL, `${tag} rstd`);
      assert.ok(errOf(dqw) < FP32_TOL, `${tag} dqNormW`);
      assert.ok(errOf(dkw) < FP32_TOL, `${tag} dkNormW`);
    }
    freePairs(qkv, qw, kw, cs, sn, out, rstd, dout, dqkv, dqw, dkw);
  }
});

test('attention forward/backward: GQA groups, head dims 8..128, seq not a multiple of 32, fused strides', { skip }, () => {
  const r = rng(7);
  const cases = [
    [2, 1, 2, 1, 8], [2, 33, 4, 2, 32], [1, 70, 6, 3, 64], [2, 45, 4, 1, 80], [1, 100, 2, 2, 128], [3, 64, 8, 2, 128],
  ] as const;
  for (const [batch, seq, heads, kvHeads, hd] of cases) {
    const stride = (heads + 2 * kvHeads) * hd + 4;
    const n = batch * seq, od = heads * hd;
    const kOff = heads * hd, vOff = kOff + kvHeads * hd;
    const shape = { batch, seq, heads, kvHeads, headDim: hd, scale: 1 / Math.sqrt(hd) };
    const strides = { q: stride, k: stride, v: stride };
    const qkv = pair(randF32(r, n * stride, 2));
    const out = zerosPair(n * od), lse = zerosPair(batch * heads * seq);
    const dout = pair(randF32(r, n * od));
    const dqkv = pair(randF32(r, n * stride));
    both((be, s) => {
      const g = s === 'cpu' ? 'cpu' : 'gpu';
      be.attentionForward(at(out[g]), at(lse[g]), at(qkv[g], 0), at(qkv[g], kOff), at(qkv[g], vOff), strides, shape);
      be.attentionBackward(
        at(dqkv[g], 0), at(dqkv[g], kOff), at(dqkv[g], vOff), at(dout[g]), at(qkv[g], 0), at(qkv[g], kOff), at(qkv[g], vOff),
        at(out[g]), at(lse[g]), strides, shape,
      );
    });
    const tag = `B${batch} T${seq} H${heads}/${kvHeads} hd${hd}`;
    assert.ok(errOf(out) < FP32_TOL, `${tag} out ${errOf(out)}`);
    assert.ok(errOf(lse) < FP32_TOL, `${tag} lse ${errOf(lse)}`);
    assert.ok(errOf(dqkv) < 1e-4, `${tag} dqkv ${errOf(dqkv)}`);
    freePairs(qkv, out, lse, dout, dqkv);
  }
});

test('attentionDecode: new queries over a KV cache, against the CPU', { skip }, () => {
  const r = rng(8);
  for (const [n, past, heads, kvHeads, hd] of [[1, 0, 4, 2, 32], [1, 77, 4, 1, 64], [5, 40, 6, 3, 128]] as const) {
    const total = past + n;
    const sk = kvHeads * hd + 2;
    const q = pair(randF32(r, n * heads * hd));
    const k = pair(randF32(r, total * sk));
    const v = pair(randF32(r, total * sk));
    const out = zerosPair(n * heads * hd);
    both((be, s) => {
      const g = s === 'cpu' ? 'cpu' : 'gpu';
      be.attentionDecode(at(out[g]), at(q[g]), at(k[g]), at(v[g]), { q: heads * hd, k: sk, v: sk }, n, past, heads, kvHeads, hd, 1 / Math.sqrt(hd));
    });
    assert.ok(errOf(out) < FP32_TOL, `decode n=${n} past=${past}: ${errOf(out)}`);
    freePairs(q, k, v, out);
  }
});

test('swiglu and gelu/gelu_tanh/silu forward and backward', { skip }, () => {
  const r = rng(9);
  const rows = 37, f = 129;
  const gu = pair(randF32(r, rows * 2 * f, 4));
  const out = zerosPair(rows * f), dout = pair(randF32(r, rows * f)), dgu = zerosPair(rows * 2 * f);
  both((be, s) => {
    const g = s === 'cpu' ? 'cpu' : 'gpu';
    be.swigluForward(at(out[g]), at(gu[g]), rows, f);
    be.swigluBackward(at(dgu[g]), at(dout[g]), at(gu[g]), rows, f);
  });
  assert.ok(errOf(out) < FP32_TOL);
  assert.ok(errOf(dgu) < FP32_TOL);
  for (const kind of ['gelu', 'gelu_tanh', 'silu'] as const) {
    const x = pair(randF32(r, 999, 5)), y = zerosPair(999), dy = pair(randF32(r, 999)), dx = zerosPair(999);
    both((be, s) => {
      const g = s === 'cpu' ? 'cpu' : 'gpu';
      be.activationForward(at(y[g]), at(x[g]), 999, kind);
      be.activationBackward(at(dx[g]), at(dy[g]), at(x[g]), 999, kind);
    });
    assert.ok(errOf(y) < FP32_TOL, `${kind} forward`);
    assert.ok(errOf(dx) < FP32_TOL, `${kind} backward`);
    freePairs(x, y, dy, dx);
  }
  freePairs(gu, out, dout, dgu);
});

test('headCrossEntropy: loss, dh, dW (accumulating), logits, ignored rows, several chunks; fp32 and bf16', { skip }, () => {
  const r = rng(10);
  const n = 150, d = 64, V = 1000;
  const prev = process.env.LMFORGE_CE_CHUNK;
  process.env.LMFORGE_CE_CHUNK = '64'; // three chunks, the last one partial
  try {
    for (const precision of ['fp32', 'bf16'] as const) {
      const h = pair(randF32(r, n * d, 2));
      const w = pair(randF32(r, V * d, 0.5));
      const t = randInts(r, n, V);
      for (let i = 0; i < n; i += 7) t[i] = -100;
      const targets = pair(t);
      const loss = pair(Float64Array.of(0.25));
      const dh = zerosPair(n * d), dw = pair(randF32(r, V * d)), logits = zerosPair(n * V);
      withPrecision(precision, () =>
        both((be, s) => {
          const g = s === 'cpu' ? 'cpu' : 'gpu';
          be.headCrossEntropy({
            lossOut: at(loss[g]), h: at(h[g]), w: at(w[g]), targets: at(targets[g]), n, d, vocab: V,
            gradScale: 1 / 130, dh: at(dh[g]), dw: at(dw[g]), logitsOut: at(logits[g]),
          });
        }),
      );
      const tol = precision === 'bf16' ? BF16_TOL : FP32_TOL;
      const l = readBoth(loss);
      assert.ok(Math.abs(l.gpu[0]! - l.cpu[0]!) / Math.abs(l.cpu[0]!) < (precision === 'bf16' ? 1e-2 : 1e-6), `${precision} loss ${l.gpu[0]} vs ${l.cpu[0]}`);
      for (const [name, p] of [['logits', logits], ['dh', dh], ['dw', dw]] as const)
        assert.ok(errOf(p) < tol, `${precision} ${name}: ${errOf(p)}`);
      freePairs(h, w, targets, loss, dh, dw, logits);
    }
  } finally {
    if (prev === undefined) delete process.env.LMFORGE_CE_CHUNK;
    else process.env.LMFORGE_CE_CHUNK = prev;
  }
});

test('sumSquares (accumulating into f64) and AdamW with decay, clipping scale and bias correction', { skip }, () => {
  const r = rng(11);
  const n = 200_003;
  const x = pair(randF32(r, n));
  const acc = pair(Float64Array.of(3));
  both((be, s) => be.sumSquares(at(s === 'cpu' ? acc.cpu : acc.gpu), at(s === 'cpu' ? x.cpu : x.gpu), n));
  const a = readBoth(acc);
  assert.ok(Math.abs(a.gpu[0]! - a.cpu[0]!) / a.cpu[0]! < 1e-9);
  const p = pair(randF32(r, n)), g = pair(randF32(r, n)), m = pair(randF32(r, n, 0.1)), v = pair(randF32(r, n, 0.1));
  both((be, s) => {
    const k = s === 'cpu' ? 'cpu' : 'gpu';
    be.scale(at(v[k]), n, 0); // second moments must be non-negative
    for (let step = 1; step <= 3; step++)
      be.adamw(at(p[k]), at(g[k]), at(m[k]), at(v[k]), n, { lr: 1e-3, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1, step, gradScale: 0.7 });
  });
  for (const [name, q] of [['param', p], ['m', m], ['v', v]] as const) assert.ok(errOf(q) < 1e-6, `${name}: ${errOf(q)}`);
  freePairs(x, acc, p, g, m, v);
});

test('argument checks: bounds, dtypes and head_dim limits fail with the op name before any launch', { skip }, () => {
  const g = cuda!;
  const small = g.alloc('f32', 10);
  const ints = g.alloc('i32', 10);
  assert.throws(() => g.add(at(small), at(small), at(small), 11), /add: out needs elements \[0, 11\)/);
  assert.throws(() => g.scale(at(ints), 2, 1), /scale: x must be a f32 buffer but is i32/);
  const shape = { batch: 1, seq: 1, heads: 1, kvHeads: 1, headDim: 256, scale: 1 };
  const big = g.alloc('f32', 256);
  assert.throws(() => g.attentionForward(at(big), at(small), at(big), at(big), at(big), { q: 256, k: 256, v: 256 }, shape), /above 128/);
  g.free(small);
  assert.throws(() => g.fill(at(small), 1, 0), /already freed/);
  g.free(ints);
  g.free(big);
});
