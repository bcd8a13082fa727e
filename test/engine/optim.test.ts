import { test } from 'node:test';
import assert from 'node:assert/strict';
import { at, type DeviceBuffer } from '../../src/engine/backend.js';
import { be, f32, freeAll, read } from './helpers.js';
import { adamwRef, randVec, relErr, rng } from './reference.js';

test('sumSquares adds the squared norm in double, identically for any thread count', () => {
  const r = rng(80);
  for (const n of [37, 1100003]) {
    const x = randVec(r, n, 3);
    const bx = f32(x);
    const out = be.alloc('f64', 1);
    const results: number[] = [];
    const threads = be.threads();
    for (const t of [1, 2, 3]) {
      be.setThreads(t);
      be.fill(at(out), 1, 1.25);
      be.sumSquares(at(out), at(bx), n);
      results.push(read(out)[0]);
    }
    be.setThreads(threads);
    const want = x.reduce((s, v) => s + v * v, 0) + 1.25;
    assert.ok(Math.abs(results[0] - want) / want < 1e-12, `n ${n}`);
    assert.equal(results[1], results[0]);
    assert.equal(results[2], results[0]);
    freeAll(bx, out);
  }
});

test('adamw: several steps match PyTorch-order float64 reference (weight decay, grad scale)', () => {
  const r = rng(81);
  const n = 300001;
  const p = randVec(r, n);
  const m = new Float64Array(n);
  const v = new Float64Array(n);
  const [bp, bg, bm, bv] = [f32(p), f32(new Float64Array(n)), f32(m), f32(v)];
  for (let step = 1; step <= 4; step++) {
    const g = randVec(r, n, 0.1);
    be.upload(at(bg), Float32Array.from(g));
    const hp = { lr: 3e-3, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1, step, gradScale: 0.7 };
    be.adamw(at(bp), at(bg), at(bm), at(bv), n, hp);
    // the reference continues from the native float32 state, so each step is compared on its own
    adamwRef(p, g, m, v, hp);
    assert.ok(relErr(read(bp), p) < 1e-6, `param step ${step}`);
    assert.ok(relErr(read(bm), m) < 1e-5, `m step ${step}`);
    assert.ok(relErr(read(bv), v) < 1e-5, `v step ${step}`);
    p.set(read(bp));
    m.set(read(bm));
    v.set(read(bv));
  }
  freeAll(bp, bg, bm, bv);
});

test('adamw rejects a step of 0 and buffers that are too short', () => {
  const b = f32(new Float64Array(4));
  const hp = { lr: 1, beta1: 0.9, beta2: 0.99, eps: 1e-8, weightDecay: 0, step: 0, gradScale: 1 };
  assert.throws(() => be.adamw(at(b), at(b), at(b), at(b), 4, hp), /1-based/);
  assert.throws(() => be.adamw(at(b), at(b), at(b), at(b), 5, { ...hp, step: 1 }), /needs elements/);
  freeAll(b);
});

test('adamw with the step statistics in engine memory: the clip coefficient and the skip of a non-finite step', () => {
  const r = rng(82);
  const n = 1001;
  const hp = { lr: 3e-3, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1, step: 2 };
  const p0 = randVec(r, n), g = randVec(r, n, 0.1), m0 = randVec(r, n, 0.01), v0 = randVec(r, n, 0.01).map(Math.abs);
  const run = (gradScale: number, stats: [number, number] | null, clip: number): Float64Array[] => {
    const [bp, bg, bm, bv] = [f32(p0), f32(g), f32(m0), f32(v0)];
    const bs = be.alloc('f64', 2);
    if (stats) be.upload(at(bs), Float64Array.from(stats));
    be.adamw(at(bp), at(bg), at(bm), at(bv), n, { ...hp, gradScale, stepStats: stats ? at(bs) : null, clip });
    const out = [read(bp), read(bm), read(bv)];
    freeAll(bp, bg, bm, bv, bs);
    return out;
  };
  for (const [ss, clip] of [[9, 1], [0.25, 1], [9, 0], [4e6, 0.5]] as const) {
    // What the trainer computed on the host before: the same double arithmetic, rounded to float once.
    const coef = clip > 0 ? Math.min(1, clip / (Math.sqrt(ss) + 1e-6)) : 1;
    const want = run(coef, null, 0);
    const got = run(1, [123.5, ss], clip);
    for (let k = 0; k < 3; k++) assert.deepEqual(got[k], want[k], `sum of squares ${ss}, clip ${clip}: bit for bit`);
  }
  const untouched = [Float64Array.from(Float32Array.from(p0)), Float64Array.from(Float32Array.from(m0)), Float64Array.from(Float32Array.from(v0))];
  for (const stats of [[NaN, 1], [1, Infinity], [-Infinity, 1]] as [number, number][]) {
    const got = run(1, stats, 1);
    for (let k = 0; k < 3; k++) assert.deepEqual(got[k], untouched[k], `stats ${stats}: the step is skipped`);
  }
});

test('adamwRanges: one pass over a range table equals one adamw call per range, bit for bit (decay, clip, skip)', () => {
  const seed = Date.now() % 1_000_000;
  const r = rng(seed);
  // Ranges with gaps between them (left alone), sizes from 1 to large enough for the parallel path.
  const ranges: { offset: number; size: number; decay: boolean }[] = [];
  let at0 = Math.floor(r() * 5);
  for (let k = 0; k < 9; k++) {
    const size = k === 4 ? 300_001 : 1 + Math.floor(r() * 700);
    ranges.push({ offset: at0, size, decay: r() < 0.5 });
    at0 += size + Math.floor(r() * 3);
  }
  const n = at0 + 2;
  const p0 = randVec(r, n), g = randVec(r, n, 0.1), m0 = randVec(r, n, 0.01), v0 = randVec(r, n, 0.01).map(Math.abs);
  const hp = { lr: 3e-3, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1, gradScale: 0.5 };
  const bs = be.alloc('f64', 2);
  for (const [stats, clip] of [[null, 0], [[10, 900], 1], [[10, 1e-4], 1], [[NaN, 1], 1]] as const) {
    const what = `stats ${stats} clip ${clip} seed ${seed}`;
    if (stats) be.upload(at(bs), Float64Array.from(stats));
    const state = (): DeviceBuffer[] => [f32(p0), f32(g), f32(m0), f32(v0)];
    const [pa, ga, ma, va] = state();
    const [pb, gb, mb, vb] = state();
    for (let step = 1; step <= 2; step++) {
      const h = { ...hp, step, stepStats: stats ? at(bs) : null, clip };
      for (const q of ranges)
        be.adamw(at(pa, q.offset), at(ga, q.offset), at(ma, q.offset), at(va, q.offset), q.size, { ...h, weightDecay: q.decay ? hp.weightDecay : 0 });
      be.adamwRanges(at(pb), at(gb), at(mb), at(vb), n, ranges, h);
    }
    for (const [name, x, y] of [['param', pa, pb], ['m', ma, mb], ['v', va, vb]] as const) {
      const X = read(x), Y = read(y);
      for (let i = 0; i < n; i++) if (!Object.is(X[i], Y[i])) assert.fail(`${what}: ${name}[${i}] ${Y[i]} != per-range ${X[i]}`);
    }
    // Elements outside every range keep their values; with a non-finite step nothing moves.
    assert.equal(read(pb)[n - 1], Math.fround(p0[n - 1]!), what);
    if (stats && !Number.isFinite(stats[0])) assert.deepEqual(read(pb), Float64Array.from(Float32Array.from(p0)), what);
    else assert.notEqual(read(pb)[ranges[0]!.offset], Math.fround(p0[ranges[0]!.offset]!), what);
    freeAll(pa, ga, ma, va, pb, gb, mb, vb);
  }
  freeAll(bs);
});

test('adamwRanges rejects ranges that overlap, run past the buffers or are not whole', () => {
  const b = f32(new Float64Array(10));
  const hp = { lr: 1, beta1: 0.9, beta2: 0.99, eps: 1e-8, weightDecay: 0, step: 1, gradScale: 1 };
  const call = (ranges: { offset: number; size: number; decay: boolean }[]): void =>
    be.adamwRanges(at(b), at(b), at(b), at(b), 10, ranges, hp);
  assert.throws(() => call([{ offset: 0, size: 5, decay: true }, { offset: 4, size: 2, decay: false }]), /range 1 starts before the previous range ends/);
  assert.throws(() => call([{ offset: 8, size: 3, decay: true }]), /range 0 .* inside the 10 elements/);
  assert.throws(() => call([{ offset: 1.5, size: 3, decay: true }]), /whole numbers/);
  assert.throws(() => be.adamwRanges(at(b), at(b), at(b), at(b), 10, [], { ...hp, step: 0 }), /1-based/);
  freeAll(b);
});
