/**
 * The fused kernels of issue 10 item 4 on the CUDA engine (interpret mode in CI) against the CPU engine: the
 * residual add fused with RMSNorm/LayerNorm, the QK-norm weight gradients reduced inside the qkPrep backward, and
 * the multi-tensor AdamW (bit-identical to per-range adamw calls on the same engine). Random shapes, fresh inputs
 * each run (the seed is in every message).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { at } from '../../src/engine/backend.js';
import { both, cuda, errOf, FP32_TOL, freePairs, pair, randF32, readBoth, rng, skipReason, zerosPair } from './harness.js';

const skip = skipReason;
const seed = Date.now() % 1_000_000;

test('addRmsnormForward / addLayernormForward: sum, out and statistics against the CPU engine, in place too', { skip }, () => {
  const r = rng(seed);
  const pick = (lo: number, hi: number): number => lo + Math.floor(r() * (hi - lo));
  for (const [rows, d] of [[1, pick(1, 40)], [pick(2, 30), pick(200, 700)], [pick(2, 5), 1024]] as const) {
    const what = `${rows}x${d} seed ${seed}`;
    const a = pair(randF32(r, rows * d, 2)), b = pair(randF32(r, rows * d, 0.5));
    const w = pair(randF32(r, d)), bias = pair(randF32(r, d));
    const sum = zerosPair(rows * d), out = zerosPair(rows * d), mean = zerosPair(rows), rstd = zerosPair(rows);
    both((be, s) => {
      const g = s === 'cpu' ? 'cpu' : 'gpu';
      be.addRmsnormForward(at(sum[g]), at(out[g]), at(rstd[g]), at(a[g]), at(b[g]), at(w[g]), rows, d, 1e-6);
    });
    assert.equal(errOf(sum), 0, `rms sum ${what}`);
    for (const [name, p] of [['rms out', out], ['rstd', rstd]] as const) assert.ok(errOf(p) < FP32_TOL, `${name} ${what}: ${errOf(p)}`);
    both((be, s) => {
      const g = s === 'cpu' ? 'cpu' : 'gpu';
      be.addLayernormForward(at(sum[g]), at(out[g]), at(mean[g]), at(rstd[g]), at(a[g]), at(b[g]), at(w[g]), at(bias[g]), rows, d, 1e-5);
    });
    assert.equal(errOf(sum), 0, `ln sum ${what}`);
    for (const [name, p] of [['ln out', out], ['mean', mean], ['ln rstd', rstd]] as const)
      assert.ok(errOf(p) < FP32_TOL, `${name} ${what}: ${errOf(p)}`);
    // In place (the sum written over b), as the model runs it: same values as into a separate buffer.
    const expected = readBoth(sum).gpu;
    both((be, s) => {
      const g = s === 'cpu' ? 'cpu' : 'gpu';
      be.addRmsnormForward(at(b[g]), at(out[g]), at(rstd[g]), at(a[g]), at(b[g]), at(w[g]), rows, d, 1e-6);
    });
    assert.deepEqual(readBoth(b).gpu, expected, `in place ${what}`);
    assert.ok(errOf(out) < FP32_TOL, `in place out ${what}`);
    freePairs(a, b, w, bias, sum, out, mean, rstd);
  }
});

test('qkPrep backward: QK-norm weight gradients reduced in the dx pass, against the CPU; deterministic', { skip }, () => {
  const r = rng(seed + 1);
  for (const [hd, heads, kvHeads, n, norms] of [[64, 4, 2, 77, 'qk'], [128, 2, 1, 33, 'qk'], [32, 3, 3, 16, 'q'], [8, 2, 2, 5, 'k']] as const) {
    const seq = n, nh = heads + kvHeads, stride = (heads + 2 * kvHeads) * hd + 3, half = hd / 2;
    const what = `hd ${hd} heads ${heads}/${kvHeads} n ${n} norms ${norms} seed ${seed}`;
    const cosT = new Float32Array(seq * half), sinT = new Float32Array(seq * half);
    for (let p = 0; p < seq; p++)
      for (let i = 0; i < half; i++) {
        cosT[p * half + i] = Math.cos(p / Math.pow(1e4, (2 * i) / hd));
        sinT[p * half + i] = Math.sin(p / Math.pow(1e4, (2 * i) / hd));
      }
    const qkv = pair(randF32(r, n * stride, 2)), dout = pair(randF32(r, n * nh * hd));
    const qw = pair(randF32(r, hd)), kw = pair(randF32(r, hd)), cs = pair(cosT), sn = pair(sinT);
    const out = zerosPair(n * nh * hd), rstd = zerosPair(n * nh), dqkv = pair(randF32(r, n * stride));
    const dqw = pair(randF32(r, hd)), dkw = pair(randF32(r, hd));
    const run = (): void =>
      both((be, s) => {
        const g = s === 'cpu' ? 'cpu' : 'gpu';
        const Q = norms.includes('q') ? at(qw[g]) : null, K = norms.includes('k') ? at(kw[g]) : null;
        const dQ = Q ? at(dqw[g]) : null, dK = K ? at(dkw[g]) : null;
        be.qkPrepForward(at(out[g]), at(rstd[g]), at(qkv[g]), stride, Q, K, at(cs[g]), at(sn[g]), n, seq, heads, kvHeads, hd, 1e-6);
        be.qkPrepBackward(at(dqkv[g]), stride, dQ, dK, at(dout[g]), at(qkv[g]), at(rstd[g]), Q, K, at(cs[g]), at(sn[g]), n, seq, heads, kvHeads, hd);
      });
    run();
    const first = [readBoth(dqw).gpu, readBoth(dkw).gpu];
    for (const [name, p] of [['dqkv', dqkv], ['dqNormW', dqw], ['dkNormW', dkw]] as const)
      assert.ok(errOf(p) < FP32_TOL, `${name} ${what}: ${errOf(p)}`);
    // A second backward adds the same gradient again: exactly twice the first increment on the device.
    run();
    const d0 = readBoth(dqw).gpu;
    assert.ok(errOf(dqw) < FP32_TOL && errOf(dkw) < FP32_TOL, `second pass ${what}`);
    assert.ok(d0.some((v, i) => v !== first[0]![i]) === norms.includes('q'), `dqNormW accumulates only with a q norm: ${what}`);
    freePairs(qkv, dout, qw, kw, cs, sn, out, rstd, dqkv, dqw, dkw);
  }
});

test('adamwRanges on the device: bit-identical to one adamw call per range, and close to the CPU', { skip }, () => {
  const r = rng(seed + 2);
  const ranges: { offset: number; size: number; decay: boolean }[] = [];
  let o = 3;
  for (let k = 0; k < 6; k++) {
    const size = k === 2 ? 9000 + Math.floor(r() * 100) : 1 + Math.floor(r() * 300);
    ranges.push({ offset: o, size, decay: k % 2 === 0 });
    o += size + (k % 3);
  }
  const n = o + 1;
  const g = cuda!;
  const p0 = randF32(r, n), gr = randF32(r, n, 0.1), m0 = randF32(r, n, 0.01), v0 = randF32(r, n, 0.01).map(Math.abs);
  const stats = g.alloc('f64', 2);
  g.upload(at(stats), Float64Array.of(4, 2.5));
  const hp = { lr: 3e-3, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1, gradScale: 1, stepStats: at(stats), clip: 1 };
  const make = () => [p0, gr, m0, v0].map((x) => { const b = g.alloc('f32', n); g.upload(at(b), x); return b; });
  const [pa, ga, ma, va] = make();
  const [pb, gb, mb, vb] = make();
  const P = pair(p0), G = pair(gr), M = pair(m0), V = pair(v0);
  const cpuStats = pair(Float64Array.of(4, 2.5));
  for (let step = 1; step <= 2; step++) {
    for (const q of ranges)
      g.adamw(at(pa!, q.offset), at(ga!, q.offset), at(ma!, q.offset), at(va!, q.offset), q.size, { ...hp, step, weightDecay: q.decay ? 0.1 : 0 });
    g.adamwRanges(at(pb!), at(gb!), at(mb!), at(vb!), n, ranges, { ...hp, step });
    both((be, s) => {
      const k = s === 'cpu' ? 'cpu' : 'gpu';
      be.adamwRanges(at(P[k]), at(G[k]), at(M[k]), at(V[k]), n, ranges, { ...hp, step, stepStats: at(cpuStats[k]) });
    });
  }
  // A different table on the next call replaces the one the engine keeps staged on the device.
  const fewer = [ranges[1]!, ranges[4]!];
  for (const q of fewer)
    g.adamw(at(pa!, q.offset), at(ga!, q.offset), at(ma!, q.offset), at(va!, q.offset), q.size, { ...hp, step: 3, weightDecay: q.decay ? 0.1 : 0 });
  g.adamwRanges(at(pb!), at(gb!), at(mb!), at(vb!), n, fewer, { ...hp, step: 3 });
  const dl = (b: typeof pa): Float32Array => { const x = new Float32Array(n); g.download(at(b!), x); return x; };
  for (const [name, x, y] of [['param', pa, pb], ['m', ma, mb], ['v', va, vb]] as const)
    assert.deepEqual(dl(y), dl(x), `${name}: adamwRanges != per-range adamw on the device (seed ${seed})`);
  for (const [name, q] of [['param', P], ['m', M], ['v', V]] as const) assert.ok(errOf(q) < 1e-6, `${name} vs CPU: ${errOf(q)}`);
  for (const b of [pa, ga, ma, va, pb, gb, mb, vb, stats]) g.free(b!);
  freePairs(P, G, M, V, cpuStats);
});

test('on the CUDA engine the fused add + norm gives the bits of add then the norm (f32 and bf16 outputs)', { skip }, () => {
  const g = cuda!;
  const r = rng(seed + 1);
  const rows = 3, d = 300 + Math.floor(r() * 500);
  const up = (v: Float32Array) => {
    const buf = g.alloc('f32', v.length);
    g.upload(at(buf), v);
    return buf;
  };
  const a = up(randF32(r, rows * d, 2)), b = up(randF32(r, rows * d, 0.5)), w = up(randF32(r, d)), bias = up(randF32(r, d));
  const read = (buf: ReturnType<typeof up>) => {
    const v = new Float32Array(buf.length);
    g.download(at(buf), v);
    return v;
  };
  for (const dtype of ['f32', 'bf16'] as const) {
    const sum = g.alloc('f32', rows * d), mean = g.alloc('f32', rows), rstd = g.alloc('f32', rows);
    const fused = g.alloc(dtype, rows * d), plain = g.alloc(dtype, rows * d);
    const sum2 = g.alloc('f32', rows * d), mean2 = g.alloc('f32', rows), rstd2 = g.alloc('f32', rows);
    g.addRmsnormForward(at(sum), at(fused), at(rstd), at(a), at(b), at(w), rows, d, 1e-6);
    g.add(at(sum2), at(a), at(b), rows * d);
    g.rmsnormForward(at(plain), at(rstd2), at(sum2), at(w), rows, d, 1e-6);
    assert.deepEqual([read(fused), read(rstd)], [read(plain), read(rstd2)], `rms ${dtype} ${rows}x${d} seed ${seed}`);
    g.addLayernormForward(at(sum), at(fused), at(mean), at(rstd), at(a), at(b), at(w), at(bias), rows, d, 1e-5);
    g.layernormForward(at(plain), at(mean2), at(rstd2), at(sum2), at(w), at(bias), rows, d, 1e-5);
    assert.deepEqual([read(fused), read(mean), read(rstd)], [read(plain), read(mean2), read(rstd2)], `ln ${dtype} ${rows}x${d} seed ${seed}`);
    for (const buf of [sum, mean, rstd, fused, plain, sum2, mean2, rstd2]) g.free(buf);
  }
  for (const buf of [a, b, w, bias]) g.free(buf);
});
