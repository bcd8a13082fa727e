/** ZeRO-1 shard layout (parallel/zero-shard.ts): each rank's range of the flat buffer and its pieces of the decay ranges. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { clipRanges, shardLayout } from '../../src/parallel/zero-shard.js';

test('shard layout: contiguous ranges of ceil(total/N), the last shorter, covering the buffer once', () => {
  for (const [total, n] of [[10, 3], [9, 3], [2, 4], [1003, 2], [1, 1]] as const) {
    const shards = Array.from({ length: n }, (_, r) => shardLayout(total, n, r));
    let next = 0;
    for (const s of shards) {
      assert.equal(s.capacity, Math.ceil(total / n));
      if (s.count > 0) assert.equal(s.start, next);
      next += s.count;
      assert.ok(s.count <= s.capacity);
    }
    assert.equal(next, total);
    assert.deepEqual(shards[0]!.counts.reduce((a, b) => a + b, 0), total);
  }
  assert.throws(() => shardLayout(10, 2, 2), /rank 2 outside/);
});

test('decay ranges clipped to a shard keep their flags and stay inside it', () => {
  const ranges = [
    { offset: 0, size: 5, decay: true },
    { offset: 5, size: 3, decay: false },
    { offset: 8, size: 7, decay: true },
  ];
  assert.deepEqual(clipRanges(ranges, 4, 6), [
    { offset: 4, size: 1, decay: true },
    { offset: 5, size: 3, decay: false },
    { offset: 8, size: 2, decay: true },
  ]);
  assert.deepEqual(clipRanges(ranges, 15, 0), []);
});

test('shard layout by hand: counts, starts and the empty shards of a buffer smaller than the world', () => {
  assert.deepEqual(shardLayout(10, 3, 0), { capacity: 4, counts: [4, 4, 2], start: 0, count: 4 });
  assert.deepEqual(shardLayout(10, 3, 2), { capacity: 4, counts: [4, 4, 2], start: 8, count: 2 });
  assert.deepEqual(shardLayout(2, 4, 3), { capacity: 1, counts: [1, 1, 0, 0], start: 2, count: 0 });
  assert.deepEqual(shardLayout(12, 3, 1), { capacity: 4, counts: [4, 4, 4], start: 4, count: 4 });
  assert.throws(() => shardLayout(10, 0, 0), /world size must be a positive integer, got 0/);
  assert.throws(() => shardLayout(10, 1.5, 0), /world size must be a positive integer/);
  assert.throws(() => shardLayout(10, 2, -1), /rank -1 outside \[0, 2\)/);
  assert.throws(() => shardLayout(10, 2, 0.5), /rank 0.5 outside/);
});

test('clipping: a range ending exactly at the shard start, or starting at its end, contributes nothing', () => {
  const ranges = [
    { offset: 0, size: 4, decay: true },
    { offset: 4, size: 4, decay: false },
    { offset: 8, size: 4, decay: true },
  ];
  assert.deepEqual(clipRanges(ranges, 4, 4), [{ offset: 4, size: 4, decay: false }]);
  assert.deepEqual(clipRanges(ranges, 0, 12), ranges);
  assert.deepEqual(clipRanges(ranges, 3, 2), [{ offset: 3, size: 1, decay: true }, { offset: 4, size: 1, decay: false }]);
  assert.deepEqual(clipRanges(ranges, 9, 100), [{ offset: 9, size: 3, decay: true }]);
  assert.deepEqual(clipRanges(ranges, 5, 2), [{ offset: 5, size: 2, decay: false }]);
});
