import { test } from 'node:test';
import assert from 'node:assert/strict';
import { at } from '../../src/engine/backend.js';
import { be, f32, freeAll, read, zeros } from './helpers.js';
import { matmulRef, randVec, relErr, rng } from './reference.js';

/** Reads an m x n block out of a strided buffer. */
function unstride(v: Float64Array, m: number, n: number, ld: number): Float64Array {
  const o = new Float64Array(m * n);
  for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) o[i * n + j] = v[i * ld + j];
  return o;
}

test('matmul: every transpose combination, with padded leading dimensions, accumulate and bias', () => {
  const r = rng(10);
  const m = 7;
  const n = 13;
  const k = 37;
  for (const transA of [false, true]) {
    for (const transB of [false, true]) {
      for (const padded of [false, true]) {
        const aRows = transA ? k : m;
        const aCols = transA ? m : k;
        const bRows = transB ? n : k;
        const bCols = transB ? k : n;
        const lda = padded ? aCols + 3 : aCols;
        const ldb = padded ? bCols + 5 : bCols;
        const ldc = padded ? n + 2 : n;
        const a = randVec(r, aRows * lda);
        const b = randVec(r, bRows * ldb);
        const c0 = randVec(r, m * ldc);
        const bias = randVec(r, n);
        const ba = f32(a);
        const bb = f32(b);
        const bc = f32(c0);
        const bbias = f32(bias);
        const opts = padded ? { transA, transB, lda, ldb, ldc } : { transA, transB };
        const want = matmulRef(a, b, m, n, k, transA, transB, lda, ldb);
        // overwrite
        be.matmul(at(bc), at(ba), at(bb), m, n, k, opts);
        assert.ok(relErr(unstride(read(bc), m, n, ldc), want) < 1e-5, `C= ${transA} ${transB} ${padded}`);
        if (padded) {
          // the padding columns of C are untouched
          const got = read(bc);
          for (let i = 0; i < m; i++) for (let j = n; j < ldc && i * ldc + j < got.length; j++) assert.equal(got[i * ldc + j], c0[i * ldc + j]);
        }
        // accumulate
        be.upload(at(bc), Float32Array.from(c0));
        be.matmul(at(bc), at(ba), at(bb), m, n, k, { ...opts, accumulate: true });
        const wantAcc = want.map((x, i) => x + c0[Math.floor(i / n) * ldc + (i % n)]);
        assert.ok(relErr(unstride(read(bc), m, n, ldc), wantAcc) < 1e-5, `C+= ${transA} ${transB} ${padded}`);
        // bias
        be.matmul(at(bc), at(ba), at(bb), m, n, k, { ...opts, bias: at(bbias) });
        const wantBias = want.map((x, i) => x + bias[i % n]);
        assert.ok(relErr(unstride(read(bc), m, n, ldc), wantBias) < 1e-5, `C=+bias ${transA} ${transB} ${padded}`);
        freeAll(ba, bb, bc, bbias);
      }
    }
  }
});

test('matmul at buffer offsets (sub-blocks of one big buffer)', () => {
  const r = rng(11);
  const m = 5;
  const n = 6;
  const k = 9;
  const a = randVec(r, m * k);
  const b = randVec(r, k * n);
  const big = zeros(3 + m * k + 4 + k * n + 2 + m * n);
  be.upload(at(big, 3), Float32Array.from(a));
  be.upload(at(big, 3 + m * k + 4), Float32Array.from(b));
  const cOff = 3 + m * k + 4 + k * n + 2;
  be.matmul(at(big, cOff), at(big, 3), at(big, 3 + m * k + 4), m, n, k);
  assert.ok(relErr(read(big, m * n, cOff), matmulRef(a, b, m, n, k, false, false, k, n)) < 1e-5);
  freeAll(big);
});

test('matmul rejects out-of-bounds shapes, bad strides and bias with accumulate', () => {
  const a = zeros(20);
  const b = zeros(20);
  const c = zeros(20);
  assert.throws(() => be.matmul(at(c), at(a), at(b), 5, 5, 5), /needs elements/);
  assert.throws(() => be.matmul(at(c), at(a), at(b), 2, 2, 4, { lda: 3 }), /lda 3 is smaller/);
  assert.throws(() => be.matmul(at(c), at(a), at(b), 2, 2, 2, { accumulate: true, bias: at(a) }), /bias can only/);
  assert.throws(() => be.matmul(at(c, 19), at(a), at(b), 2, 2, 2), /C needs elements \[19, 23\)/);
  freeAll(a, b, c);
});

test('matmul with k = 0 writes zeros (or leaves C when accumulating)', () => {
  const c = f32([1, 2, 3, 4]);
  const a = zeros(1);
  be.matmul(at(c), at(a), at(a), 2, 2, 0, { accumulate: true });
  assert.deepEqual([...read(c)], [1, 2, 3, 4]);
  be.matmul(at(c), at(a), at(a), 2, 2, 0);
  assert.deepEqual([...read(c)], [0, 0, 0, 0]);
  freeAll(c, a);
});

test('biasGrad: column sums with a row stride, accumulated', () => {
  const r = rng(12);
  const rows = 7;
  const cols = 37;
  const ldy = 41;
  const dy = randVec(r, rows * ldy);
  const db0 = randVec(r, cols);
  const bdy = f32(dy);
  const bdb = f32(db0);
  be.biasGrad(at(bdb), at(bdy), rows, cols, ldy);
  const want = Float64Array.from(db0);
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) want[j] += dy[i * ldy + j];
  assert.ok(relErr(read(bdb), want) < 1e-6);
  freeAll(bdy, bdb);
});
