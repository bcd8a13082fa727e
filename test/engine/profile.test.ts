import { test } from 'node:test';
import assert from 'node:assert/strict';
import { at } from '../../src/engine/backend.js';
import { formatProfile, summarizeOps } from '../../src/engine/profile.js';
import { be } from './helpers.js';

test('summarizeOps groups intervals by op, largest total first, shares of the whole', () => {
  const rows = summarizeOps(['matmul', 'fill', 'matmul', 'add'], [3, 1, 5, 1]);
  assert.deepEqual(rows.map((r) => [r.op, r.calls, r.ms]), [['matmul', 2, 8], ['add', 1, 1], ['fill', 1, 1]]);
  assert.equal(rows[0]!.share, 0.8);
  assert.equal(rows.reduce((s, r) => s + r.share, 0), 1);
  assert.deepEqual(summarizeOps([], []), []);
  const table = formatProfile(rows);
  assert.match(table, /^matmul\s+2\s+8\.000\s+80\.0%$/m);
  assert.match(table, /^total\s+4\s+10\.000$/m);
});

test('the CPU engine profiles every op it runs, in order, with the host clock', () => {
  const a = be.alloc('f32', 64 * 64);
  const c = be.alloc('f32', 64 * 64);
  be.fill(at(a), a.length, 0.5);
  be.startProfile();
  be.matmul(at(c), at(a), at(a), 64, 64, 64);
  be.fill(at(c), c.length, 0);
  be.matmul(at(c), at(a), at(a), 64, 64, 64, { accumulate: true });
  const rows = be.stopProfile();
  assert.deepEqual(rows.map((r) => [r.op, r.calls]).sort(), [['fill', 1], ['matmul 64x64x64', 2]]);
  for (const r of rows) assert.ok(r.ms >= 0 && Number.isFinite(r.ms), `${r.op}: ${r.ms} ms`);
  // Ops outside the profile are not counted.
  be.fill(at(c), c.length, 1);
  be.startProfile();
  be.fill(at(c), c.length, 2);
  be.matmul(at(c), at(a), at(a), 64, 32, 16, { transA: true });
  assert.deepEqual(be.stopProfile().map((r) => [r.op, r.calls]).sort(), [['fill', 1], ['matmul 64x32x16 dW', 1]]);
  be.free(a);
  be.free(c);
});

test('profiles do not nest, and a stop needs a start', () => {
  assert.throws(() => be.stopProfile(), /no profile is open/);
  be.startProfile();
  assert.throws(() => be.startProfile(), /already open/);
  assert.deepEqual(be.stopProfile(), []);
});
