import { test } from 'node:test';
import assert from 'node:assert/strict';
import { at } from '../../src/engine/backend.js';
import { be, f32, freeAll, i32, read, zeros } from './helpers.js';
import { dot, embeddingBackwardRef, embeddingRef, fdCheck, randInts, randVec, relErr, rng } from './reference.js';

test('embeddingForward gathers rows, overwriting or accumulating', () => {
  const r = rng(20);
  const vocab = 101;
  const d = 37;
  const n = 13;
  const table = randVec(r, vocab * d);
  const ids = randInts(r, n, vocab);
  const base = randVec(r, n * d);
  const bt = f32(table);
  const bi = i32(ids);
  const out = f32(base);
  be.embeddingForward(at(out), at(bi), at(bt), n, d, false);
  const want = embeddingRef(ids, table, d);
  assert.ok(relErr(read(out), want) === 0);
  be.embeddingForward(at(out), at(bi), at(bt), n, d, true);
  assert.ok(relErr(read(out), want.map((x) => 2 * x)) < 1e-7);
  freeAll(bt, bi, out);
});

test('embeddingBackwardRef is the gradient of embeddingRef (central finite differences, repeated and unused ids)', () => {
  const r = rng(22);
  const vocab = 9;
  const d = 5;
  const ids = Int32Array.from([3, 0, 3, 8, 3, 1, 0]); // id 3 three times, 2/4/5/6/7 never
  const table = randVec(r, vocab * d);
  const R = randVec(r, ids.length * d);
  const loss = () => dot(embeddingRef(ids, table, d), R);
  const grad = embeddingBackwardRef(ids, R, d, vocab);
  // Every coordinate of the table, so the unused rows are checked to be exactly zero too.
  assert.ok(fdCheck(table, loss, grad, r, table.length) < 1e-8);
  for (const unused of [2, 4, 5, 6, 7]) assert.ok(grad.slice(unused * d, unused * d + d).every((g) => g === 0), `row ${unused}`);
});

test('embeddingBackward accumulates repeated ids deterministically, whatever the thread count', () => {
  const r = rng(21);
  const vocab = 997; // ~30 repeats per id
  const d = 37;
  const n = 30000; // n*d > 1M: the parallel path; every id repeats many times
  const ids = randInts(r, n, vocab);
  const dout = randVec(r, n * d);
  const dt0 = randVec(r, vocab * d);
  const bi = i32(ids);
  const bd = f32(dout);
  const want = embeddingBackwardRef(ids, dout, d, vocab).map((x, i) => x + dt0[i]);
  const results: Float64Array[] = [];
  const threads = be.threads();
  for (const t of [1, 2, 3]) {
    be.setThreads(t);
    const dt = f32(dt0);
    be.embeddingBackward(at(dt), at(bi), at(bd), n, d);
    results.push(read(dt));
    be.free(dt);
  }
  be.setThreads(threads);
  assert.ok(relErr(results[0], want) < 1e-6);
  assert.deepEqual(results[1], results[0]);
  assert.deepEqual(results[2], results[0]);
  freeAll(bi, bd);
});

test('embedding ops reject ids outside the table with a clear message', () => {
  const table = zeros(10 * 4);
  const ids = i32([1, 10]);
  const out = zeros(8);
  assert.throws(() => be.embeddingForward(at(out), at(ids), at(table), 2, 4, false), /token id 10 at position 1 is outside the table's 10 rows/);
  assert.throws(() => be.embeddingBackward(at(table), at(ids), at(out), 2, 4), /token id 10/);
  const neg = i32([-1, 0]);
  assert.throws(() => be.embeddingForward(at(out), at(neg), at(table), 2, 4, false), /token id -1/);
  freeAll(table, ids, out, neg);
});
