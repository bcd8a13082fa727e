import { test } from 'node:test';
import assert from 'node:assert/strict';
import { at } from '../../src/engine/backend.js';
import { cuda, skipReason } from './harness.js';

test('the CUDA engine times each op with stream events, readLater included, and reuses its events', { skip: skipReason }, () => {
  const be = cuda!;
  const n = 48;
  const a = be.alloc('f32', n * n);
  const c = be.alloc('f32', n * n);
  const s = be.alloc('f64', 2);
  be.fill(at(a), a.length, 0.25);
  for (let round = 0; round < 2; round++) {
    be.fill(at(s), 2, 0);
    be.synchronize();
    be.startProfile();
    be.matmul(at(c), at(a), at(a), n, n, n);
    be.sumSquares(at(s), at(c), c.length);
    const pending = be.readLater(at(s), 2);
    be.matmul(at(c), at(a), at(a), n, n, n, { accumulate: true });
    const rows = be.stopProfile();
    assert.equal(pending.wait()[0], n * n * (n * 0.25 * 0.25) ** 2);
    assert.deepEqual(rows.map((r) => [r.op, r.calls]).sort(), [['matmul 48x48x48', 2], ['readLater', 1], ['sumSquares', 1]]);
    for (const r of rows) assert.ok(r.ms >= 0 && Number.isFinite(r.ms), `${r.op}: ${r.ms} ms`);
    // The interpreter's events carry its own clock, so the work shows (a device without a clock would read 0).
    assert.ok(rows.reduce((t, r) => t + r.ms, 0) > 0, 'the profiled ops took no time at all');
  }
  for (const b of [a, c, s]) be.free(b);
});
