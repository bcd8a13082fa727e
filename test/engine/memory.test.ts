import { test } from 'node:test';
import assert from 'node:assert/strict';
import { at } from '../../src/engine/backend.js';
import { be, f32, freeAll, read, zeros } from './helpers.js';
import { randVec, rng } from './reference.js';

test('alloc zero-initialises, counts bytes and frees deterministically', () => {
  const before = be.allocatedBytes();
  const a = be.alloc('f32', 37);
  const b = be.alloc('f64', 5);
  const c = be.alloc('i32', 3);
  assert.ok(be.allocatedBytes() >= before + 37 * 4 + 5 * 8 + 3 * 4);
  assert.deepEqual([...read(a)], new Array(37).fill(0));
  assert.deepEqual([...read(b)], new Array(5).fill(0));
  const ci = new Int32Array(3);
  be.download(at(c), ci);
  assert.deepEqual([...ci], [0, 0, 0]);
  freeAll(a, b, c);
  assert.equal(be.allocatedBytes(), before);
});

test('large buffers (mapped pages) are zero, usable and released', () => {
  const before = be.allocatedBytes();
  const n = 3_000_001;
  const b = be.alloc('f32', n);
  assert.equal(be.allocatedBytes() - before, Math.ceil((n * 4) / 64) * 64);
  assert.deepEqual([...read(b, 5, n - 5)], [0, 0, 0, 0, 0]);
  be.fill(at(b), n, 2);
  be.scale(at(b), n, 0.5);
  assert.deepEqual([...read(b, 3, n - 3)], [1, 1, 1]);
  be.free(b);
  assert.equal(be.allocatedBytes(), before);
});

test('upload/download round-trip at offsets, for every dtype', () => {
  const r = rng(1);
  const x = randVec(r, 41);
  const b = zeros(50);
  be.upload(at(b, 7), Float32Array.from(x));
  assert.deepEqual([...read(b, 41, 7)], [...x]);
  assert.deepEqual([...read(b, 7, 0)], new Array(7).fill(0));
  const d = be.alloc('f64', 4);
  be.upload(at(d, 1), Float64Array.from([Math.PI, 1e300, -2]));
  assert.deepEqual([...read(d)], [0, Math.PI, 1e300, -2]);
  const ib = be.alloc('i32', 3);
  be.upload(at(ib), Int32Array.from([-100, 5, 2147483647]));
  const io = new Int32Array(3);
  be.download(at(ib), io);
  assert.deepEqual([...io], [-100, 5, 2147483647]);
  freeAll(b, d, ib);
});

test('fill, copy (overlapping), add (aliased), scale', () => {
  const r = rng(2);
  const x = randVec(r, 100);
  const y = randVec(r, 100);
  const bx = f32(x);
  const by = f32(y);
  const out = zeros(100);
  be.add(at(out), at(bx), at(by), 100);
  const got = read(out);
  for (let i = 0; i < 100; i++) assert.equal(got[i], Math.fround(x[i] + y[i]));
  be.add(at(bx), at(bx), at(by), 100); // out aliases a
  assert.deepEqual([...read(bx)], [...got]);
  be.scale(at(out, 10), 5, -2);
  const sc = read(out);
  for (let i = 0; i < 100; i++) assert.equal(sc[i], i >= 10 && i < 15 ? Math.fround(got[i] * -2) : got[i]);
  be.fill(at(out, 3), 4, 1.5);
  assert.deepEqual([...read(out, 6, 2)], [sc[2], 1.5, 1.5, 1.5, 1.5, sc[7]]);
  const before = read(by);
  be.copy(at(by, 1), at(by, 0), 50); // overlapping: memmove semantics
  const after = read(by);
  for (let i = 0; i < 50; i++) assert.equal(after[i + 1], before[i]);
  const l = be.alloc('f64', 2);
  be.fill(at(l), 2, 0.25);
  assert.deepEqual([...read(l)], [0.25, 0.25]);
  freeAll(bx, by, out, l);
});

test('bounds, dtype and use-after-free errors throw instead of crashing', () => {
  const b = zeros(10);
  assert.throws(() => be.fill(at(b, 5), 6, 1), /needs elements \[5, 11\) but its buffer has 10/);
  assert.throws(() => be.upload(at(b, 8), new Float32Array(3)), /buffer has 10/);
  assert.throws(() => be.upload(at(b), new Float64Array(3)), /typed array holds f64 but the buffer is f32/);
  assert.throws(() => be.download(at(b), new Int32Array(2)), /holds i32/);
  const l = be.alloc('f64', 1);
  assert.throws(() => be.add(at(l), at(b), at(b), 1), /must be a f32 buffer but is f64/);
  assert.throws(() => be.scale(at(b, -1), 1, 2), /offset must be a non-negative integer/);
  assert.throws(() => be.alloc('f32', -1), /non-negative integer/);
  be.free(b);
  assert.throws(() => be.fill(at(b), 1, 0), /already freed|never allocated/);
  assert.throws(() => be.free(b), /already freed|never allocated/);
  // A new buffer reusing the slot must not be reachable through the stale handle.
  const c = zeros(10);
  assert.throws(() => be.fill(at(b), 1, 0), /already freed|never allocated/);
  freeAll(c, l);
});

test('threads can be set and described', () => {
  const n = be.threads();
  assert.ok(n >= 1);
  be.setThreads(1);
  assert.equal(be.threads(), 1);
  assert.throws(() => be.setThreads(0), /integer >= 1/);
  be.setThreads(n);
  assert.match(be.describe(), /OpenBLAS/);
});
