/**
 * The CUDA engine's defects that a review found before it ever ran (issue 9), each held by a test that fails on
 * the code before its fix (in cuda-interpret mode the CUDA model reproduces them; on a GPU the GPU does):
 *   - a cudaErrorNotReady left as the last error by an event query failed the next launch;
 *   - cuBLASLt's "no algorithm" answer (CUBLAS_STATUS_NOT_SUPPORTED) threw instead of falling back to fp32;
 *   - products on operands less aligned than 256 bytes, with plans cached regardless of alignment;
 *   - the kernels' error flag was written with atomics into host memory mapped into the device;
 *   - no buffer addresses or stream for NCCL;
 *   - the optimizer step needed the host (clip scale, NaN guard): now decided by the engine (adamw stepStats).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { at } from '../../src/engine/backend.js';
import { createProcessGroup } from '../../src/parallel/index.js';
import {
  both, cuda, device, errOf, FP32_TOL, freePairs, pair, randF32, randInts, readBoth, rng, skipReason, withPrecision,
  zerosPair,
} from './harness.js';

const skip = skipReason;

test('small uploads that find every staging buffer still in flight do not fail the next launch', { skip }, () => {
  const g = cuda!;
  const a = g.alloc('f32', 64), b = g.alloc('f32', 64), c = g.alloc('f32', 64);
  // The second upload asks whether the first one's staging buffer is free again; the answer "not yet"
  // (cudaErrorNotReady) must not be left as the runtime's last error, or the fill's launch check reports it.
  g.upload(at(a), new Float32Array(64).fill(1));
  g.upload(at(b), new Float32Array(64).fill(2));
  g.fill(at(c), 64, 3);
  g.add(at(c), at(a), at(b), 64);
  const out = new Float32Array(64);
  g.download(at(c), out);
  assert.deepEqual([...new Set(out)], [3]);
  for (const x of [a, b, c]) g.free(x);
});

test('a bf16 product cuBLASLt has no algorithm for (an odd leading dimension) falls back to fp32', { skip }, () => {
  const r = rng(21);
  const [m, n, k] = [9, 6, 3];
  const A = pair(randF32(r, m * k)), B = pair(randF32(r, k * n)), C = zerosPair(m * n);
  withPrecision('bf16', () =>
    both((be, s) => be.matmul(at(C[s === 'cpu' ? 'cpu' : 'gpu']), at(A[s === 'cpu' ? 'cpu' : 'gpu']), at(B[s === 'cpu' ? 'cpu' : 'gpu']), m, n, k)),
  );
  // fp32 accuracy: bf16 operands would be ~1e-3 off.
  assert.ok(errOf(C) < FP32_TOL, `error ${errOf(C)}: the product did not run in fp32`);
  freePairs(A, B, C);
});

test('fp32 products on operands at any offset (4-byte alignment), after a plan for aligned ones', { skip }, () => {
  const r = rng(22);
  const [m, n, k] = [24, 40, 32];
  const A = pair(randF32(r, m * k + 8)), B = pair(randF32(r, k * n + 8)), C = zerosPair(m * n + 8);
  // Offset 0 first (a plan for 256-byte aligned pointers), then the same shape at odd offsets: a plan chosen for
  // aligned operands uses vector loads that fault on these.
  for (const off of [0, 1, 2, 3, 5]) {
    both((be, s) => {
      const g = s === 'cpu' ? 'cpu' : 'gpu';
      be.matmul(at(C[g], off), at(A[g], off), at(B[g], (off * 3) % 8), m, n, k);
    });
    assert.ok(errOf(C) < FP32_TOL, `offset ${off}: ${errOf(C)}`);
  }
  freePairs(A, B, C);
});

test('bad ids are reported through the device flag: at a readLater wait, then cleared', { skip }, () => {
  const g = cuda!;
  const table = g.alloc('f32', 4 * 3), ids = g.alloc('i32', 2), out = g.alloc('f32', 6), scalars = g.alloc('f64', 2);
  g.upload(at(ids), Int32Array.from([1, 9]));
  g.embeddingForward(at(out), at(ids), at(table), 2, 3, false);
  const pending = g.readLater(at(scalars), 2);
  assert.throws(() => pending.wait(), /outside the table/);
  g.download(at(out), new Float32Array(6)); // reported once
  for (const b of [table, ids, out, scalars]) g.free(b);
});

test('readLater returns the values of the work queued before it; the work after it stays queued', { skip }, () => {
  const g = cuda!;
  const s = g.alloc('f64', 2), x = g.alloc('f32', 4096);
  g.fill(at(s), 2, 0.5);
  const early = g.readLater(at(s), 2);
  g.fill(at(s), 2, 7); // queued after the read: must not show in it
  for (let i = 0; i < 20; i++) g.scale(at(x), 4096, 1.5);
  const before = g.interpretStats();
  assert.deepEqual([...early.wait()], [0.5, 0.5]);
  const after = g.interpretStats();
  if (before && after) {
    assert.equal(after.drains, before.drains, 'the wait drained the stream: it waited for the work queued after the read');
    assert.ok(after.hostWaits > before.hostWaits);
  }
  const late = new Float64Array(2);
  g.download(at(s), late);
  assert.deepEqual([...late], [7, 7]);
  assert.throws(() => early.wait(), /already/);
  g.free(s);
  g.free(x);
});

test('adamw decides the clip scale and the skip of a non-finite step on the device, as the CPU engine does', { skip }, () => {
  const r = rng(23);
  const n = 5003;
  for (const stats of [[12.5, 7.3], [12.5, 0.04], [NaN, 1], [3, Infinity]] as [number, number][]) {
    const p = pair(randF32(r, n)), gr = pair(randF32(r, n, 0.1)), m = pair(randF32(r, n, 0.01)), v = zerosPair(n);
    const st = pair(Float64Array.from(stats));
    both((be, s) => {
      const k = s === 'cpu' ? 'cpu' : 'gpu';
      be.adamw(at(p[k]), at(gr[k]), at(m[k]), at(v[k]), n, {
        lr: 1e-2, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1, step: 1, gradScale: 1, stepStats: at(st[k]), clip: 1,
      });
    });
    for (const [name, q] of [['param', p], ['m', m], ['v', v]] as const) assert.ok(errOf(q) < 1e-6, `${stats} ${name}: ${errOf(q)}`);
    if (!stats.every(Number.isFinite)) assert.deepEqual([...readBoth(v).gpu].filter((x) => x !== 0), [], 'a skipped step wrote v');
    freePairs(p, gr, m, v, st);
  }
});

test('NCCL wiring: buffer addresses, the stream and the device; the interpreter refuses a launcher', { skip }, () => {
  const g = cuda!;
  const b = g.alloc('f32', 100);
  const base = g.rawAddress(at(b), 100);
  assert.equal(g.rawAddress(at(b, 3), 5) - base, 12n);
  assert.throws(() => g.rawAddress(at(b, 90), 20), /needs elements \[90, 110\)/);
  assert.ok(g.rawStream() !== 0n);
  assert.equal(g.deviceIndex(), 0);
  g.free(b);
  if (device === 'cuda-interpret')
    assert.throws(() => createProcessGroup(g, { OMPI_COMM_WORLD_SIZE: '2' }), /runs in one process/);
});

test('bad targets reach the host through the same flag', { skip }, () => {
  const g = cuda!;
  const r = rng(24);
  const h = g.alloc('f32', 2 * 8), w = g.alloc('f32', 5 * 8), t = g.alloc('i32', 2), loss = g.alloc('f64', 1);
  g.upload(at(h), randF32(r, 16));
  g.upload(at(w), randF32(r, 40));
  g.upload(at(t), Int32Array.from([2, 7]));
  g.headCrossEntropy({ lossOut: at(loss), h: at(h), w: at(w), targets: at(t), n: 2, d: 8, vocab: 5, gradScale: 1, dh: null, dw: null, logitsOut: null });
  assert.throws(() => g.download(at(loss), new Float64Array(1)), /outside the vocabulary/);
  g.upload(at(t), randInts(r, 2, 5));
  g.synchronize();
  for (const x of [h, w, t, loss]) g.free(x);
});
